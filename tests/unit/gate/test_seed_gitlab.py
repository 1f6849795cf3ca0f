"""The seed plan's Performance Baselines filled from a run, and GitLab's metrics report."""

from __future__ import annotations

import re

import pytest

from pytest_novaload.gate.gitlab import metric_name, render_metrics
from pytest_novaload.gate.seed import measures, render_markdown, suite_of, throughput
from tests.gate.summaries import counter, gauge, make_test, rate, summary, trend


def _suites() -> list[dict[str, object]]:
    api = make_test()
    api["metrics"]["vm_creation_time"] = trend(300.0)
    dwcp = make_test("tests/perf/test_dwcp_load.py::test_dwcp_migrations")
    dwcp["metrics"].update({"migration_duration": trend(20_000.0, count=120),
                            "ws_msg_latency{name:dwcp}": trend(40.0),
                            "dwcp_errors": rate(0.01)})
    ws = make_test("tests/perf/test_websocket_load.py::test_websocket_connections")
    ws["metrics"].update({"ws_msg_latency": trend(12.0), "ws_connecting": trend(3.0),
                          "ws_failed": rate(0.02), "vus": gauge(1000)})
    db = make_test("tests/perf/test_database_load.py::test_database_queries",
                   client_options={"db": {"max_size": 20}})
    db["metrics"].update({"db_query_duration": trend(8.0),
                          "db_query_duration{kind:read}": trend(5.0),
                          "db_query_duration{kind:write}": trend(15.0),
                          "db_queries": counter(900.0), "db_query_failed": rate(0.0)})
    return [api, dwcp, ws, db]


def test_suite_detection() -> None:
    api, dwcp, ws, db = _suites()
    assert [suite_of(t) for t in (api, dwcp, ws, db)] == ["api", "dwcp", "websocket",
                                                           "database"]
    assert suite_of(make_test("tests/test_other.py::t")) is None
    odd = make_test("tests/x.py::t")
    odd["metrics"]["migration_duration"] = trend(1.0)
    assert suite_of(odd) == "dwcp"
    assert measures(make_test("tests/test_other.py::t")) == {}


def test_measures_values() -> None:
    api, dwcp, ws, db = _suites()
    m = {i["label"]: i for i in measures(dwcp)["items"]}
    assert m["Migrations/sec"]["value"] == 120 / 60.0
    assert m["Migration Time (P95)"]["value"] == 20_000.0
    assert m["Protocol Latency"]["value"] == 40.0
    w = {i["label"]: i for i in measures(ws)["items"]}
    assert w["Max Concurrent"]["value"] == 1000
    assert w["Success Rate"]["value"] == 0.98
    d = {i["label"]: i for i in measures(db)["items"]}
    assert d["Connection Pool"]["value"] == 20 and d["Write Latency (P95)"]["value"] == 15.0
    a = {i["label"]: i for i in measures(api)["items"]}
    assert a["Throughput"]["at_vus"] == 10 and a["Latency (P99)"]["value"] == 150.0


def test_render_fills_every_blank_of_the_plan() -> None:
    text = render_markdown(summary(*_suites()))
    for heading in ("### API Endpoints", "### DWCP Protocol", "### WebSocket Connections",
                    "### Database Operations"):
        assert heading in text
    assert "- **Throughput**: 100.0 req/sec @ 10 users [97.5, 102.5]" in text
    assert "- **Latency (P95)**: 100.0 ms [95, 105]" in text
    assert "- **Migration Time (P95)**: 20.00 seconds [19.00, 21.00]" in text
    assert "- **Success Rate**: 98.00%" in text
    assert "- **Connection Pool**: 20 connections" in text
    assert "- **Error Rate**: 0.00%" in text
    assert "_X" not in text
    assert render_markdown(summary(make_test("tests/test_other.py::t"))) == ""
    missing = make_test("tests/perf/test_dwcp_load.py::t")
    assert "_not measured_" in render_markdown(summary(missing))


def test_throughput_at_peak_vus_or_rate() -> None:
    tp = throughput(make_test())
    assert tp == {"metric": "http_reqs", "rate": 100.0,
                  "ci95": [pytest.approx(97.5), pytest.approx(102.5)], "at_vus": 10}
    arr = make_test(executor={"type": "constant-arrival-rate", "rate": 50, "time_unit": "1s",
                              "duration": "60s"})
    del arr["metrics"]["http_reqs"]
    tp = throughput(arr)
    assert tp["metric"] == "iterations" and tp["at_rate"] == 50


def test_gitlab_metrics_report() -> None:
    api = _suites()[0]
    api["comparison"] = {"verdict": "regressed", "stats": [{"verdict": "regressed"}]}
    text = render_metrics(summary(api))
    lines = text.splitlines()
    assert lines[-1] == "# EOF"
    name = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]* \S+")
    assert all(name.fullmatch(line) for line in lines[:-1])
    values = dict(line.split(" ") for line in lines[:-1])
    t = "novaload_test_api_load_test_api_vm_crud"
    assert values[f"{t}_http_req_duration_p95_ms"] == "100"
    assert values[f"{t}_http_req_failed_rate"] == "0.001"
    assert values[f"{t}_http_reqs_per_s"] == "100"
    assert values[f"{t}_thresholds_failed"] == "0" and values[f"{t}_regressions"] == "1"
    assert len(values) == len(lines) - 1      # no name twice
    nan = make_test()
    nan["metrics"]["http_req_duration"]["p(95)"] = float("nan")
    assert "p95_ms" not in render_metrics(summary(nan)).split("p99_ms")[0]


def test_metric_name_sanitizes() -> None:
    assert metric_name("novaload", "test_x[a-b/1]", "http_req_duration{name:get}", "p95_ms") \
        == "novaload_test_x_a_b_1_http_req_duration_name_get_p95_ms"
    assert metric_name("9lives") == "_9lives" and metric_name("") == "unnamed"
