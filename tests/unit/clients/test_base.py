"""The clients' shared parts: the one guarded error hand-off and the call sinks."""

from __future__ import annotations

from pytest_novaload.clients.base import ClientContext
from pytest_novaload.clients.measure import CallSinks
from pytest_novaload.metrics import MetricStore


def test_report_hands_the_cause_over_and_survives_a_broken_callback() -> None:
    seen: list[tuple[str, str, str]] = []
    ctx = ClientContext(store=MetricStore(), vu_id=1,
                        on_error=lambda *args: seen.append(args))
    ctx.report("ws_failed", "WsConnectError", "ws connect to ws://127.0.0.1:9/ failed")
    assert seen == [("ws_failed", "WsConnectError", "ws connect to ws://127.0.0.1:9/ failed")]

    def broken(metric: str, kind: str, example: str) -> None:
        raise RuntimeError("callback bug")

    ClientContext(store=MetricStore(), vu_id=1, on_error=broken).report("m", "t", "e")
    ClientContext(store=MetricStore(), vu_id=1).report("m", "t", "e")  # no callback: nothing


def test_call_sinks_record_duration_count_and_outcome() -> None:
    store = MetricStore()
    for name, kind in (("db_query_duration", "trend"), ("db_queries", "counter"),
                       ("db_query_failed", "rate")):
        store.define(name, kind)
    sinks = CallSinks(store, ("db_query_duration", "db_queries", "db_query_failed"),
                      (("kind", "read"), ("name", "SELECT vms")))
    sinks.record(3.0, False)
    sinks.record(None, True)  # no connection: counted and failed, no duration
    assert store.aggregate("db_queries", {"name": "SELECT vms"}).value("count") == 2
    assert store.aggregate("db_query_failed").value("rate") == 0.5
    assert store.aggregate("db_query_duration").value("count") == 1
