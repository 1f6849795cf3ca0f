"""Durations: k6 duration strings ("500ms", "1h30m") to seconds and back."""

from __future__ import annotations

import math
import re

from pytest_novaload.errors import ConfigError

__all__ = ["format_duration", "parse_duration"]

# Go/k6 style: one or more <number><unit> parts, no spaces between them ("1m30.5s").
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|μs|ns|h|m|s)")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_UNIT_SECONDS = {
    "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3,
    "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9,
}


def parse_duration(value: str | int | float, *, what: str = "duration") -> float:
    """Seconds from a number of seconds (>= 0) or a k6 duration string such as "1m30s"."""
    seconds = _parse(value)
    if seconds is None:
        raise ConfigError(f"{what} '{value}': expected a duration such as '500ms', '30s', "
                          "'2m' or '1h30m', or a number of seconds")
    return seconds


def _parse(value: object) -> float | None:
    """The duration in seconds, or None when ``value`` is not a valid duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):  # "30" from an env var or ini file: seconds
            seconds = float(text)
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
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


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
