"""report.html as a browser shows it: a real run's page opened in headless Chromium renders
every section and chart without a console error. Skips when Debian's chromium is missing."""

from __future__ import annotations

import re

import pytest

from tests import chromium
from tests.plugin.conftest import Target

pytestmark = pytest.mark.skipif(chromium.find() is None,
                                reason=f"chromium not installed: {chromium.INSTALL}")

FAILING_RUN = '''
import pytest

@pytest.mark.load(stages=[("1500ms", 3), ("1500ms", 3)],
                  thresholds={"http_req_duration": ["p(95)<1"], "http_req_failed": ["rate<0.01"]})
def test_page(load):
    async def user(vu):
        await vu.http.get("/slow?ms=5" if vu.iteration % 3 else "/status/500")
        await vu.sleep(0.02)
    load.run(user)
'''


def test_report_of_a_failing_run_renders_in_chromium(
        pytester: pytest.Pytester, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_page=FAILING_RUN)
    pytester.makeini("[pytest]\n")
    monkeypatch.setenv("API_URL", target.url)
    result = pytester.runpytest("-p", "no:cacheprovider", "--load-progress", "off",
                                "--load-results", str(pytester.path / "results"))
    result.assert_outcomes(failed=1)
    page = next((pytester.path / "results").glob("*/report.html"))
    shown = chromium.render(page)
    assert shown.console_errors == []
    dom = shown.dom
    for section in ("Thresholds", "Over time", "Trends (ms)", "Errors", "Generator health"):
        assert f">{section}<" in dom, section
    titles = re.findall(r'<svg[^>]*aria-label="([^"]+)"', dom)
    assert titles == ["Requests per second", "http_req_duration (ms)", "Errors per second",
                      "Active VUs"]
    # The latency chart: p95 and p99 beside avg, the broken limit drawn, the stage boundary.
    latency = dom.split('aria-label="http_req_duration (ms)"', 1)[1].split("</svg>", 1)[0]
    assert "p95 " in latency and "p99 " in latency and "avg " in latency
    assert "p(95)&lt;1<" in latency and "stage 2<" in latency
    # The overview's p95 is the HTTP request latency's, not the iterations'.
    overview = dom.split("</table>", 1)[0]
    assert 'title="http_req_duration"' in overview and " req/s<" in overview
    assert 'title="iteration_duration"' not in overview
