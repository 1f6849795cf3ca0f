"""SUMMARY.md: the overview table, then per test thresholds, trends, counters, checks, errors."""

from __future__ import annotations

from typing import Any

from pytest_novaload.reporting import markdown


def trend(count: int, avg: float) -> dict[str, Any]:
    return {"type": "trend", "count": count, "avg": avg, "min": 1.0, "med": avg, "max": 90.0,
            "p(90)": 40.0, "p(95)": 50.0, "p(99)": 70.0, "p(99.9)": 80.0}


def summary() -> dict[str, Any]:
    test = {
        "nodeid": "tests/perf/test_api.py::test_crud", "outcome": "failed",
        "executor": {"type": "ramping-vus"}, "shards": 2, "duration_s": 12.34,
        "aborted": "abort_on_fail: http_req_duration p(95)<5",
        "thresholds": [
            {"metric": "http_req_duration", "expression": "p(95)<500", "observed": 50.0,
             "ok": True},
            {"metric": "http_req_failed", "expression": "rate<0.01", "observed": 0.05,
             "display": "5.00%", "ok": False, "reason": "observed above the limit"},
            {"metric": "vm_time", "expression": "p(95)<10", "observed": None, "ok": False},
        ],
        "metrics": {
            "http_req_duration": trend(200, 12.5),
            "http_req_duration{name:create}": trend(100, 20.0),
            "group_duration": trend(0, 0.0),          # never recorded: no row
            "http_reqs": {"type": "counter", "count": 200, "rate": 16.21},
            "http_reqs{name:create}": {"type": "counter", "count": 100, "rate": 8.1},
            "data_received": {"type": "counter", "count": 1_234_567, "rate": 100_000},
            "http_req_failed": {"type": "rate", "rate": 0.05, "passes": 10, "fails": 190},
            "vus": {"type": "gauge", "value": 0, "min": 0, "max": 8},
        },
        "checks": {"status is 201": {"passes": 99, "fails": 1},
                   "has id": {"passes": 100, "fails": 0}},
        "start_spread_ms": 1.5,
        "errors": [{"type": "ConnectError", "count": 3,
                    "example": "ConnectError: refused\nTraceback ..." + "x" * 300}],
        "generator": {"verdict": "healthy", "loop": "uvloop", "loop_lag_p99_ms": 1.2,
                      "cpu": 0.25},
    }
    return {"started": "2026-12-01T10:00:00+00:00",
            "options": {"load_scale": 0.5, "load_duration_scale": 1.0},
            "machine": {"hostname": "ci-1", "cpus": 2}, "tests": [test]}


def test_overview_names_options_machine_and_every_test() -> None:
    lines = markdown.render(summary()).splitlines()
    assert lines[0] == "# Load test results — 2026-12-01T10:00:00+00:00"
    assert "Options: scale 0.5, duration scale 1.0. Machine: ci-1 (2 CPUs)." in lines
    assert ("| `tests/perf/test_api.py::test_crud` | failed | ramping-vus | 2 | 12.3s | "
            "1/3 ok |") in lines


def test_thresholds_show_observed_display_and_reason() -> None:
    lines = markdown.render(summary()).splitlines()
    assert "**Aborted:** abort_on_fail: http_req_duration p(95)<5" in lines
    assert "| `http_req_duration` | `p(95)<500` | 50 | ok |" in lines
    assert ("| `http_req_failed` | `rate<0.01` | 5.00% | **FAILED** — observed above the "
            "limit |") in lines
    assert "| `vm_time` | `p(95)<10` | — | **FAILED** |" in lines


def test_trends_list_recorded_series_with_sub_metrics() -> None:
    text = markdown.render(summary())
    assert "| `http_req_duration` | 200 | 12.50 | 12.50 | 50.00 | 70.00 | 90.00 |" in text
    assert "| `http_req_duration{name:create}` | 100 | 20.00 |" in text
    assert "group_duration" not in text


def test_counters_rates_and_bytes_read_like_k6() -> None:
    lines = markdown.render(summary()).splitlines()
    assert "| `http_reqs` | 200 (16.21/s) |" in lines
    assert "| `data_received` | 1.2 MB (100.0 kB/s) |" in lines
    assert "| `http_req_failed` | 5.00% (10 out of 200) |" in lines
    assert not any(line.startswith("| `http_reqs{") for line in lines)   # bases only
    assert not any(line.startswith("| `vus`") for line in lines)          # gauges: terminal


def test_checks_errors_spread_and_generator() -> None:
    lines = markdown.render(summary()).splitlines()
    assert "| ✗ status is 201 | 99.00% | 99 | 1 |" in lines
    assert "| ✓ has id | 100.00% | 100 | 0 |" in lines
    assert "Shards: 2, start spread 1.5 ms." in lines
    (error,) = [line for line in lines if line.startswith("| ConnectError")]
    assert error == "| ConnectError | 3 | `ConnectError: refused` |"   # first line only
    assert lines[-1] == "Generator: healthy (loop uvloop, lag p99 1.2 ms, CPU 25%)."


def test_a_long_example_is_cut_to_200_characters() -> None:
    s = summary()
    s["tests"][0]["errors"] = [{"type": "E", "count": 1, "example": "y" * 500}]
    (error,) = [x for x in markdown.render(s).splitlines() if x.startswith("| E |")]
    assert error == f"| E | 1 | `{'y' * 200}` |"


def test_an_empty_session_and_a_bare_test_render() -> None:
    text = markdown.render({})
    assert text.startswith("# Load test results — \n")
    assert text.endswith("|---|---|---|---|---:|---|\n")
    bare = markdown.render({"tests": [{"nodeid": "t.py::x", "outcome": "passed"}]})
    assert "| `t.py::x` | passed |  | 1 | 0.0s | 0/0 ok |" in bare.splitlines()
    assert bare.endswith("## `t.py::x` — passed\n\n")
