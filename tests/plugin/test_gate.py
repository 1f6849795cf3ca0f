"""The PR gate end to end through pytester: recording a baseline, comparing with it (pass,
regressed, inconclusive), mismatched runs, a missing or corrupt baseline file, and the
artifacts the gate writes (summary.json comparison and ci95, SUMMARY.md, metrics.txt, JUnit
properties, $GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.plugin.conftest import Target

LOAD = '''
import os
import pytest

@pytest.mark.load(vus=4, duration="{duration}", {extra}
                  thresholds={{"http_req_duration": ["p(95)<5000"]}})
def test_gate(load):
    ms = os.environ.get("DELAY_MS", "5")

    async def user(vu):
        await vu.http.get(f"/slow?ms={{ms}}", name="slow")

    load.run(user)
'''
RULE = 'regressions={"http_req_duration": ["p(95) +100% >50ms"]},'


def write(pytester: pytest.Pytester, *, duration: str = "5s", extra: str = RULE) -> None:
    pytester.makepyfile(test_gate=LOAD.format(duration=duration, extra=extra))


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\n")
    return pytester.runpytest("-p", "no:cacheprovider", "--load-progress", "off",
                              "--load-results", str(pytester.path / "results"), *args)


def last_run(pytester: pytest.Pytester) -> Path:
    runs = sorted((pytester.path / "results").iterdir())
    assert runs, "no run folder written"
    return runs[-1]


def the_test(pytester: pytest.Pytester) -> dict[str, Any]:
    data = json.loads((last_run(pytester) / "summary.json").read_text())
    (test,) = data["tests"]
    return test  # type: ignore[no-any-return]


@pytest.fixture
def api(target: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv("API_URL", target.url)
    monkeypatch.delenv("API_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return target


@pytest.fixture
def recorded(pytester: pytest.Pytester, api: Target,
             monkeypatch: pytest.MonkeyPatch) -> Path:
    """A baseline of the 5 ms server, recorded with --load-baseline-save."""
    write(pytester)
    monkeypatch.setenv("DELAY_MS", "5")
    baseline = pytester.path / "baseline.json"
    result = run(pytester, "--load-baseline-save", str(baseline))
    result.assert_outcomes(passed=1)
    return baseline


def test_recording_writes_a_diffable_baseline_with_intervals(
        pytester: pytest.Pytester, recorded: Path) -> None:
    text = recorded.read_text()
    data = json.loads(text)
    assert data["schema_version"] == 1
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"  # stable, diffable
    (entry,) = data["tests"].values()
    assert entry["executor"]["type"] == "constant-vus"
    assert entry["regressions"] == {"http_req_duration": ["p(95) +100% >50ms"]}
    duration = entry["metrics"]["http_req_duration"]
    lo, hi = duration["ci95"]["p(95)"]
    assert lo <= duration["p(95)"] <= hi
    assert entry["machine"]["cpus"] and entry["options"]["load_scale"] == 1
    # the run itself shows its intervals
    test = the_test(pytester)
    assert "p(99)" in test["metrics"]["http_req_duration"]["ci95"]
    assert test["thresholds"][0]["interval"] and test["thresholds"][0]["marginal"] is False


def test_unchanged_server_passes_and_every_report_shows_it(
        pytester: pytest.Pytester, recorded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary_file = pytester.path / "step-summary.md"
    summary_file.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
    result = run(pytester, "--load-baseline", str(recorded),
                 "--junitxml", str(pytester.path / "junit.xml"))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*comparison with*baseline.json*",
                                 "*http_req_duration p(95)*pass*"])
    test = the_test(pytester)
    comparison = test["comparison"]
    assert comparison["verdict"] == "pass"
    assert comparison["baseline"] == str(recorded)
    (stat,) = comparison["stats"]
    assert stat["metric"] == "http_req_duration" and stat["stat"] == "p(95)"
    assert stat["verdict"] == "pass" and len(stat["interval"]) == 2
    folder = last_run(pytester)
    md = (folder / "SUMMARY.md").read_text()
    assert "Comparison with the baseline" in md and "http_req_duration p(95)" in md
    metrics = (folder / "metrics.txt").read_text()
    assert "test_gate_test_gate_http_req_duration_p95_ms" in metrics
    assert metrics.endswith("# EOF\n")
    step = summary_file.read_text()
    assert step.startswith("# earlier step\n") and "Comparison with the baseline" in step
    props = {p.attrib["name"]: p.attrib["value"]
             for p in ET.parse(pytester.path / "junit.xml").getroot().iter("property")}
    assert props["comparison"] == "pass"
    assert "http_req_duration p(95)" in props["comparison http_req_duration p(95)"]
    html = (folder / "report.html").read_text()
    assert 'stroke-dasharray="6 4"' in html and ">baseline " in html  # the baseline line


def test_a_slower_server_is_regressed_and_fails_naming_the_stat(
        pytester: pytest.Pytester, recorded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELAY_MS", "200")
    result = run(pytester, "--load-baseline", str(recorded))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RegressionFailed: 1 of 1 compared statistics regressed*",
                                 "*http_req_duration p(95)*REGRESSED*"])
    test = the_test(pytester)
    assert test["outcome"] == "failed"
    assert test["comparison"]["verdict"] == "regressed"
    (stat,) = test["comparison"]["stats"]
    assert stat["change"] > 100 and stat["verdict"] == "regressed"


def test_a_run_too_short_for_its_noise_is_inconclusive_and_passes(
        pytester: pytest.Pytester, api: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    write(pytester, duration="2s")
    baseline = pytester.path / "short.json"
    monkeypatch.setenv("DELAY_MS", "5")
    run(pytester, "--load-baseline-save", str(baseline)).assert_outcomes(passed=1)
    monkeypatch.setenv("DELAY_MS", "200")
    result = run(pytester, "--load-baseline", str(baseline))
    result.assert_outcomes(passed=1)
    (stat,) = the_test(pytester)["comparison"]["stats"]
    assert stat["verdict"] == "inconclusive"
    assert "too short" in stat["note"]
    result.stdout.fnmatch_lines(["*inconclusive*"])


def test_a_new_test_and_mismatched_runs_are_reported_not_failed(
        pytester: pytest.Pytester, recorded: Path) -> None:
    # another scale (8 VUs instead of 4): compared, with a warning
    result = run(pytester, "--load-baseline", str(recorded), "--load-scale", "2")
    result.assert_outcomes(passed=1)
    comparison = the_test(pytester)["comparison"]
    assert comparison["verdict"] in ("pass", "inconclusive")
    assert any("load_scale" in w for w in comparison["warnings"])
    # another executor: refused
    pytester.makepyfile(test_gate=LOAD.format(duration="2s", extra=RULE).replace(
        'vus=4, duration="2s",', 'stages=[("2s", 4)],'))
    result = run(pytester, "--load-baseline", str(recorded))
    result.assert_outcomes(passed=1)
    comparison = the_test(pytester)["comparison"]
    assert comparison["verdict"] == "incomparable"
    assert "another executor" in comparison["reason"]
    # a test the baseline does not know
    pytester.makepyfile(test_other=LOAD.format(duration="1s", extra=""))
    result = run(pytester, "test_other.py", "--load-baseline", str(recorded))
    result.assert_outcomes(passed=1)
    assert the_test(pytester)["comparison"]["verdict"] == "new"


@pytest.mark.parametrize("content", [None, "{not json", '{"tests": 3}'])
def test_a_missing_or_corrupt_baseline_is_a_usage_error_naming_the_file(
        pytester: pytest.Pytester, api: Target, content: str | None) -> None:
    write(pytester, duration="1s")
    path = pytester.path / "base.json"
    if content is not None:
        path.write_text(content)
    result = run(pytester, "--load-baseline", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{path}*"])
    assert not (pytester.path / "results").exists()  # nothing ran
    if content is not None:
        assert path.read_text() == content  # nothing lost
    result = run(pytester, "--load-baseline-save", str(path))
    if content is None:
        result.assert_outcomes(passed=1)
        assert json.loads(path.read_text())["tests"]
    else:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert path.read_text() == content


def test_bad_rules_are_errors_at_collection_and_in_options(
        pytester: pytest.Pytester, api: Target) -> None:
    write(pytester, extra='regressions={"http_req_duration": ["p95 < 10%"]},')
    result = run(pytester)
    result.stdout.fnmatch_lines(["*invalid @pytest.mark.load*", "*regression rule 'p95 < 10%'*"])
    write(pytester, duration="1s")
    result = run(pytester, "--load-regressions", "trend=p(95) 10%")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--load-regressions*needs a sign*"])
    result = run(pytester, "--load-marginal-fails", "maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--load-marginal-fails='maybe'*"])


def test_options_show_in_the_header(pytester: pytest.Pytester, recorded: Path) -> None:
    write(pytester, duration="1s")
    result = run(pytester, "--load-baseline", str(recorded), "--load-marginal-fails", "yes",
                 "--load-regressions", "trend=p(95) +20% >2ms")
    result.stdout.fnmatch_lines([f"*load_baseline={recorded} (--load-baseline), "
                                 "load_regressions=trend=p(95) +20% >2ms (--load-regressions), "
                                 "load_marginal_fails=yes (--load-marginal-fails)*"])


def test_saving_over_a_baseline_builds_a_history_judged_by_its_mean(
        pytester: pytest.Pytester, api: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    write(pytester, duration="3s")
    baseline = pytester.path / "baseline.json"
    monkeypatch.setenv("DELAY_MS", "5")
    for _ in range(2):   # e.g. two pushes to main, each saving over main's baseline
        run(pytester, "--load-baseline-save", str(baseline)).assert_outcomes(passed=1)
    # a third main run compared with the last baseline and saving a fresh file from it
    fresh = pytester.path / "fresh.json"
    run(pytester, "--load-baseline", str(baseline), "--load-baseline-save",
        str(fresh)).assert_outcomes(passed=1)
    (entry,) = json.loads(fresh.read_text())["tests"].values()
    assert len(entry["runs"]) == 2
    assert all("p(95)" in r["values"]["http_req_duration"] for r in entry["runs"])
    result = run(pytester, "--load-baseline", str(fresh))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*http_req_duration p(95)*(mean of 3 runs)*pass*"])
    (stat,) = the_test(pytester)["comparison"]["stats"]
    assert stat["baseline_runs"] == 3
    values = [r["values"]["http_req_duration"]["p(95)"] for r in entry["runs"]]
    mean = (sum(values) + entry["metrics"]["http_req_duration"]["p(95)"]) / 3
    assert stat["baseline"] == pytest.approx(mean, rel=1e-4)
    monkeypatch.setenv("DELAY_MS", "200")
    slow = run(pytester, "--load-baseline", str(fresh))
    slow.assert_outcomes(failed=1)
    slow.stdout.fnmatch_lines(["*http_req_duration p(95)*REGRESSED*"])
