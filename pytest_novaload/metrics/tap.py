"""Sinks that also hand every sample to a recorder: how ``json=PATH`` sees every sample.

A store with a tap (``MetricStore.tap(factory)``) creates these instead of the plain sinks;
``factory(name, kind, tags)`` gives the per-series recorder (one call per sample, or None to
leave that series plain). The plain sinks are untouched, so a run without a tap pays nothing,
not even an attribute check; a tapped sink's copies, windows and merges behave as the plain
ones (their recorder is a no-op), so summaries and outputs are the same with or without it.
"""

from __future__ import annotations

from collections.abc import Callable

from pytest_novaload.metrics.digest import MAX_CENTROIDS
from pytest_novaload.metrics.sinks import Counter, Gauge, Rate, Sink, Trend

__all__ = ["Recorder", "TapFactory", "tapped_sink"]

Recorder = Callable[[float], None]
"""Told each sample's value of one series."""
TapFactory = Callable[[str, str, tuple[tuple[str, str], ...]], Recorder | None]
"""(metric name, kind, sorted tags) -> that series' recorder, or None for a plain sink."""


def _ignore(_value: float) -> None:
    return None


class TapTrend(Trend):
    """A trend that records each ``add`` (windows and copies get the no-op recorder)."""

    __slots__ = ("_rec",)

    def __init__(self, max_centroids: int = MAX_CENTROIDS, rec: Recorder = _ignore) -> None:
        super().__init__(max_centroids)
        self._rec = rec

    def add(self, x: float) -> None:
        buf = self._buf
        buf.append(x)
        if len(buf) >= 512:
            self._flush()
        self._rec(x)


class TapCounter(Counter):
    __slots__ = ("_rec",)

    def __init__(self, total: float = 0, rec: Recorder = _ignore) -> None:
        super().__init__(total)
        self._rec = rec

    def add(self, value: float = 1) -> None:
        self._total += value
        self._rec(value)


class TapRate(Rate):
    __slots__ = ("_rec",)

    def __init__(self, rec: Recorder = _ignore) -> None:
        super().__init__()
        self._rec = rec

    def add(self, value: bool | float) -> None:
        if value:
            self._passes += 1
            self._rec(1)
        else:
            self._fails += 1
            self._rec(0)


class TapGauge(Gauge):
    __slots__ = ("_rec",)

    def __init__(self, combine: str = "max", rec: Recorder = _ignore) -> None:
        super().__init__(combine)
        self._rec = rec

    def set(self, value: float) -> None:
        Gauge.set(self, value)
        self._rec(value)

    add = set


def tapped_sink(kind: str, combine: str, rec: Recorder) -> Sink:
    """A sink of ``kind`` that tells ``rec`` each sample."""
    if kind == "trend":
        return TapTrend(rec=rec)
    if kind == "counter":
        return TapCounter(rec=rec)
    if kind == "rate":
        return TapRate(rec=rec)
    return TapGauge(combine, rec=rec)
