"""The four metric kinds (k6's): Trend, Counter, Rate, Gauge.

Every sink records cheaply, merges in place (associatively, so shards combine in any order),
rolls a per-second window off without touching its cumulative values, summarises itself in
the summary.json shape, answers a threshold aggregation, and travels as JSON builtins.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, TypeAlias

from pytest_novaload.metrics.digest import Digest

__all__ = [
    "KINDS",
    "KIND_AGGREGATIONS",
    "Counter",
    "Gauge",
    "Rate",
    "Sink",
    "Trend",
    "format_percentile",
    "parse_percentile",
    "sink_from_dict",
    "supports",
    "unsupported_reason",
]

KINDS = ("trend", "counter", "rate", "gauge")
"""The metric kinds, k6's names."""

KIND_AGGREGATIONS: dict[str, tuple[str, ...]] = {
    "trend": ("avg", "min", "max", "med", "p(N)"),
    "counter": ("count", "rate"),
    "rate": ("rate",),
    "gauge": ("value",),
}
"""The threshold aggregations each kind supports: k6's ``supportedAggregationMethods``
(``p(N)``: any percentile 0 <= N <= 100, p(0) the minimum). ``value()`` answers a few more
for ``result.metric`` and the reports (a trend's count, a gauge's min and max)."""

_PERCENTILE = re.compile(r"p\(\s*(\d+(?:\.\d*)?|\.\d+)\s*\)")
_SUMMARY_PERCENTILES = (90.0, 95.0, 99.0, 99.9)


def parse_percentile(agg: str) -> float | None:
    """N of ``"p(N)"`` when N is in [0, 100]; None when ``agg`` is not such a percentile."""
    m = _PERCENTILE.fullmatch(agg.strip())
    if m is None:
        return None
    n = float(m.group(1))
    return n if 0.0 <= n <= 100.0 else None


def supports(kind: str, agg: str) -> bool:
    """True when a threshold may use ``agg`` on a metric of ``kind`` (k6's table)."""
    allowed = KIND_AGGREGATIONS.get(kind, ())
    return agg in allowed or ("p(N)" in allowed and parse_percentile(agg) is not None)


def unsupported_reason(kind: str, agg: str) -> str:
    """k6's words for an aggregation the kind does not support, with the supported ones."""
    allowed = ", ".join(KIND_AGGREGATIONS[kind])
    return f"unsupported aggregation method {agg} on metric of type {kind}; supported are: " \
           f"{allowed}"


def format_percentile(n: float) -> str:
    """The canonical spelling: ``p(95)`` for 95.0, ``p(99.9)``, ``p(97.5)``."""
    return f"p({int(n)})" if float(n).is_integer() else f"p({n!r})"


_ANSWERS: dict[str, tuple[str, ...]] = {**KIND_AGGREGATIONS,
                                        "trend": ("avg", "min", "max", "med", "count", "p(N)"),
                                        "gauge": ("value", "min", "max")}
"""What ``value()`` answers: the threshold aggregations and the extras."""


def _unsupported(kind: str, agg: str) -> KeyError:
    allowed = ", ".join(_ANSWERS[kind])
    return KeyError(f"aggregation '{agg}' does not apply to a {kind} metric; "
                    f"a {kind} supports: {allowed}")


class Trend(Digest):
    """Timings and other distributions (milliseconds by convention): a t-digest."""

    __slots__ = ()
    kind: ClassVar[str] = "trend"

    @property
    def empty(self) -> bool:
        """True when no value was recorded."""
        return self.count == 0

    def stats(self, duration_s: float = 0.0) -> dict[str, float | int | str]:
        """``{"type": "trend", "count", "avg", "min", "med", "max", "p(90)"...}``; 0s if empty."""
        qs = [0.5, *(p / 100.0 for p in _SUMMARY_PERCENTILES)]
        med, *pcts = self.quantiles(qs)
        out: dict[str, float | int | str] = {
            "type": "trend", "count": self.count, "avg": self.mean, "min": self.min,
            "med": med, "max": self.max,
        }
        for p, v in zip(_SUMMARY_PERCENTILES, pcts, strict=True):
            out[format_percentile(p)] = v
        return out

    def value(self, agg: str, duration_s: float = 0.0) -> float:
        """avg, min, max, med, count or any p(N)."""
        if agg == "avg":
            return self.mean
        if agg == "min":
            return self.min
        if agg == "max":
            return self.max
        if agg == "med":
            return self.quantile(0.5)
        if agg == "count":
            return float(self.count)
        n = parse_percentile(agg)
        if n is None:
            raise _unsupported("trend", agg)
        return self.quantile(n / 100.0)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "trend", **super().to_dict()}


