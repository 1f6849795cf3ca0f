"""Thresholds scoped to a stage or to every sliding window, end to end (one process and
``-n 2``): judged on the right samples, failing with the stage or the worst window named,
abort_on_fail, and bad scopes refused at collection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.plugin.conftest import Target
from tests.timing import scaled

# Slow (40 ms) for the first 0.9 s of the load, then fast: the 1 s "warm" stage holds the
# slow requests, the "peak" stage none.
STAGES = '''
import time
import pytest

T0 = []

@pytest.mark.load(start_vus=2,
                  stages=[("1s", 2, "warm"), {{"duration": "2s", "target": 2, "name": "peak"}},
                          ("500ms", 0)],
                  thresholds={{{thresholds}}})
def test_staged(load):
    async def user(vu):
        if not T0:
            T0.append(time.monotonic())
        slow = time.monotonic() - T0[0] < 0.9
        await vu.http.get("/slow?ms=40" if slow else "/slow?ms=1", name="slow")

    result = load.run(user)
    warm = result.metric("http_req_duration", stage="warm")
    peak = result.metric("http_req_duration", stage=2)
    assert warm.p(95) > 30, warm
    assert peak.p(95) < 30, peak
    assert warm.count + peak.count <= result.metric("http_req_duration").count
'''

# Every request fails (404) from 3 s on: a burst at the end the whole run averages away.
WINDOWS = '''
import time
import pytest

T0 = []

@pytest.mark.load(vus=2, duration="{duration}",
                  thresholds={{"http_req_failed": [{{"threshold": "rate<0.5"}},
                              {{"threshold": "rate<0.5", "window": "1s"{abort}}}]}})
def test_windowed(load):
    async def user(vu):
        if not T0:
            T0.append(time.monotonic())
        late = time.monotonic() - T0[0] > 3.0
        await vu.http.get("/status/404" if late else "/slow?ms=2", name="x")
        await vu.sleep(0.01)

    load.run(user)
'''


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\n")
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--load-progress", "off",
        f"--load-results={pytester.path / 'results'}", *args, timeout=scaled(90))


def the_test(pytester: pytest.Pytester) -> dict[str, Any]:
    (folder,) = (pytester.path / "results").iterdir()
    (test,) = json.loads((folder / "summary.json").read_text())["tests"]
    return test  # type: ignore[no-any-return]


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_stage_thresholds_judge_only_their_stage(pytester: pytest.Pytester, api: Target,
                                                 xdist: tuple[str, ...]) -> None:
    pytester.makepyfile(STAGES.format(thresholds=(
        '"http_req_duration{stage:peak}": ["p(95)<30"], '
        '"http_req_duration{stage:1}": ["p(95)<30"]')))
    result = run(pytester, *xdist)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 of 2 thresholds failed*",
                                 "*http_req_duration{stage:1} p(95)<30 -> * ms  FAILED*"])
    test = the_test(pytester)
    ok = {t["metric"]: t["ok"] for t in test["thresholds"]}
    assert ok == {"http_req_duration{stage:peak}": True, "http_req_duration{stage:1}": False}
    assert test["metrics"]["http_req_duration{stage:peak}"]["p(95)"] < 30
    assert test["metrics"]["http_req_duration{stage:1}"]["p(95)"] > 30
    assert test["executor"]["stages"][0] == ["1s", 2, "warm"]


def test_unknown_stage_is_a_collection_error(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile(STAGES.format(thresholds='"http_req_duration{stage:plateau}": '
                                                 '["p(95)<30"], "http_req_duration{stage:4}"'
                                                 ': ["p(95)<30"]'))
    result = run(pytester)
    result.stdout.fnmatch_lines(["*invalid @pytest.mark.load*",
                                 "*no stage 'plateau'*stage names: warm, peak*1 to 3*",
                                 "*no stage '4'*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_window_threshold_fails_on_the_burst_naming_its_window(
        pytester: pytest.Pytester, api: Target, xdist: tuple[str, ...]) -> None:
    pytester.makepyfile(WINDOWS.format(duration="4s", abort=""))
    result = run(pytester, *xdist)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 of 2 thresholds failed*",
                                 "*http_req_failed rate<0.5 in every 1s window -> *FAILED*"
                                 "worst 1s window starts at *s*"])
    whole, windowed = the_test(pytester)["thresholds"]
    assert whole["ok"] and whole["observed"] < 0.5
    assert not windowed["ok"] and windowed["observed"] > 0.5
    assert 3 <= windowed["worst_window"]["start_s"] <= 4
    assert windowed["worst_window"]["value"] == windowed["observed"]
    assert windowed["window"] == 1


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_window_threshold_aborts_the_run(pytester: pytest.Pytester, api: Target,
                                         xdist: tuple[str, ...]) -> None:
    pytester.makepyfile(WINDOWS.format(duration="20s", abort=', "abort_on_fail": True'))
    result = run(pytester, *xdist)
    result.assert_outcomes(failed=1)
    test = the_test(pytester)
    assert "abort_on_fail" in test["aborted"]
    assert test["duration_s"] < scaled(10)


def test_bad_window_is_a_collection_error(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile('''
import pytest

@pytest.mark.load(vus=1, duration="1s", thresholds={
    "http_req_failed": [{"threshold": "rate<0.1", "window": "100ms"},
                        {"threshold": "rate<0.1", "window": "soon"}]})
def test_w(load):
    load.run(lambda vu: None)
''')
    result = run(pytester)
    result.stdout.fnmatch_lines(["*invalid @pytest.mark.load*", "*window='100ms'*at least 1s*",
                                 "*window*soon*"])
