"""The seed plan's "Performance Baselines (To Be Established)", filled from a run.

The plan (``../shared/seed/``) leaves blanks per suite: API throughput at N users, P95, P99 and
error rate; DWCP migrations/s, migration time P95, protocol latency and error rate; WebSocket
max concurrent connections, message latency P95, connection time P95 and success rate;
database query throughput, read/write P95, pool size and error rate. ``measures(test)`` reads
them from a summary.json test entry (recorded in the baseline) and ``render_markdown(summary)``
prints the plan's section with every blank filled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_novaload.gate.values import format_interval, stat_interval, stat_value

__all__ = ["SUITES", "measures", "render_markdown", "suite_of", "throughput"]


@dataclass(frozen=True)
class Measure:
    label: str
    metric: str | None      # None: read from the test entry itself (pool size)
    stat: str
    unit: str               # "ms", "s", "%", "/s", "" (a count)
    complement: bool = False  # success rate = 1 - failure rate


SUITES: dict[str, tuple[str, tuple[Measure, ...]]] = {
    "api": ("API Endpoints", (
        Measure("Throughput", "http_reqs", "rate", "req/sec"),
        Measure("Latency (P95)", "http_req_duration", "p(95)", "ms"),
        Measure("Latency (P99)", "http_req_duration", "p(99)", "ms"),
        Measure("Error Rate", "http_req_failed", "rate", "%"),
    )),
    "dwcp": ("DWCP Protocol", (
        Measure("Migrations/sec", "migration_duration", "rate", "migrations/sec"),
        Measure("Migration Time (P95)", "migration_duration", "p(95)", "s"),
        Measure("Protocol Latency", "ws_msg_latency{name:dwcp}", "p(95)", "ms"),
        Measure("Error Rate", "dwcp_errors", "rate", "%"),
    )),
    "websocket": ("WebSocket Connections", (
        Measure("Max Concurrent", "vus", "max", "connections"),
        Measure("Message Latency (P95)", "ws_msg_latency", "p(95)", "ms"),
        Measure("Connection Time (P95)", "ws_connecting", "p(95)", "ms"),
        Measure("Success Rate", "ws_failed", "rate", "%", complement=True),
    )),
    "database": ("Database Operations", (
        Measure("Query Throughput", "db_queries", "rate", "queries/sec"),
        Measure("Read Latency (P95)", "db_query_duration{kind:read}", "p(95)", "ms"),
        Measure("Write Latency (P95)", "db_query_duration{kind:write}", "p(95)", "ms"),
        Measure("Connection Pool", None, "pool", "connections"),
        Measure("Error Rate", "db_query_failed", "rate", "%"),
    )),
}
"""suite -> (the plan's heading, its measures in the plan's order)."""

_SIGNATURES = (("dwcp", "migration_duration"), ("database", "db_query_duration"),
               ("websocket", "ws_msg_latency"), ("api", "vm_creation_time"))
_NODEID_HINTS = (("dwcp", "dwcp"), ("database", "database"), ("websocket", "websocket"),
                 ("api", "api_load"))


def suite_of(test: Mapping[str, Any]) -> str | None:
    """Which of the plan's four suites a test entry is: by its file name (``test_api_load``,
    ``test_dwcp_load``...), else by the metric only that suite records; None for others."""
    nodeid = str(test.get("nodeid", "")).split("::")[0].lower()
    for suite, hint in _NODEID_HINTS:
        if hint in nodeid:
            return suite
    metrics = test.get("metrics") or {}
    for suite, metric in _SIGNATURES:
        if metric in metrics:
            return suite
    return None


def _pool(test: Mapping[str, Any]) -> float | None:
    db = (test.get("client_options") or {}).get("db") or {}
    size = db.get("max_size") if isinstance(db, Mapping) else None
    return float(size) if isinstance(size, int | float) else None


def _metric(test: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    metrics = test.get("metrics") or {}
    entry = metrics.get(key)
    if entry is None and key == "ws_msg_latency{name:dwcp}":
        entry = metrics.get("ws_msg_latency")   # the DWCP stream is its only WebSocket
    return entry if isinstance(entry, Mapping) else None


def measures(test: Mapping[str, Any]) -> dict[str, Any]:
    """``{"suite", "title", "items": [{"label", "metric", "stat", "value", "unit", "ci95"}]}``
    for a test of one of the four suites; ``{}`` for any other test."""
    suite = suite_of(test)
    if suite is None:
        return {}
    title, wanted = SUITES[suite]
    duration = test.get("duration_s")
    items: list[dict[str, Any]] = []
    for m in wanted:
        entry = _metric(test, m.metric) if m.metric else None
        value = _pool(test) if m.metric is None else stat_value(entry, m.stat, duration)
        ci = stat_interval(entry, m.stat) if m.metric else None
        if value is not None and m.complement:
            value = 1.0 - value
            ci = (1.0 - ci[1], 1.0 - ci[0]) if ci else None
        item: dict[str, Any] = {"label": m.label, "metric": m.metric, "stat": m.stat,
                                "value": value, "unit": m.unit,
                                "ci95": list(ci) if ci else None}
        if m.label == "Throughput":
            item["at_vus"] = stat_value(_metric(test, "vus_max") or _metric(test, "vus"),
                                        "max")
        items.append(item)
    return {"suite": suite, "title": title, "items": items}


def throughput(test: Mapping[str, Any]) -> dict[str, Any]:
    """Throughput at the peak VUs or rate: http requests per second (iterations when the test
    sends no HTTP), with its interval, the peak VUs and the planned rate."""
    metrics = test.get("metrics") or {}
    name = "http_reqs" if "http_reqs" in metrics and (metrics["http_reqs"].get("count")) \
        else "iterations"
    entry = _metric(test, name)
    executor = test.get("executor") or {}
    out: dict[str, Any] = {
        "metric": name, "rate": stat_value(entry, "rate"),
        "ci95": list(ci) if (ci := stat_interval(entry, "rate")) else None,
        "at_vus": stat_value(_metric(test, "vus_max") or _metric(test, "vus"), "max"),
    }
    if "rate" in executor or ("stages" in executor and str(executor.get("type", "")).endswith(
            "arrival-rate")):
        stages = executor.get("stages") or []
        out["at_rate"] = executor.get("rate", max((s[1] for s in stages), default=None))
        out["time_unit"] = executor.get("time_unit", "1s")
    return out


def _show(item: Mapping[str, Any]) -> str:
    value, unit = item.get("value"), str(item.get("unit", ""))
    if value is None:
        return "_not measured_"
    ci = item.get("ci95")
    interval = tuple(ci) if isinstance(ci, list | tuple) and len(ci) == 2 else None
    if unit == "%":
        text = f"{value * 100:.2f}%"
        iv = format_interval(interval, "%")
    elif unit == "s":
        text = f"{value / 1000:.2f} seconds"
        iv = f"[{interval[0] / 1000:.2f}, {interval[1] / 1000:.2f}]" if interval else ""
    elif unit == "ms":
        text = f"{value:.1f} ms"
        iv = format_interval(interval, "ms")
    elif unit.endswith("/sec"):
        text = f"{value:.1f} {unit}"
        iv = format_interval(interval, "/s")
        if item.get("at_vus") is not None:
            text += f" @ {item['at_vus']:.0f} users"
    else:
        text = f"{value:.0f} {unit}".strip()
        iv = ""
    return f"{text} {iv}".strip()


def render_markdown(summary: Mapping[str, Any]) -> str:
    """The plan's "Performance Baselines" section, filled for each suite the run holds."""
    out = ["## Performance Baselines", ""]
    tests = [t for t in summary.get("tests") or () if isinstance(t, Mapping)]
    found = [(t, measures(t)) for t in tests]
    found = [(t, m) for t, m in found if m]
    if not found:
        return ""
    opts = summary.get("options") or {}
    out += [f"Measured {summary.get('started', '')} at scale {opts.get('load_scale', 1)} "
            f"(durations x{opts.get('load_duration_scale', 1)}); 95% intervals in brackets.",
            ""]
    for suite in SUITES:
        for t, m in found:
            if m["suite"] != suite:
                continue
            out += [f"### {m['title']}", f"`{t.get('nodeid', '')}`", ""]
            out += [f"- **{item['label']}**: {_show(item)}" for item in m["items"]]
            out.append("")
    return "\n".join(out)
