"""End to end against a real Prometheus: push k6-shaped series, read them back with PromQL,
and run every query of Grafana's "k6 Prometheus" dashboard against them."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_novaload.metrics import MetricStore, make_tags
from pytest_novaload.outputs.promrw import PrometheusRemoteWrite
from tests.outputs.conftest import Prometheus

QUERIES = json.loads(Path(__file__).with_name("k6_dashboard_queries.json").read_text())
TEST_ID = "tests/perf/test_api.py::test_vm_crud[fast]"
OTHER_ID = "tests/perf/test_ws.py::test_chat"
OK = make_tags(expected_response="true", method="GET", name="/api/vms", status="200")
BAD = make_tags(expected_response="false", method="POST", name="/api/vms", status="500")
SECONDS = 6


def _promql_regex(value: str) -> str:
    """``value`` as a PromQL regex literal body (RE2 escapes, then string escapes)."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", value).replace("\\", "\\\\")


def _run(out: PrometheusRemoteWrite, test_id: str, t0: float, scale: int) -> MetricStore:
    """A small run in the shape our clients record, one window a second; the live store."""
    store = MetricStore()
    for sec in range(SECONDS):
        n_ok, n_bad = scale * (10 + 5 * sec), scale * (sec % 3)
        for i in range(n_ok):
            store.trend("http_req_duration", OK).add(20.0 + (i * 7919) % 180)
            store.counter("http_reqs", OK).add()
            store.rate("http_req_failed", OK).add(False)
        for i in range(n_bad):
            store.trend("http_req_duration", BAD).add(400.0 + i)
            store.counter("http_reqs", BAD).add()
            store.rate("http_req_failed", BAD).add(True)
        for i in range(n_ok // 2):
            store.trend("iteration_duration", make_tags(scenario="default")).add(50.0 + i)
            store.counter("iterations", make_tags(scenario="default")).add()
            store.rate("checks", make_tags(check="status is 200")).add(i % 10 != 0)
        store.counter("dropped_iterations").add(sec)
        store.counter("data_sent").add(150 * (n_ok + n_bad))
        store.counter("data_received").add(230 * (n_ok + n_bad))
        store.trend("vm_creation_time").add(900.0 + sec)
        store.counter("ws_msgs_sent", make_tags(name="chat")).add(3)
        store.gauge("vus").set(2 + sec)
        store.gauge("vus_max").set(10)
        out.window(test_id, t0 + sec, store.roll())
    return store


@pytest.fixture(scope="module")
def pushed(prometheus: Prometheus) -> dict[str, Any]:
    warnings: list[str] = []
    out = PrometheusRemoteWrite(prometheus.write_url, warn=warnings.append)
    t0 = math.floor(time.time()) - SECONDS - 2.0
    stores = {TEST_ID: _run(out, TEST_ID, t0, 1), OTHER_ID: _run(out, OTHER_ID, t0, 2)}
    report = out.close()
    assert report.ok and report.sent == 2 * SECONDS, (report.line(), warnings,
                                                      prometheus.log.read_text()[-2000:])
    return {"stores": stores, "at": t0 + SECONDS - 1 + 0.5}


def _one(prom: Prometheus, expr: str, at: float) -> float:
    result = prom.query(expr, at)
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


def test_values_read_back_with_promql(prometheus: Prometheus, pushed: dict[str, Any]) -> None:
    store: MetricStore = pushed["stores"][TEST_ID]
    at = pushed["at"]
    sel = f'testid="{TEST_ID}"'
    assert _one(prometheus, f"sum(k6_http_reqs_total{{{sel}}})", at) == store.aggregate(
        "http_reqs").value("count")
    for tags in (OK, BAD):
        d = dict(tags)
        lab = ",".join(f'{k}="{v}"' for k, v in d.items())
        trend = store.aggregate("http_req_duration", d)
        for stat, agg in (("p99", "p(99)"), ("p95", "p(95)"), ("p90", "p(90)"), ("med", "med"),
                          ("avg", "avg"), ("min", "min"), ("max", "max")):
            got = _one(prometheus, f"k6_http_req_duration_{stat}{{{sel},{lab}}}", at)
            assert got == pytest.approx(trend.value(agg) / 1000.0, rel=1e-9), stat
        failed = store.aggregate("http_req_failed", d).value("rate")
        assert _one(prometheus, f"k6_http_req_failed_rate{{{sel},{lab}}}", at) == failed
    assert _one(prometheus, f"k6_vus{{{sel}}}", at) == 2 + SECONDS - 1
    assert _one(prometheus, f"k6_vus_max{{{sel}}}", at) == 10
    assert _one(prometheus, f'k6_checks_rate{{{sel},check="status is 200"}}', at) == (
        pytest.approx(store.aggregate("checks").value("rate")))
    assert _one(prometheus, f"k6_iterations_total{{{sel}}}", at) == store.aggregate(
        "iterations").value("count")
    assert _one(prometheus, f"k6_vm_creation_time_max{{{sel}}}", at) == pytest.approx(
        (900.0 + SECONDS - 1) / 1000.0)
    assert _one(prometheus, f'k6_ws_msgs_sent_total{{{sel},name="chat"}}', at) == 3 * SECONDS
    # irate over the last two samples (one second apart): the last window's requests
    last_ok, last_bad = 10 + 5 * (SECONDS - 1), (SECONDS - 1) % 3
    assert _one(prometheus, f"sum(irate(k6_http_reqs_total{{{sel}}}[1m]))", at) == (
        pytest.approx(last_ok + last_bad))
    other = pushed["stores"][OTHER_ID].aggregate("http_reqs").value("count")
    assert _one(prometheus, f'sum(k6_http_reqs_total{{testid="{OTHER_ID}"}})', at) == other


def test_dashboard_variables_list_our_run(prometheus: Prometheus, pushed: dict[str, Any]) -> None:
    assert {TEST_ID, OTHER_ID} <= set(prometheus.api("/api/v1/label/testid/values"))
    names = prometheus.api("/api/v1/label/__name__/values")
    regex = QUERIES["variables"]["quantile_stat"]["regex"].strip("/g").strip("/")
    stats = {m.group(1) for n in names if n.startswith("k6_http_req_duration_")
             and (m := re.search(regex, n))}
    assert stats == set(QUERIES["substitutions"]["$quantile_stat"])


def _dashboard_cases() -> list[Any]:
    return [pytest.param(q, id=f"{q['panel']}:{q['refId']}:{q['quantile_stat'] or '-'}")
            for q in QUERIES["queries"] if q["covered"]]


def test_uncovered_dashboard_queries_are_only_http_phases(prometheus: Prometheus,
                                                          pushed: dict[str, Any]) -> None:
    """The queries our data cannot answer: k6's HTTP phase timings, which we do not measure."""
    uncovered = [q for q in QUERIES["queries"] if not q["covered"]]
    assert uncovered and len(uncovered) < len(QUERIES["queries"]) / 2
    for q in uncovered:
        assert re.search(r"k6_http_req_(blocked|tls_handshaking|sending|waiting|receiving)_",
                         q["expr"]), q["expr"]
        expr = q["expr"].replace("{testid}", _promql_regex(TEST_ID))
        assert prometheus.query(expr, pushed["at"]) == [], expr  # update the data if not


@pytest.mark.parametrize("q", _dashboard_cases())
def test_dashboard_query_returns_our_series(prometheus: Prometheus, pushed: dict[str, Any],
                                            q: dict[str, Any]) -> None:
    expr = q["expr"].replace("{testid}", _promql_regex(TEST_ID))
    result = prometheus.query(expr, pushed["at"])
    assert result, f"no data for the dashboard's query {expr}"
    for item in result:
        value = float(item["value"][1])
        assert math.isfinite(value), (expr, item)
        if "testid" in item["metric"]:
            assert item["metric"]["testid"] == TEST_ID  # the regex selects this test only
    if q["raw"].startswith("sum(k6_http_reqs_total"):
        store: MetricStore = pushed["stores"][TEST_ID]
        d = {"expected_response": "false"} if "false" in expr else None
        assert float(result[0]["value"][1]) == store.aggregate("http_reqs", d).value("count")


def test_testid_regex_escaping_matches_only_that_test() -> None:
    assert re.fullmatch(_promql_regex(TEST_ID).replace("\\\\", "\\"), TEST_ID)
    assert not re.fullmatch(_promql_regex(TEST_ID).replace("\\\\", "\\"),
                            TEST_ID.replace("[", "x"))


def test_uncompressed_snappy_fallback_is_accepted(prometheus: Prometheus,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Without cramjam (the ``prom`` extra) the literal-only Snappy block still lands."""
    from pytest_novaload.outputs import _snappy

    monkeypatch.setattr(_snappy, "_cramjam", lambda: None)
    out = PrometheusRemoteWrite(prometheus.write_url)
    store = MetricStore()
    store.counter("http_reqs", OK).add(41)
    t = math.floor(time.time()) - 1.0
    out.window("tests/x.py::test_literal", t, store.roll())
    assert out.close().ok
    assert _one(prometheus, 'k6_http_reqs_total{testid="tests/x.py::test_literal"}',
                t + 0.5) == 41
