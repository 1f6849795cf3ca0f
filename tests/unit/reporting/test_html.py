"""report.html: well-formed, escaped, one chart per series, robust to missing data."""

from __future__ import annotations

import re
from typing import Any

from pytest_novaload.reporting import html
from tests.unit.reporting.strict_html import StrictParser, parse

NODEID = "tests/test_api.py::test_vm_crud[<b>&x]"


def trend(avg: float, p95: float, count: int = 100) -> dict[str, Any]:
    return {"type": "trend", "count": count, "avg": avg, "min": 1.0, "med": avg * 0.9,
            "max": p95 * 2, "p(90)": p95 * 0.9, "p(95)": p95, "p(99)": p95 * 1.2,
            "p(99.9)": p95 * 1.5}


def http_test() -> dict[str, Any]:
    return {
        "nodeid": NODEID, "outcome": "failed",
        "started": "2026-11-27T08:10:22.397+00:00", "finished": "2026-11-27T08:10:25.451+00:00",
        "duration_s": 3.049,
        "executor": {"type": "ramping-vus", "start_vus": 1,
                     "stages": [["1s", 8], ["1s", 8], ["1s", 0]], "graceful_stop": "30s"},
        "shards": 2,
        "metrics": {
            "checks": {"type": "rate", "rate": 0.5, "passes": 5, "fails": 5},
            "data_received": {"type": "counter", "count": 55893, "rate": 18330.6},
            "http_req_duration": trend(6.0, 31.5, 325),
            "http_req_duration{name:create}": trend(6.2, 31.6, 272),
            "http_req_failed": {"type": "rate", "rate": 0.163, "passes": 53, "fails": 272},
            "http_reqs": {"type": "counter", "count": 325, "rate": 106.6},
            "iteration_duration": trend(57.9, 82.5, 272),
            "iterations": {"type": "counter", "count": 272, "rate": 89.2},
            "vus": {"type": "gauge", "value": 0, "min": 0, "max": 8},
        },
        "thresholds": [
            {"metric": "http_req_duration", "expression": "p(95)<500", "observed": 31.54,
             "ok": True, "display": "31.5 ms"},
            {"metric": "http_req_failed", "expression": "rate<0.01", "observed": 0.163,
             "ok": False, "display": "0.163 (16.30%)"},
            {"metric": "http_reqs", "expression": "rate>1000", "observed": 106.6, "ok": False,
             "display": "106.6/s"},
            {"metric": "vm_creation_time", "expression": "p(95)<2000", "observed": None,
             "ok": False, "reason": "no samples of vm_creation_time"},
        ],
        "checks": {"status is <2xx>": {"passes": 5, "fails": 5}},
        "errors": [{"type": "ReadTimeout", "count": 3,
                    "example": "ReadTimeout: <script>alert('err')</script>\nsecond line",
                    "traceback": "Traceback ...\n  File \"<x>\"\nReadTimeout"}],
        "generator": {"loop_lag_p99_ms": 3.0, "loop_lag_max_ms": 3.0, "gc_pause_max_ms": 0.0,
                      "gc_pause_total_ms": 0.0, "cpu": 0.155, "python": "3.11.7",
                      "loop": "uvloop", "saturated": False, "verdict": "ok"},
        "warnings": ["http_reqs has 300 distinct 'name' tags <pass name=>"],
        "start_spread_ms": 12.5,
    }


def no_http_test() -> dict[str, Any]:
    return {
        "nodeid": "tests/test_work.py::test_<script>alert(1)</script>", "outcome": "passed",
        "duration_s": 1.0, "executor": {"type": "constant-vus", "vus": 2, "duration": "1s"},
        "shards": 1,
        "metrics": {"iteration_duration": trend(47.9, 50.5, 42),
                    "iteration_failed": {"type": "rate", "rate": 0.05, "passes": 2, "fails": 40},
                    "iterations": {"type": "counter", "count": 42, "rate": 40.2},
                    "work_ms": trend(3.0, 3.0, 42),
                    "checks": {"type": "rate", "rate": 0.0, "passes": 0, "fails": 0}},
        "thresholds": [], "checks": {}, "errors": [], "generator": {},
    }


def summary(*tests: dict[str, Any]) -> dict[str, Any]:
    return {"schema_version": 1, "started": "2026-11-27T08:10:22+00:00",
            "finished": "2026-11-27T08:10:26+00:00",
            "machine": {"hostname": "vm", "cpus": 2, "python": "3.11.7"},
            "options": {"load_scale": 1.0, "load_duration_scale": 1.0},
            "targets": {"API_URL": "http://127.0.0.1:8080"}, "tests": list(tests)}


