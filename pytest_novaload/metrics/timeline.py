"""A run's numbers over time: per-second windows of the metric keys the gate judges, and one
store per stage of the plan.

The runner cuts its store once a second (``MetricStore.roll()``), and also at each stage
boundary, so every piece it cuts lies in one second and one stage. ``Timeline`` keeps, per
(second, stage), the aggregate of each metric key a threshold or a regression rule names, its
trend digests compacted (bounded memory: a few KB per key and second), for confidence
intervals and sliding-window thresholds. ``StageStores`` keeps every sample of each stage
(full digests, every tag), for stage-scoped thresholds and ``result.metric(name,
stage=...)``; shards send theirs with their measurements and the controller merges them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_novaload.metrics.sinks import Sink, Trend
from pytest_novaload.metrics.store import MetricStore, metric_key, new_sink, parse_metric_key
from pytest_novaload.units import parse_duration

__all__ = ["WINDOW_CENTROIDS", "StageSpan", "StageStores", "Timeline", "spans_of",
           "strip_stage"]

WINDOW_CENTROIDS = 64
"""Centroids of a kept per-second digest (as the xdist windows travel): its CDF at the run's
p(99) is accurate far below the noise the intervals measure."""


@dataclass(frozen=True)
class StageSpan:
    """One stage of the plan: 1-based ``index``, its ``name`` if it has one, and when it runs
    (seconds from the load's start)."""

    index: int
    name: str | None
    start: float
    end: float

    @property
    def label(self) -> str:
        return f"'{self.name}'" if self.name else f"{self.index}"


def spans_of(executor: Mapping[str, Any]) -> tuple[StageSpan, ...]:
    """The stages of an executor's ``describe()`` (``stages: [[duration, target, name?]]``)."""
    raw = executor.get("stages")
    if not isinstance(raw, list | tuple):
        return ()
    out: list[StageSpan] = []
    t = 0.0
    for i, st in enumerate(raw, 1):
        if isinstance(st, Mapping):
            dur, name = st.get("duration", 0), st.get("name")
        elif isinstance(st, list | tuple) and st:
            dur, name = st[0], (st[2] if len(st) > 2 else None)
        else:
            continue
        try:
            seconds = parse_duration(dur)
        except Exception:
            seconds = 0.0
        out.append(StageSpan(i, str(name) if name else None, t, t + seconds))
        t += seconds
    return tuple(out)


def find_stage(ref: str, spans: Sequence[StageSpan]) -> StageSpan | None:
    """The stage ``ref`` names: a stage name, or its 1-based number."""
    for s in spans:
        if s.name is not None and s.name == ref:
            return s
    if ref.isdigit():
        n = int(ref)
        for s in spans:
            if s.index == n:
                return s
    return None


def strip_stage(key: str) -> tuple[str, str | None]:
    """``http_req_duration{stage:peak,name:x}`` -> (``http_req_duration{name:x}``, "peak")."""
    name, filters = parse_metric_key(key)
    stage = filters.pop("stage", None)
    return metric_key(name, filters), stage


@dataclass
class StageStores:
    """Every sample of each stage (by 1-based index) and how long each stage ran."""

    spans: tuple[StageSpan, ...] = ()
    stores: dict[int, MetricStore] = field(default_factory=dict)
    seconds: dict[int, float] = field(default_factory=dict)

    def add(self, index: int, window: MetricStore, length: float) -> None:
        store = self.stores.get(index)
        if store is None:
            self.stores[index] = store = MetricStore()
        store.merge(window)
        self.seconds[index] = self.seconds.get(index, 0.0) + length

    def find(self, ref: str) -> StageSpan | None:
        return find_stage(ref, self.spans)

    def store(self, index: int, like: MetricStore | None = None) -> MetricStore:
        """The stage's store; an empty one defining ``like``'s metrics when nothing ran."""
        have = self.stores.get(index)
        if have is not None:
            return have
        out = MetricStore()
        if like is not None:
            for name in like.names():
                out.define(name, like.kind(name))
        return out

    def duration(self, index: int) -> float:
        return self.seconds.get(index, 0.0)

    def merge(self, other: StageStores) -> None:
        """Shards: stores merged, each stage as long as its longest shard ran it."""
        if not self.spans:
            self.spans = other.spans
        for i, store in other.stores.items():
            mine = self.stores.get(i)
            if mine is None:
                self.stores[i] = mine = MetricStore()
            mine.merge(store)
        for i, s in other.seconds.items():
            self.seconds[i] = max(self.seconds.get(i, 0.0), s)

    def to_wire(self) -> dict[str, Any]:
        return {"spans": [[s.index, s.name, s.start, s.end] for s in self.spans],
                "stores": {str(i): s.to_dict() for i, s in self.stores.items()},
                "seconds": {str(i): s for i, s in self.seconds.items()}}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> StageStores:
        return cls(tuple(StageSpan(int(i), n, float(a), float(b)) for i, n, a, b in d["spans"]),
                   {int(i): MetricStore.from_dict(s) for i, s in d["stores"].items()},
                   {int(i): float(s) for i, s in d["seconds"].items()})


class Timeline:
    """Per-second (and per-stage) aggregates of the metric keys the gate judges."""

    def __init__(self, keys: Iterable[str] = (), spans: Sequence[StageSpan] = ()) -> None:
        self.keys = tuple(dict.fromkeys(strip_stage(k)[0] for k in keys))
        self.spans = tuple(spans)
        self.t0: float | None = None
        """Unix time the load started (window starts are reported from it)."""
        self._pieces: dict[tuple[int, int], dict[str, Sink]] = {}
        self._lengths: dict[tuple[int, int], float] = {}
        self._kinds: dict[str, str] = {}
        self._parsed = [(k, *parse_metric_key(k)) for k in self.keys]

    def add(self, t: int, window: MetricStore, *, stage: int = 0,
            length: float | None = None) -> None:
        """Keep ``window``'s numbers (the second ``t``, stage ``stage``, 0 for none);
        ``length`` is how much of that second it covered. Shards cover the same seconds side
        by side, so a (second, stage) is as long as its longest piece."""
        piece = self._pieces.setdefault((t, stage), {})
        if length is not None and length > 0:
            self._lengths[(t, stage)] = min(max(self._lengths.get((t, stage), 0.0), length), 1.0)
        for key, name, filters in self._parsed:
            if name not in window:
                continue
            sink = window.aggregate(name, filters or None)
            if sink.kind == "gauge":
                continue  # a gauge's second says nothing a window threshold can add up
            if isinstance(sink, Trend):
                if sink.empty:
                    continue
                sink = sink.compact(WINDOW_CENTROIDS)
            self._kinds.setdefault(key, sink.kind)
            have = piece.get(key)
            if have is None:
                piece[key] = sink
            else:
                have.merge(sink)  # type: ignore[arg-type]  # same key, same kind

    def kind(self, key: str) -> str | None:
        return self._kinds.get(key)

    @property
    def first(self) -> int | None:
        return min((t for t, _ in self._pieces), default=None)

    def series(self, key: str, stage: int | None = None) -> list[tuple[int, Sink]]:
        """(second, sink) in time order, every second of the run (of the stage) included, an
        empty sink where the key had no sample (a counter's zero counts for throughput)."""
        kind = self._kinds.get(key, "counter")
        by_t: dict[int, Sink] = {}
        for (t, st), piece in sorted(self._pieces.items()):
            if stage is not None and st != stage:
                continue
            have = by_t.get(t)
            sink = piece.get(key)
            if have is None:
                by_t[t] = sink.copy() if sink is not None else new_sink(kind)
            elif sink is not None:
                have.merge(sink)  # type: ignore[arg-type]
        return sorted(by_t.items())

    def lengths(self, stage: int | None = None) -> list[float]:
        """How much of each second (of the stage) was covered, in ``series()``'s order: the
        first and last seconds of a run are partial, and a throughput that counts them as
        whole seconds sees a ramp that is not there. A second with no recorded length is 1."""
        by_t: dict[int, float] = {}
        for t, st in sorted(self._pieces):
            if stage is not None and st != stage:
                continue
            by_t[t] = by_t.get(t, 0.0) + self._lengths.get((t, st), 0.0)
        return [min(v, 1.0) if v > 0 else 1.0 for _, v in sorted(by_t.items())]

    def sliding(self, key: str, length: float) -> list[tuple[int, Sink, int]]:
        """Every window of ``length`` seconds (whole seconds, rounded up) sliding a second at a
        time: (start second, merged sink, seconds). A run shorter than ``length`` is one
        window."""
        series = self.series(key)
        if not series:
            return []
        n = max(math.ceil(length - 1e-9), 1)
        kind = self._kinds.get(key, "counter")
        if len(series) <= n:
            return [(series[0][0], _merged(kind, [s for _, s in series]), len(series))]
        return [(series[i][0], _merged(kind, [s for _, s in series[i:i + n]]), n)
                for i in range(len(series) - n + 1)]

    def trailing(self, key: str, length: float) -> tuple[int, Sink, int] | None:
        """The last ``length`` seconds (all of them while the run is shorter)."""
        series = self.series(key)
        if not series:
            return None
        n = max(math.ceil(length - 1e-9), 1)
        tail = series[-n:]
        return tail[0][0], _merged(self._kinds.get(key, "counter"), [s for _, s in tail]), \
            len(tail)


def _merged(kind: str, sinks: Sequence[Sink]) -> Sink:
    out = new_sink(kind)
    for s in sinks:
        out.merge(s)  # type: ignore[arg-type]
    return out
