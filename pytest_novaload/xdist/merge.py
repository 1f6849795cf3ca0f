"""Many shards' measurements as one run: digests merged, counters summed, never an average
of percentiles. Pure: no pytest, xdist or execnet import."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_novaload.engine.runner import RunOutput
from pytest_novaload.engine.runtime import ErrorLog
from pytest_novaload.metrics import MetricStore
from pytest_novaload.xdist.wire import ShardPart


def merge_parts(parts: Sequence[ShardPart], *, aborted: str | None = None) -> RunOutput:
    """One run's output from its shards: stores and error logs merged (t-digests merged,
    counters summed, rates as sum/sum, VU gauges summed), the longest shard's duration, the
    earliest start and the latest end. ``aborted`` overrides the shards' own reasons."""
    if not parts:
        raise ValueError("merge_parts needs at least one shard")
    ordered = sorted(parts, key=lambda p: p.rank)
    store = MetricStore()
    errors = ErrorLog()
    for p in ordered:
        store.merge(p.store)
        errors.merge(p.errors)
    reason = aborted or next((p.aborted for p in ordered if p.aborted), None)
    return RunOutput(store=store, errors=errors, started=min(p.started for p in ordered),
                     finished=max(p.finished for p in ordered),
                     duration=max(p.duration for p in ordered), timeseries=[],
                     interrupted=any(p.interrupted for p in ordered), aborted=reason,
                     generator=merge_generators(ordered))


def merge_generators(parts: Sequence[ShardPart]) -> dict[str, Any]:
    """Generator health over shards: the worst shard's verdict, the largest lag and CPU, and
    every shard's own numbers under ``shards``."""
    gens = [(p, p.generator) for p in parts if p.generator]
    if not gens:
        return {}
    worst = max(gens, key=lambda pg: (bool(pg[1].get("saturated")),
                                      float(pg[1].get("loop_lag_p99_ms", 0.0))))[1]
    out = dict(worst)
    for key in ("loop_lag_p99_ms", "loop_lag_max_ms", "gc_pause_max_ms", "gc_pause_total_ms",
                "cpu"):  # per process: the worst shard's figure
        values = [float(g[key]) for _, g in gens if key in g]
        if values:
            out[key] = max(values)
    out["saturated"] = any(bool(g.get("saturated")) for _, g in gens)
    out["shards"] = [{"worker": p.worker, "rank": p.rank, **g} for p, g in gens]
    return out