class Counter:
    """A running total (requests, bytes); its rate is per second of test time."""

    __slots__ = ("_mark", "_total")
    kind: ClassVar[str] = "counter"

    def __init__(self, total: float = 0) -> None:
        self._total: float = total
        self._mark: float = 0  # total at the previous roll()

    def add(self, value: float = 1) -> None:
        """Add ``value`` (default 1) to the total."""
        self._total += value

    @property
    def total(self) -> float:
        """Sum of everything added (an int while only ints were added)."""
        return self._total

    @property
    def empty(self) -> bool:
        """True while the total is zero."""
        return self._total == 0

    def merge(self, other: Counter) -> None:
        self._total += other._total

    def copy(self) -> Counter:
        return Counter(self._total)

    def roll(self) -> Counter:
        """The amount added since the previous roll()."""
        out = Counter(self._total - self._mark)
        self._mark = self._total
        return out

    def stats(self, duration_s: float = 0.0) -> dict[str, float | int | str]:
        """``{"type": "counter", "count": total, "rate": total per second}``."""
        return {"type": "counter", "count": self._total, "rate": self.value("rate", duration_s)}

    def value(self, agg: str, duration_s: float = 0.0) -> float:
        """``count`` (the total) or ``rate`` (total / duration_s; 0.0 without a duration)."""
        if agg == "count":
            return float(self._total)
        if agg == "rate":
            return self._total / duration_s if duration_s > 0 else 0.0
        raise _unsupported("counter", agg)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "counter", "total": self._total}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Counter:
        return cls(d["total"])

    def __repr__(self) -> str:
        return f"Counter(total={self._total})"


class Rate:
    """The fraction of true samples (failed requests, passed checks): passes / (passes + fails)."""

    __slots__ = ("_fails", "_mark_fails", "_mark_passes", "_passes")
    kind: ClassVar[str] = "rate"

    def __init__(self, passes: int = 0, fails: int = 0) -> None:
        self._passes = passes
        self._fails = fails
        self._mark_passes = 0
        self._mark_fails = 0

    def add(self, value: bool | float) -> None:
        """Count ``value`` as a pass when truthy (non-zero), else as a fail."""
        if value:
            self._passes += 1
        else:
            self._fails += 1

    @property
    def passes(self) -> int:
        return self._passes

    @property
    def fails(self) -> int:
        return self._fails

    @property
    def empty(self) -> bool:
        return self._passes + self._fails == 0

    @property
    def rate(self) -> float:
        """passes / (passes + fails); 0.0 without samples."""
        n = self._passes + self._fails
        return self._passes / n if n else 0.0

    def merge(self, other: Rate) -> None:
        self._passes += other._passes
        self._fails += other._fails

    def copy(self) -> Rate:
        return Rate(self._passes, self._fails)

    def roll(self) -> Rate:
        """The samples added since the previous roll()."""
        out = Rate(self._passes - self._mark_passes, self._fails - self._mark_fails)
        self._mark_passes = self._passes
        self._mark_fails = self._fails
        return out

    def stats(self, duration_s: float = 0.0) -> dict[str, float | int | str]:
        """``{"type": "rate", "rate", "passes", "fails"}``."""
        return {"type": "rate", "rate": self.rate, "passes": self._passes, "fails": self._fails}

    def value(self, agg: str, duration_s: float = 0.0) -> float:
        """``rate`` only."""
        if agg == "rate":
            return self.rate
        raise _unsupported("rate", agg)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "rate", "passes": self._passes, "fails": self._fails}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rate:
        return cls(int(d["passes"]), int(d["fails"]))

    def __repr__(self) -> str:
        return f"Rate(passes={self._passes}, fails={self._fails})"


GAUGE_COMBINES = ("max", "sum")


