"""The built-in metric registry against DESIGN.md's table, and its helpers."""

from __future__ import annotations

import pytest

from pytest_novaload.engine.runtime import ExecutionState, ScenarioMix
from pytest_novaload.metrics import MetricStore
from pytest_novaload.metrics.builtins import (
    BUILTINS,
    BYTE_METRICS,
    SOURCES,
    SUM_GAUGES,
    define_builtins,
    defined_by,
    is_builtin,
    unit_of,
)

# DESIGN.md "Built-in metrics" (contract), copied by hand so a drift in either fails here.
CONTRACT = {
    "http_req_duration": "trend", "http_reqs": "counter", "http_req_failed": "rate",
    "iteration_duration": "trend", "iterations": "counter", "iteration_failed": "rate",
    "dropped_iterations": "counter", "vus": "gauge", "vus_max": "gauge", "checks": "rate",
    "data_sent": "counter", "data_received": "counter",
    "ws_connecting": "trend", "ws_sessions": "counter", "ws_session_duration": "trend",
    "ws_msgs_sent": "counter", "ws_msgs_received": "counter", "ws_ping": "trend",
    "ws_msg_latency": "trend", "ws_failed": "rate",
    "db_query_duration": "trend", "db_queries": "counter", "db_query_failed": "rate",
    "db_tx_duration": "trend", "db_pool_wait": "trend", "group_duration": "trend",
}
CONTRACT_TAGS = {"http_req_duration": {"name", "method", "status"}, "iterations": {"scenario"},
                 "checks": {"check"}, "ws_ping": {"name"}, "db_queries": {"name", "kind"},
                 "group_duration": {"group"}}


def test_registry_is_the_contract_table() -> None:
    assert {name: m.kind for name, m in BUILTINS.items()} == CONTRACT
    for name, tags in CONTRACT_TAGS.items():
        assert tags <= set(BUILTINS[name].tags), name


def test_units_follow_the_kind() -> None:
    for m in BUILTINS.values():
        expected = {"trend": {"ms"}, "counter": {"count", "bytes"}, "rate": {"ratio"},
                    "gauge": {"vus"}}[m.kind]
        assert m.unit in expected, m
        assert (m.combine is not None) == (m.kind == "gauge"), m
    assert {"data_sent", "data_received"} == BYTE_METRICS
    assert {"vus", "vus_max"} == SUM_GAUGES
    assert unit_of("data_sent{name:x}") == "bytes"
    assert unit_of("http_req_duration") == "ms"
    assert unit_of("vm_creation_time") is None


def test_defined_by_picks_the_sources_metrics() -> None:
    assert [m.name for m in defined_by("db")] == [
        "db_query_duration", "db_queries", "db_query_failed", "db_tx_duration", "db_pool_wait"]
    assert {m.name for m in defined_by("constant-arrival-rate")} == {"dropped_iterations"}
    assert {m.name for m in defined_by("http", "ws")} == {
        n for n in CONTRACT if n.startswith(("http_", "ws_", "data_"))}
    assert defined_by() == ()
    every = {m.name for m in defined_by(*SOURCES)}
    assert every == set(CONTRACT)


def test_defined_by_rejects_an_unknown_source() -> None:
    with pytest.raises(ValueError, match=r"unknown metric source\(s\) \['grpc'\]"):
        defined_by("grpc")


def test_is_builtin() -> None:
    assert is_builtin("http_req_duration")
    assert is_builtin("http_req_duration{name:create_vm}")
    assert not is_builtin("http_req_durations")
    assert not is_builtin("vm_creation_time")


def test_define_builtins_defines_kinds_and_combine() -> None:
    store = MetricStore()
    define_builtins(store, "run")
    assert store.names() == sorted(m.name for m in defined_by("run"))
    assert store.kind("vus") == "gauge" and store.kind("checks") == "rate"
    assert store.gauge("vus_max").combine == "sum"


def test_run_context_defines_the_run_metrics() -> None:
    async def user(vu: object) -> None:
        return None

    store = MetricStore()
    ExecutionState(store, ScenarioMix(user), {})
    for m in defined_by("run"):
        assert store.kind(m.name) == m.kind
