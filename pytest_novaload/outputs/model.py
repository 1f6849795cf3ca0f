"""What outputs send: the current values of every series of a test, built from per-second windows.

The runner closes a window every second (``MetricStore.roll()``: a new store that shares
nothing with the live one). An output hands that window to its own thread, where a
``Cumulative`` folds it into running totals, exactly as k6's outputs keep one sink per series
for the whole test: counters and rates add up, trends merge their digests, gauges take the
window's level. ``Cumulative.values()`` then gives neutral ``SeriesValue`` records that the
Prometheus mapping (and any later output) turns into its own format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import MetricStore, Sink, Tags, parse_percentile
from pytest_novaload.metrics.builtins import builtin

__all__ = ["DEFAULT_TREND_STATS", "TREND_STATS_EXAMPLE", "Cumulative", "SeriesValue",
           "check_trend_stats", "is_time_trend"]

DEFAULT_TREND_STATS: tuple[str, ...] = ("p(99)", "p(95)", "p(90)", "med", "avg", "min", "max")
"""Trend stats sent by default: the ones DESIGN pins and k6's dashboard reads (k6 itself sends
only ``p(99)`` unless ``K6_PROMETHEUS_RW_TREND_STATS`` says more)."""

TREND_STATS_EXAMPLE = "'p(99),p(95),med,avg,min,max' (also count, sum, any p(N))"
_PLAIN_STATS = frozenset({"avg", "min", "max", "med", "count", "sum"})


def check_trend_stats(stats: Iterable[str]) -> tuple[str, ...]:
    """The trend stats, validated: avg min max med count sum or p(N) with N in (0, 100]."""
    out: list[str] = []
    bad: list[str] = []
    for raw in stats:
        stat = str(raw).strip()
        if stat in _PLAIN_STATS or parse_percentile(stat) is not None:
            if stat not in out:
                out.append(stat)
        else:
            bad.append(repr(raw))
    if bad or not out:
        what = ", ".join(bad) if bad else "an empty list"
        raise ConfigError(f"trend stats {what}: expected a comma-separated list such as "
                          f"{TREND_STATS_EXAMPLE}")
    return tuple(out)


def is_time_trend(name: str, non_time: frozenset[str] = frozenset()) -> bool:
    """Does trend ``name`` hold milliseconds? Built-ins say so in their unit; a custom trend
    does unless it is in ``non_time`` (DESIGN: trend values are milliseconds by convention)."""
    if name in non_time:
        return False
    b = builtin(name)
    return b is None or b.unit == "ms"


@dataclass(frozen=True, slots=True)
class SeriesValue:
    """One series' current value(s): a metric name, its kind, its tags and its stats.

    ``stats`` keys by kind: trend -> the requested trend stats (``"p(99)"``, ``"avg"``...,
    in the metric's own unit, milliseconds for timings); counter -> ``"count"`` (the total);
    rate -> ``"rate"``, ``"passes"``, ``"fails"``; gauge -> ``"value"``.
    """

    name: str
    kind: str
    tags: Tags
    stats: Mapping[str, float]


def _trend_stat(sink: Any, stat: str) -> float:
    if stat == "sum":
        return float(sink.mean) * int(sink.count)
    return float(sink.value(stat))


def sink_values(name: str, kind: str, tags: Tags, sink: Sink,
                trend_stats: Sequence[str]) -> SeriesValue | None:
    """The ``SeriesValue`` of one cumulative sink; None while it has nothing to say."""
    if sink.empty:
        return None
    stats: dict[str, float]
    if kind == "trend":
        stats = {s: _trend_stat(sink, s) for s in trend_stats}
    elif kind == "counter":
        stats = {"count": sink.value("count")}
    elif kind == "rate":
        d = sink.stats()
        stats = {"rate": float(d["rate"]), "passes": float(d["passes"]),
                 "fails": float(d["fails"])}
    else:
        stats = {"value": sink.value("value")}
    return SeriesValue(name, kind, tags, stats)


class Cumulative:
    """Running totals of one test, fed with its per-second windows (not thread-safe: one owner).

    Under xdist the controller merges the shards' windows of the same second first
    (``MetricStore.merge``: VU gauges add up), then feeds the merged window here, so the
    outputs see one test, never one series per worker.
    """

    __slots__ = ("_kinds", "_sinks")

    def __init__(self) -> None:
        self._sinks: dict[tuple[str, Tags], Sink] = {}
        self._kinds: dict[str, str] = {}

    def add_window(self, window: MetricStore) -> None:
        """Fold one window in; ``window`` must not change afterwards (``roll()`` output)."""
        for name in window.names():
            kind = window.kind(name)
            self._kinds[name] = kind
            for tags, sink in window.series(name).items():
                key = (name, tags)
                mine = self._sinks.get(key)
                if mine is None or kind == "gauge":
                    if kind != "gauge" or not sink.empty:
                        self._sinks[key] = sink.copy()
                else:
                    mine.merge(sink)  # type: ignore[arg-type]  # same name, same kind

    def sinks(self) -> list[tuple[str, str, Tags, Sink]]:
        """Every non-empty series as (name, kind, tags, cumulative sink), sorted by name then
        tags: for outputs that need more than stats (OTLP's histogram buckets). Read only."""
        return [(name, self._kinds[name], tags, sink)
                for (name, tags), sink in sorted(self._sinks.items(), key=lambda kv: kv[0])
                if not sink.empty]

    def values(self, trend_stats: Sequence[str] = DEFAULT_TREND_STATS) -> list[SeriesValue]:
        """Every non-empty series' current value, sorted by name then tags."""
        out: list[SeriesValue] = []
        for (name, tags), sink in sorted(self._sinks.items(), key=lambda kv: kv[0]):
            v = sink_values(name, self._kinds[name], tags, sink, trend_stats)
            if v is not None:
                out.append(v)
        return out


class SeriesNames:
    """An output's redacted series: (name, tags) -> the same with every secret hidden
    (``Redactor.redact_tags``), worked out once per series and redactor (bounded)."""

    __slots__ = ("_by", "_cache")

    def __init__(self) -> None:
        self._cache: dict[tuple[str, Tags], tuple[str, Tags]] = {}
        self._by: Any = None

    def clean(self, redactor: Any, name: str, tags: Tags) -> tuple[str, Tags]:
        if redactor is not self._by or len(self._cache) > 100_000:
            self._cache = {}
            self._by = redactor
        key = (name, tags)
        got = self._cache.get(key)
        if got is None:
            got = self._cache[key] = (redactor.redact(name), redactor.redact_tags(tags))
        return got