class Gauge:
    """A level that goes up and down (active VUs): the last value, with its exact min and max.

    Merging shards: ``combine="sum"`` adds value, min and max (VUs of shards add up);
    ``combine="max"`` keeps the largest value, the smallest min and the largest max.
    """

    __slots__ = ("_max", "_min", "_n", "_value", "_wmax", "_wmin", "combine")
    kind: ClassVar[str] = "gauge"

    def __init__(self, combine: str = "max") -> None:
        if combine not in GAUGE_COMBINES:
            raise ValueError(f"gauge combine {combine!r}: expected 'max' or 'sum'")
        self.combine = combine
        self._n = 0  # number of set() calls (and merged non-empty gauges)
        self._value = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._wmin = math.inf  # extremes since the previous roll()
        self._wmax = -math.inf

    def set(self, value: float) -> None:
        """Record the current level."""
        self._value = value
        self._n += 1
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value
        if value < self._wmin:
            self._wmin = value
        if value > self._wmax:
            self._wmax = value

    add = set

    @property
    def empty(self) -> bool:
        """True until the first set()."""
        return self._n == 0

    @property
    def current(self) -> float:
        """The last value (0 when never set)."""
        return self._value

    @property
    def min(self) -> float:
        return self._min if self._n else 0.0

    @property
    def max(self) -> float:
        return self._max if self._n else 0.0

    def merge(self, other: Gauge) -> None:
        if other._n == 0:
            return
        if self._n == 0:
            self._value, self._min, self._max = other._value, other._min, other._max
        elif self.combine == "sum":
            self._value += other._value
            self._min += other._min
            self._max += other._max
        else:
            self._value = max(self._value, other._value)
            self._min = min(self._min, other._min)
            self._max = max(self._max, other._max)
        self._n += other._n
        # The merged-in range counts as part of the current window.
        if self.combine == "sum":
            self._wmin, self._wmax = self._min, self._max
        else:
            self._wmin = min(self._wmin, other._min)
            self._wmax = max(self._wmax, other._max)

    def follow(self, later: Gauge) -> None:
        """Fold in ``later``, this process's own gauge measured right after (pieces of one
        second): its level is the level now, min and max span both; levels never add up."""
        if later._n == 0:
            return
        self._min, self._max = min(self._min, later._min), max(self._max, later._max)
        self._value = later._value
        self._n += later._n
        self._wmin = min(self._wmin, later._min)
        self._wmax = max(self._wmax, later._max)

    def _with(self, n: int, value: float, lo: float, hi: float) -> Gauge:
        out = Gauge(self.combine)
        out._n, out._value, out._min, out._max = n, value, lo, hi
        out._wmin, out._wmax = lo, hi
        return out

    def copy(self) -> Gauge:
        return self._with(self._n, self._value, self._min, self._max)

    def roll(self) -> Gauge:
        """The level in the window since the previous roll(): last value, min and max.

        A window with no set() carries the current level (a gauge has a value at every instant).
        """
        if self._n == 0:
            out = Gauge(self.combine)
        elif self._wmin == math.inf:
            out = self._with(1, self._value, self._value, self._value)
        else:
            out = self._with(1, self._value, self._wmin, self._wmax)
        self._wmin = math.inf
        self._wmax = -math.inf
        return out

    def stats(self, duration_s: float = 0.0) -> dict[str, float | int | str]:
        """``{"type": "gauge", "value", "min", "max"}``; zeros when never set."""
        return {"type": "gauge", "value": self._value, "min": self.min, "max": self.max}

    def value(self, agg: str, duration_s: float = 0.0) -> float:
        """``value`` (the last level), ``min`` or ``max``."""
        if agg == "value":
            return float(self._value)
        if agg == "min":
            return float(self.min)
        if agg == "max":
            return float(self.max)
        raise _unsupported("gauge", agg)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "gauge", "combine": self.combine, "n": self._n, "value": self._value,
                "min": self.min, "max": self.max}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Gauge:
        new = cls(d.get("combine", "max"))
        n = int(d["n"])
        if n:
            new._n, new._value, new._min, new._max = n, d["value"], d["min"], d["max"]
            new._wmin, new._wmax = new._min, new._max
        return new

    def __repr__(self) -> str:
        return (f"Gauge(value={self._value}, min={self.min}, max={self.max}, "
                f"combine={self.combine!r})")


Sink: TypeAlias = Trend | Counter | Rate | Gauge
"""Any metric sink; ``sink.kind`` tells which."""

_BY_KIND: dict[str, type[Trend] | type[Counter] | type[Rate] | type[Gauge]] = {
    "trend": Trend, "counter": Counter, "rate": Rate, "gauge": Gauge,
}


def sink_from_dict(d: dict[str, Any]) -> Sink:
    """Rebuild any sink from its ``to_dict()`` (the ``kind`` key says which)."""
    return _BY_KIND[d["kind"]].from_dict(d)
