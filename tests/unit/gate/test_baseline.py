"""The baseline file: recording, loading from each source, errors, compatibility."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_novaload.errors import BaselineError, UsageError
from pytest_novaload.gate.baseline import (
    BASELINE_KIND,
    MAX_RUNS,
    baseline_from_summary,
    compatibility,
    dump_baseline,
    load_baseline,
    load_summary,
    save_baseline,
)
from tests.gate.summaries import MACHINE, make_test, summary, trend, write_run


def test_entry_keeps_threshold_metrics_throughput_intervals_and_context() -> None:
    t = make_test(regressions={"vm_creation_time": ["p(95) +5%"]})
    t["metrics"]["vm_creation_time"] = trend(200.0)
    t["metrics"]["http_req_duration{name:get_vm}"] = trend(50.0)   # a breakdown, unnamed
    data = baseline_from_summary(summary(t))
    assert data["schema_version"] == 1 and data["kind"] == BASELINE_KIND
    entry = data["tests"]["tests/perf/test_api_load.py::test_api_vm_crud"]
    assert {"http_req_duration", "http_req_failed", "http_reqs", "vm_creation_time",
            "vus"} <= set(entry["metrics"])
    assert "http_req_duration{name:get_vm}" not in entry["metrics"]
    assert entry["metrics"]["http_req_duration"]["ci95"]["p(95)"] == [95.0, 105.0]
    assert entry["throughput"]["metric"] == "http_reqs"
    assert entry["throughput"]["rate"] == 100.0 and entry["throughput"]["at_vus"] == 10
    assert entry["executor"]["type"] == "ramping-vus" and entry["shards"] == 1
    assert entry["machine"] == MACHINE and entry["options"]["load_scale"] == 0.01
    assert "sources" not in entry["options"]
    assert entry["measures"]["suite"] == "api"
    assert entry["regressions"] == {"vm_creation_time": ["p(95) +5%"]}


def test_file_is_diffable_sorted_json(tmp_path: Path) -> None:
    path = save_baseline(tmp_path / "sub" / "baseline.json", summary())
    text = path.read_text()
    assert text.endswith("}\n") and '\n  "kind"' in text
    assert text == dump_baseline(json.loads(text))    # sorted keys: stable under a rewrite
    assert not list(tmp_path.glob("**/*.tmp"))


def test_save_keeps_entries_of_tests_not_run(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    save_baseline(path, summary(make_test("a.py::t1"), make_test("a.py::t2", p95=5.0)))
    save_baseline(path, summary(make_test("a.py::t2", p95=7.0)))
    tests = load_baseline(path).tests
    assert set(tests) == {"a.py::t1", "a.py::t2"}
    assert tests["a.py::t2"]["metrics"]["http_req_duration"]["p(95)"] == 7.0
    save_baseline(path, summary(make_test("a.py::t3")), keep_others=False)
    assert set(load_baseline(path).tests) == {"a.py::t3"}


def test_nan_is_written_as_null(tmp_path: Path) -> None:
    t = make_test()
    t["metrics"]["http_req_duration"]["p(99)"] = float("nan")
    path = save_baseline(tmp_path / "b.json", summary(t))
    assert "NaN" not in path.read_text()


def test_load_from_file_folder_and_summary(tmp_path: Path) -> None:
    run = write_run(tmp_path / "20261201T100000Z", summary())
    from_folder = load_baseline(run)
    from_summary = load_baseline(run / "summary.json")
    saved = load_baseline(save_baseline(tmp_path / "b.json", summary()))
    assert from_folder.source == from_summary.source == "summary"
    assert saved.source == "baseline"
    assert from_folder.tests == from_summary.tests == saved.tests
    assert from_folder.path.endswith("summary.json")
    assert load_summary(run)["tests"][0]["nodeid"].endswith("test_api_vm_crud")


@pytest.mark.parametrize(("content", "says"), [
    (None, "no such file or directory"),
    ("{not json", "is not valid JSON (line 1, column 2"),
    ("[1, 2]", "holds a JSON list, not an object"),
    ('{"tests": {}}', "neither a baseline file"),
    ('{"schema_version": 1, "kind": "pytest-novaload baseline", "tests": {"a": 3}}',
     "entry 'a' has no 'metrics' object"),
    ('{"schema_version": 9, "tests": []}', "schema_version 9, newer"),
    ('{"tests": []}', "no integer schema_version"),
])
def test_missing_or_corrupt_baseline_names_the_file(tmp_path: Path, content: str | None,
                                                    says: str) -> None:
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BaselineError) as exc:
        load_baseline(path)
    assert isinstance(exc.value, UsageError)
    assert f"baseline '{path}'" in str(exc.value) and says in str(exc.value)
    assert ("pass a baseline file" in str(exc.value)
            or "upgrade pytest-novaload" in str(exc.value))


def test_folder_without_summary_and_baseline_as_run(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match=r"is a folder without a summary\.json"):
        load_baseline(tmp_path)
    path = save_baseline(tmp_path / "b.json", summary())
    with pytest.raises(BaselineError, match=r"NEW .* is not a summary\.json"):
        load_summary(path, what="NEW")


def test_corrupt_existing_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("{oops")
    with pytest.raises(BaselineError, match="not valid JSON"):
        save_baseline(path, summary())
    assert path.read_text() == "{oops"


def _entry(**kw: object) -> dict[str, object]:
    return baseline_from_summary(summary(make_test(**kw)))["tests"][
        "tests/perf/test_api_load.py::test_api_vm_crud"]


def test_compatibility_levels() -> None:
    base = _entry()
    opts = {"load_scale": 0.01, "load_duration_scale": 0.025}
    assert compatibility(base, make_test(), machine=MACHINE, options=opts) == ("ok", [])
    other_host = dict(MACHINE, hostname="runner-xyz", platform="Linux-6.5.0-x86_64")
    assert compatibility(base, make_test(), machine=other_host, options=opts)[0] == "ok"
    level, why = compatibility(base, make_test(), machine=dict(MACHINE, cpus=8),
                               options=dict(opts, load_scale=0.1))
    assert level == "warn"
    assert any("machine kind" in w for w in why) and any("load_scale" in w for w in why)
    scaled = make_test(executor={"type": "ramping-vus", "stages": [["30s", 100], ["30s", 100]]})
    level, why = compatibility(base, scaled, machine=MACHINE, options=opts)
    assert level == "warn" and "another plan scale: peak 100 now, 10" in why[0]
    assert compatibility(base, make_test(shards=2), machine=MACHINE)[0] == "warn"


@pytest.mark.parametrize(("executor", "says"), [
    ({"type": "constant-vus", "vus": 10, "duration": "60s"}, "another executor"),
    ({"type": "ramping-vus", "stages": [["30s", 10]]}, "another stage shape"),
    ({"type": "ramping-vus", "stages": [["30s", 10], ["30s", 0]]}, "another stage shape"),
    ({"type": "ramping-vus", "stages": [["50s", 10], ["10s", 10]]}, "another stage shape"),
])
def test_incomparable_plans(executor: dict[str, object], says: str) -> None:
    level, why = compatibility(_entry(), make_test(executor=executor))
    assert level == "incomparable" and says in why[0]


def test_interrupted_runs_are_incomparable() -> None:
    level, why = compatibility(_entry(), make_test(outcome="interrupted"))
    assert level == "incomparable" and why[0] == "this run was interrupted"


def test_saving_again_keeps_the_earlier_runs_values(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    node = "tests/perf/test_api_load.py::test_api_vm_crud"
    for p95 in (100.0, 104.0, 98.0):
        save_baseline(path, summary(make_test(p95=p95)))
    entry = load_baseline(path).tests[node]
    assert entry["metrics"]["http_req_duration"]["p(95)"] == 98.0        # the latest run
    runs = entry["runs"]
    assert [r["values"]["http_req_duration"]["p(95)"] for r in runs] == [100.0, 104.0]
    assert runs[0]["values"]["http_req_duration"]["p(99)"] == 150.0
    assert runs[0]["values"]["http_reqs"]["rate"] == 100.0             # the default rules
    for i in range(MAX_RUNS + 3):
        save_baseline(path, summary(make_test(p95=100.0 + i)))
    runs = load_baseline(path).tests[node]["runs"]
    assert len(runs) == MAX_RUNS - 1
    assert runs[-1]["values"]["http_req_duration"]["p(95)"] == 100.0 + MAX_RUNS + 1


def test_an_incompatible_run_starts_the_history_over(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    node = "tests/perf/test_api_load.py::test_api_vm_crud"
    save_baseline(path, summary(make_test(p95=100.0)))
    save_baseline(path, summary(make_test(p95=101.0)))
    assert len(load_baseline(path).tests[node]["runs"]) == 1
    save_baseline(path, summary(make_test(p95=300.0), scale=1.0))     # another scale
    assert "runs" not in load_baseline(path).tests[node]
    other = dict(MACHINE, cpus=16)
    save_baseline(path, summary(make_test(p95=301.0), scale=1.0, machine=other))
    assert "runs" not in load_baseline(path).tests[node]
    failed = make_test(p95=302.0, outcome="failed")
    save_baseline(path, summary(failed, scale=1.0, machine=other))
    save_baseline(path, summary(make_test(p95=303.0), scale=1.0, machine=other))
    assert "runs" not in load_baseline(path).tests[node]   # after a failed baseline run


def test_history_comes_from_the_compared_baseline_when_the_file_is_new(tmp_path: Path) -> None:
    main = save_baseline(tmp_path / "main.json", summary(make_test(p95=100.0)))
    save_baseline(main, summary(make_test(p95=102.0)))
    fresh = save_baseline(tmp_path / "new.json", summary(make_test(p95=99.0)),
                          previous=load_baseline(main))
    runs = load_baseline(fresh).tests["tests/perf/test_api_load.py::test_api_vm_crud"]["runs"]
    assert [r["values"]["http_req_duration"]["p(95)"] for r in runs] == [100.0, 102.0]
