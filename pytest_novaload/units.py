"""Durations: k6 duration strings ("500ms", "1h30m") to seconds and back."""

from __future__ import annotations

import math
import re

from pytest_novaload.display import show
from pytest_novaload.errors import ConfigError

__all__ = ["MAX_DURATION", "format_duration", "parse_duration"]

MAX_DURATION = 7 * 24 * 3600.0
"""The longest duration accepted, in seconds: 7 days (write it ``168h``). Nothing a pytest
session runs needs longer: CI jobs end first (GitHub-hosted runners stop a job after 6 hours,
self-hosted ones after 5 days), and a longer value is nearly always a slip of unit ("5000m" for
"5000ms", milliseconds given as seconds). The bound also keeps every deadline computed from a
duration (loop time + duration, stage boundaries, per-second time series) finite and exact to
the microsecond; ``1e306`` seconds overflows them."""
_MAX_TEXT = 64  # "1h2m3s4ms5us6ns" is 15 characters: longer text is not a duration
_EXPECTED = "expected a duration such as '500ms', '30s', '2m' or '1h30m', or a number of seconds"

# Go/k6 style: one or more <number><unit> parts, no spaces between them ("1m30.5s"). ASCII digits
# only (re.ASCII): "١٢s" is not a duration.
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|μs|ns|h|m|s)", re.ASCII)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_UNIT_SECONDS = {
    "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3,
    "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9,
}


def parse_duration(value: str | int | float, *, what: str = "duration",
                   max_seconds: float = MAX_DURATION) -> float:
    """Seconds from a number of seconds (>= 0) or a k6 duration string such as "1m30s".

    Anything else (another type, NaN, infinity, a negative, a huge number, a long text) is a
    ConfigError naming ``what`` and the value; above ``max_seconds`` (default ``MAX_DURATION``,
    7 days) it says the limit and why.
    """
    seconds = _parse(value)
    if seconds is None:
        kind = "" if isinstance(value, str | int | float) and not isinstance(value, bool) \
            else f", not {_kind(value)}"
        raise ConfigError(f"{what} '{show(value)}': {_EXPECTED}{kind}")
    if seconds > max_seconds:
        limit = format_duration(max_seconds)
        why = (" (7 days): no load test runs that long (CI jobs stop first) and such a value "
               "is usually a slip of unit" if max_seconds == MAX_DURATION else "")
        raise ConfigError(f"{what} '{show(value)}': longer than the limit of {limit}{why}; "
                          f"write a duration up to {limit}, e.g. '30m' or '2h'")
    return seconds


def _kind(value: object) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "a bool"
    name = type(value).__name__
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def _parse(value: object) -> float | None:
    """The duration in seconds (may exceed the limit), or None when ``value`` is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if value < 0:
            return None
        if value > MAX_DURATION * 1000:  # beyond any limit; float() would overflow at 10**309
            return math.inf
        seconds = float(value)
    elif isinstance(value, float):
        if math.isinf(value):  # infinity is not a duration ("run for ever" has no plan)
            return None
        seconds = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_TEXT:
            return None
        if _NUMBER.fullmatch(text):  # "30" from an env var or ini file: seconds
            seconds = float(text)
            if seconds == math.inf:  # "1e400": a number, far too large
                return math.inf
        else:
            seconds = 0.0
            pos = 0
            for m in _PART.finditer(text):
                if m.start() != pos:
                    return None
                seconds += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
                pos = m.end()
            if pos == 0 or pos != len(text):
                return None
    else:
        return None
    if math.isnan(seconds) or seconds < 0 or seconds == -math.inf:
        return None
    return seconds + 0.0  # -0.0 -> 0.0


def format_duration(seconds: float) -> str:
    """Compact Go-style text: "500ms", "30s", "1m30s", "2h0m0s", "1.5s", "250us"."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds == 0:
        return "0s"
    if seconds < 0.9995e-3:  # below what rounds to 1ms
        return f"{_trim(seconds * 1e6, 3)}us"
    if seconds < 0.9995:  # below what rounds to 1s
        return f"{_trim(seconds * 1e3, 3)}ms"
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs = _trim(millis / 1000, 3)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _trim(x: float, decimals: int) -> str:
    """``x`` with at most ``decimals`` decimals and no trailing zeros ("1.5", "30")."""
    text = f"{x:.{decimals}f}".rstrip("0").rstrip(".")
    return text or "0"


def format_bytes(n: float) -> str:
    """A byte count for people: ``"512 B"``, ``"7.8 MB"`` (decimal units, as k6 prints them)."""
    for unit in ("B", "kB", "MB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
