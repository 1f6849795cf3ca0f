"""Reading one statistic (and its 95% interval) out of a summary.json metric entry, and
printing it in the metric's unit."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pytest_novaload.metrics import parse_percentile

__all__ = ["format_interval", "format_value", "is_time_stat", "stat_interval", "stat_value",
           "unit_of"]

_TREND_STATS = ("avg", "med", "min", "max")


def is_time_stat(kind: str, stat: str) -> bool:
    """Whether ``stat`` of a ``kind`` metric is in milliseconds."""
    return kind == "trend" and (stat in _TREND_STATS or parse_percentile(stat) is not None)


def _float(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def stat_value(entry: Mapping[str, Any] | None, stat: str,
               duration_s: float | None = None) -> float | None:
    """``stat`` of a metric entry; ``rate`` of a trend is samples per second; None if absent."""
    if not isinstance(entry, Mapping):
        return None
    if stat in entry:
        return _float(entry[stat])
    if stat == "rate" and entry.get("type") == "trend":
        count = _float(entry.get("count"))
        if count is not None and duration_s:
            return count / duration_s
    if stat == "med" and "p(50)" in entry:
        return _float(entry["p(50)"])
    return None


def stat_interval(entry: Mapping[str, Any] | None, stat: str) -> tuple[float, float] | None:
    """The entry's ``ci95`` for ``stat`` as (lo, hi); None when unknown or absent."""
    if not isinstance(entry, Mapping):
        return None
    ci = entry.get("ci95")
    if not isinstance(ci, Mapping):
        return None
    pair = ci.get(stat)
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        return None
    lo, hi = _float(pair[0]), _float(pair[1])
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        return None
    return lo, hi


def unit_of(kind: str, stat: str) -> str:
    """"ms", "%" (a rate metric's rate), "/s" (a counter's or trend's rate) or ""."""
    if is_time_stat(kind, stat):
        return "ms"
    if stat == "rate":
        return "%" if kind == "rate" else "/s"
    return ""


def format_value(value: float | None, unit: str) -> str:
    """``212 ms``, ``1.23 ms``, ``0.12%``, ``153.2/s``; ``-`` for None, ``nan`` kept visible."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    if unit == "%":
        return f"{value * 100:.2f}%"
    if unit == "/s":
        return f"{value:.1f}/s"
    text = _num(value)
    return f"{text} {unit}" if unit else text


def _num(value: float) -> str:
    a = abs(value)
    if a >= 100 or (value == int(value) and a < 1e15):
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if a >= 0.1 else f"{value:.3g}"


def format_interval(interval: tuple[float, float] | None, unit: str) -> str:
    """``[198, 231]`` in the value's unit (without repeating it), ``""`` when unknown."""
    if interval is None:
        return ""
    lo, hi = interval
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    if unit == "%":
        return f"[{lo * 100:.2f}, {hi * 100:.2f}]"
    if unit == "/s":
        return f"[{lo:.1f}, {hi:.1f}]"
    return f"[{_num(lo)}, {_num(hi)}]"
