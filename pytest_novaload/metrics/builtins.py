"""The registry of built-in metrics: name, kind, unit, tags and what defines each one.

DESIGN.md's table "Built-in metrics" is the contract; this module is its one copy in code.
Clients, the runtime, executors and reports read it instead of listing names themselves, so
a metric is renamed or added in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pytest_novaload.metrics.store import MetricStore

__all__ = [
    "BUILTINS",
    "BYTE_METRICS",
    "SOURCES",
    "SUM_GAUGES",
    "BuiltinMetric",
    "Kind",
    "Unit",
    "builtin",
    "define_builtins",
    "defined_by",
    "is_builtin",
    "unit_of",
]

Kind = Literal["trend", "counter", "rate", "gauge"]
Unit = Literal["ms", "count", "bytes", "ratio", "vus"]


@dataclass(frozen=True, slots=True)
class BuiltinMetric:
    """One built-in metric.

    ``source`` says what defines it (with zero values) before any sample: ``"run"`` for every
    run, a protocol (``"http"``, ``"ws"``, ``"db"``) when a VU first uses that client,
    ``"group"`` on the first ``vu.group``, or executor names. ``combine`` is how a gauge's
    shards merge (``"sum"`` or ``"max"``); None for the other kinds.
    """

    name: str
    kind: Kind
    unit: Unit
    tags: tuple[str, ...]
    sources: frozenset[str]
    description: str
    combine: Literal["sum", "max"] | None = None


def _m(name: str, kind: Kind, unit: Unit, tags: tuple[str, ...], sources: str | Iterable[str],
       description: str, combine: Literal["sum", "max"] | None = None) -> BuiltinMetric:
    src = frozenset((sources,) if isinstance(sources, str) else sources)
    return BuiltinMetric(name, kind, unit, tags, src, description, combine)


_VU = ("scenario", "group")   # every client sample: the VU's scenario, its group inside one
_HTTP_TAGS = ("name", "method", "status", "expected_response", "error", *_VU)
_DB_TAGS = ("name", "kind", "error", *_VU)
_WS_TAGS = ("name", *_VU)
_ARRIVAL = ("constant-arrival-rate", "ramping-arrival-rate")

_ALL = (
    _m("http_req_duration", "trend", "ms", _HTTP_TAGS, "http", "time of one HTTP request"),
    _m("http_reqs", "counter", "count", _HTTP_TAGS, "http", "HTTP requests made"),
    _m("http_req_failed", "rate", "ratio", _HTTP_TAGS, "http",
       "share of HTTP requests with an unexpected status or a transport error"),
    _m("data_sent", "counter", "bytes", _VU, "http", "bytes sent by the HTTP client"),
    _m("data_received", "counter", "bytes", _VU, "http", "bytes received by the HTTP client"),
    _m("iteration_duration", "trend", "ms", ("scenario",), "run", "time of one iteration"),
    _m("iterations", "counter", "count", ("scenario",), "run", "iterations completed"),
    _m("iteration_failed", "rate", "ratio", ("scenario",), "run",
       "share of iterations whose scenario raised"),
    _m("dropped_iterations", "counter", "count", ("scenario",), _ARRIVAL,
       "iteration starts skipped because every VU up to max_vus was busy"),
    _m("vus", "gauge", "vus", (), "run", "VUs running an iteration", combine="sum"),
    _m("vus_max", "gauge", "vus", (), "run", "VUs allocated", combine="sum"),
    _m("checks", "rate", "ratio", ("check", *_VU), "run",
       "share of vu.check predicates that held"),
    _m("ws_connecting", "trend", "ms", _WS_TAGS, "ws", "WebSocket opening handshake time"),
    _m("ws_sessions", "counter", "count", _WS_TAGS, "ws", "WebSocket sessions opened"),
    _m("ws_session_duration", "trend", "ms", _WS_TAGS, "ws", "WebSocket session lifetime"),
    _m("ws_msgs_sent", "counter", "count", _WS_TAGS, "ws", "WebSocket messages sent"),
    _m("ws_msgs_received", "counter", "count", _WS_TAGS, "ws", "WebSocket messages received"),
    _m("ws_ping", "trend", "ms", _WS_TAGS, "ws", "WebSocket ping round trip"),
    _m("ws_msg_latency", "trend", "ms", _WS_TAGS, "ws",
       "request/response round trip of ws.request"),
    _m("ws_failed", "rate", "ratio", _WS_TAGS, "ws",
       "share of WebSocket sessions that failed to open or ended abnormally"),
    _m("db_query_duration", "trend", "ms", _DB_TAGS, "db", "time of one database statement"),
    _m("db_queries", "counter", "count", _DB_TAGS, "db", "database statements run"),
    _m("db_query_failed", "rate", "ratio", _DB_TAGS, "db", "share of statements that raised"),
    _m("db_tx_duration", "trend", "ms", ("name", "kind", *_VU), "db",
       "time of one transaction"),
    _m("db_pool_wait", "trend", "ms", (), "db", "time waiting for a pooled connection"),
    _m("group_duration", "trend", "ms", _VU, "group", "time spent inside vu.group"),
)

BUILTINS: Mapping[str, BuiltinMetric] = MappingProxyType({m.name: m for m in _ALL})
"""Every built-in metric by name, in DESIGN.md's order."""

SOURCES = frozenset().union(*(m.sources for m in _ALL))
"""Every value ``defined_by`` accepts."""

SUM_GAUGES = frozenset(m.name for m in _ALL if m.combine == "sum")
"""Built-in gauges whose shards add up when merged (the default ``combine`` for them)."""

BYTE_METRICS = frozenset(m.name for m in _ALL if m.unit == "bytes")
"""Built-in counters of bytes (reports show them as kB/MB, not as counts)."""


def builtin(name: str) -> BuiltinMetric | None:
    """The built-in metric ``name`` (without tag filters), or None for a custom metric."""
    return BUILTINS.get(name)


def is_builtin(name: str) -> bool:
    """True when ``name`` (a bare name or a key such as ``name{tag:value}``) is a built-in."""
    return name.split("{", 1)[0] in BUILTINS


def unit_of(key: str) -> Unit | None:
    """The unit of a built-in metric key (``data_sent{name:x}`` -> "bytes"); None if custom."""
    m = BUILTINS.get(key.split("{", 1)[0])
    return None if m is None else m.unit


def defined_by(*sources: str) -> tuple[BuiltinMetric, ...]:
    """The built-ins any of ``sources`` defines, in registry order; a bad source is a bug."""
    unknown = set(sources) - SOURCES
    if unknown:
        raise ValueError(f"unknown metric source(s) {sorted(unknown)}; expected some of "
                         f"{', '.join(sorted(SOURCES))}")
    wanted = set(sources)
    return tuple(m for m in _ALL if m.sources & wanted)


def define_builtins(store: MetricStore, *sources: str) -> None:
    """Define (with zero values) every built-in of ``sources`` in ``store``."""
    for m in defined_by(*sources):
        store.define(m.name, m.kind, combine=m.combine)
