"""Many shards' measurements as one run: digests merged, counters summed, never an average
of percentiles. Pure: no pytest, xdist or execnet import."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_novaload.engine.runner import Measurements, window_lines
from pytest_novaload.metrics import MetricStore
from pytest_novaload.metrics.errors import ErrorLog
from pytest_novaload.metrics.timeline import StageStores, Timeline

__all__ = ["ShardPart", "Windows", "fanout_extra", "merge_generators", "merge_parts"]


@dataclass
class ShardPart:
    """What one shard measured, and which worker and rank measured it."""

    worker: str
    rank: int
    measured: Measurements


def merge_parts(parts: Sequence[ShardPart], *, aborted: str | None = None) -> Measurements:
    """One run's measurements from its shards: stores and error logs merged (t-digests
    merged, counters summed, rates as sum/sum, VU gauges summed), the longest shard's
    duration, the earliest start and the latest end. ``aborted`` overrides the shards' own
    reasons."""
    if not parts:
        raise ValueError("merge_parts needs at least one shard")
    ordered = sorted(parts, key=lambda p: p.rank)
    store = MetricStore()
    errors = ErrorLog()
    for p in ordered:
        store.merge(p.measured.store)
        errors.merge(p.measured.errors)
    ms = [p.measured for p in ordered]
    reason = aborted or next((m.aborted for m in ms if m.aborted), None)
    stages: StageStores | None = None
    for m in ms:
        if m.stages is not None:
            if stages is None:
                stages = StageStores(m.stages.spans)
            stages.merge(m.stages)
    return Measurements(store=store, errors=errors, started=min(m.started for m in ms),
                        finished=max(m.finished for m in ms),
                        duration=max(m.duration for m in ms), timeseries=[],
                        interrupted=any(m.interrupted for m in ms), aborted=reason,
                        generator=merge_generators(ordered), stages=stages)


def merge_generators(parts: Sequence[ShardPart]) -> dict[str, Any]:
    """Generator health over shards: the worst shard's verdict, the largest lag and CPU, and
    every shard's own numbers under ``shards``."""
    gens = [(p, p.measured.generator) for p in parts if p.measured.generator]
    if not gens:
        return {}
    worst = max(gens, key=lambda pg: (bool(pg[1].get("saturated")),
                                      bool(pg[1].get("stalled")),
                                      bool(pg[1].get("planned_burst")),
                                      float(pg[1].get("loop_lag_p99_ms", 0.0))))[1]
    out = dict(worst)
    for key in ("loop_lag_p99_ms", "loop_lag_max_ms", "gc_pause_max_ms", "gc_pause_total_ms",
                "cpu"):  # per process: the worst shard's figure
        values = [float(g[key]) for _, g in gens if key in g]
        if values:
            out[key] = max(values)
    for flag in ("saturated", "stalled", "planned_burst"):
        out[flag] = any(bool(g.get(flag)) for _, g in gens)
    short = [g for _, g in gens if g.get("resource_errors")]
    if short:  # the generator's own shortage outranks every other verdict
        out["verdict"] = short[0]["verdict"]
        out["resource_errors"] = sum(int(g["resource_errors"]) for g in short)
        out["nofile_limit"] = short[0].get("nofile_limit", -1)
    out["shards"] = [{"worker": p.worker, "rank": p.rank, **g} for p, g in gens]
    return out


def fanout_extra(parts: Sequence[ShardPart], *, lost: Mapping[str, tuple[int, str]],
                 lost_before_start: Sequence[str]) -> dict[str, Any]:
    """What summary.json adds for a fanned-out test: the start spread, who ran which rank,
    the shards lost mid-run (worker -> (rank, why)) and the workers lost before the start."""
    starts = [p.measured.started for p in parts]
    extra: dict[str, Any] = {
        "start_spread_ms": round((max(starts) - min(starts)) * 1000.0, 3) if starts else 0.0,
        "workers": [{"worker": p.worker, "rank": p.rank} for p in parts],
    }
    if lost:
        extra["lost_shards"] = [{"worker": w, "rank": rank, "reason": why}
                                for w, (rank, why) in lost.items()]
    if lost_before_start:
        extra["workers_lost_before_start"] = list(lost_before_start)
    return extra


class Windows:
    """Every shard's per-second windows merged, by unix second, and their running total
    (what the controller judges abort_on_fail and shows progress on)."""

    def __init__(self, timeline: Timeline | None = None) -> None:
        self.by_second: dict[int, MetricStore] = {}
        self.total = MetricStore()
        self.timeline = timeline if timeline is not None else Timeline()
        """The judged keys per second and stage (window thresholds, intervals)."""

    def add(self, windows: Iterable[tuple[int, dict[str, Any]]]) -> None:
        for t, wd in windows:
            window = MetricStore.from_dict(wd)
            length = wd.get("length")
            self.timeline.add(int(t), window, stage=int(wd.get("stage") or 0),
                              length=float(length) if isinstance(length, int | float) else None)
            self.total.merge(window)  # copies what it keeps: the window stays independent
            mine = self.by_second.get(int(t))
            if mine is None:
                self.by_second[int(t)] = window
            else:
                mine.merge(window)

    def timeseries(self, test_id: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
        """timeseries.ndjson's lines for the merged seconds, in order."""
        lines: list[dict[str, Any]] = []
        for t in sorted(self.by_second):
            lines.extend(window_lines(self.by_second[t], t, test_id, keys))
        return lines