def lines(test: str, seconds: int, t0: int = 1_795_767_022) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(seconds):
        t = t0 + i
        out += [
            {"t": t, "test": test, "metric": "http_reqs", "count": 100 + i, "rate": 100.0 + i},
            {"t": t, "test": test, "metric": "http_req_duration", **trend(5.0 + i, 30.0 + i),
             "rate": 100.0, "errors": i},
            {"t": t, "test": test, "metric": "iterations", "count": 90, "rate": 90.0},
            {"t": t, "test": test, "metric": "iteration_duration", **trend(50.0, 80.0),
             "rate": 90.0, "errors": 0},
            {"t": t, "test": test, "metric": "iteration_failed", "rate": 0.0, "passes": 0,
             "fails": 90},
            {"t": t, "test": test, "metric": "vus", "value": 8 - i, "min": 0, "max": 8},
        ]
    return out


def svgs(p: StrictParser) -> list[str]:
    return [a.get("aria-label") or "" for tag, a in p.tags if tag == "svg"]


def test_a_realistic_run_renders_well_formed_with_every_section() -> None:
    t1, t2 = http_test(), no_http_test()
    ts = lines(t1["nodeid"], 4) + [
        {"t": 1_795_767_030 + i, "test": t2["nodeid"], "metric": "iterations", "count": 40,
         "rate": 40.0} for i in range(2)]
    page = html.render(summary(t1, t2), ts)
    p = parse(page)
    text = "".join(p.text)
    assert page.startswith("<!DOCTYPE html>")
    # Both nodeids appear escaped, never raw.
    assert "tests/test_api.py::test_vm_crud[&lt;b&gt;&amp;x]" in page
    assert NODEID in text
    assert "<b>&x" not in page
    for section in ("Thresholds", "Trends (ms)", "Counters, rates and gauges", "Checks",
                    "Errors", "Generator health"):
        assert section in text
    # Four charts per test, each an <svg>; the HTTP test's have data, so polylines.
    assert svgs(p) == ["Requests per second", "http_req_duration (ms)", "Errors per second",
                       "Active VUs", "Iterations per second", "iteration_duration (ms)",
                       "Errors per second", "Active VUs"]
    polylines = [a for tag, a in p.tags if tag == "polyline"]
    # test 1: req/s, p95 + p99 + avg, failed requests + failed iterations, vus = 7; test 2:
    # iterations/s.
    assert len(polylines) == 8
    assert all(len((a.get("points") or "").split()) in (2, 4) for a in polylines)
    # The header: executor, stages, shards, extra keys.
    assert "ramping-vus" in text and "1s → 8, 1s → 8, 1s → 0" in text
    assert "start_spread_ms" in text and "constant-vus" in text


def test_thresholds_show_observed_with_unit_and_failed_ones() -> None:
    p = parse(html.render(summary(http_test()), []))
    text = "".join(p.text)
    rows = re.findall(r"<tr>(.*?)</tr>", html.render(summary(http_test()), []))
    th_rows = [r for r in rows if "<code>" in r and ("&lt;500" in r or "rate" in r
                                                      or "p(95)&lt;2000" in r)]
    assert any("p(95)&lt;500" in r and "31.5 ms" in r and ">ok<" in r for r in th_rows)
    assert any("rate&lt;0.01" in r and "16.30%" in r and "FAILED" in r for r in th_rows)
    assert any("rate&gt;1000" in r and "106.6/s" in r and "FAILED" in r for r in th_rows)
    assert any("vm_creation_time" in r and "n/a" in r and "no samples" in r for r in th_rows)
    assert text.count("FAILED") == 3
    assert "1/4" in text  # the overview's thresholds ok column


def test_the_reason_column_shows_only_when_a_threshold_has_a_reason() -> None:
    with_reason = html.render(summary(http_test()), [])
    assert "<th>reason</th>" in with_reason
    t = http_test()
    t["thresholds"] = [th for th in t["thresholds"] if not th.get("reason")]
    page = html.render(summary(t), [])
    assert "<th>reason</th>" not in page
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", page) if "p(95)&lt;500" in r)
    assert row.count("<td") == 4   # metric, expression, observed, result


def test_user_data_is_escaped_everywhere() -> None:
    page = html.render(summary(http_test(), no_http_test()), lines("x<script>", 1))
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page          # nodeid
    assert "&lt;script&gt;alert(&#x27;err&#x27;)&lt;/script&gt;" in page  # error example
    assert "status is &lt;2xx&gt;" in page                          # check name
    assert "&lt;pass name=&gt;" in page                             # warning
    parse(page)


def test_empty_timeseries_and_no_http_metrics_render() -> None:
    page = html.render(summary(no_http_test()), [])
    p = parse(page)
    assert svgs(p) == ["Iterations per second", "iteration_duration (ms)",
                       "Errors per second", "Active VUs"]
    assert not [t for t, _ in p.tags if t == "polyline"]
    assert "".join(p.text).count("no data") == 4
    assert "Requests per second" not in "".join(p.text)
    assert ">checks<" not in page  # a rate never added to is left out, not shown as 0.00%


def test_a_run_without_tests_or_fields_still_renders() -> None:
    parse(html.render({}, []))
    parse(html.render({"tests": [{"nodeid": "t::x"}]}, [{"test": "t::x", "metric": "vus"}]))
