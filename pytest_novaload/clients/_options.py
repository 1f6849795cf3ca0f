"""Shared pieces of the http/ws/db option validators: unknown-key messages and durations."""

from __future__ import annotations

import difflib
from collections.abc import Collection

from pytest_novaload.display import show


def shown(value: object) -> str:
    """``value`` for a message: repr() of a short string, else display.show's bounded text
    (option values can be anything: a 5,000-digit integer, a list nested 100,000 deep)."""
    if isinstance(value, str) and len(value) <= 60:
        return repr(value)
    return show(value)


def unknown_option(key: object, accepted: Collection[str]) -> str:
    """The message for an unknown option key, with a "did you mean" when one is close."""
    close = difflib.get_close_matches(str(key), list(accepted), n=1, cutoff=0.6)
    hint = f" did you mean {shown(close[0])}?" if close else ""
    return (f"{shown(key)}: unknown option;{hint} expected one of {', '.join(sorted(accepted))}; "
            "fix or remove it")


def seconds(value: object, *, allow_zero: bool = False) -> float | None:
    """Seconds (> 0, or >= 0 with allow_zero) from a number or a duration such as '500ms'.

    None when the value is not a valid finite duration.
    """
    from pytest_novaload.errors import ConfigError
    from pytest_novaload.units import parse_duration

    if not isinstance(value, (int, float, str)):
        return None
    try:
        result = parse_duration(value)  # refuses bools, negatives, NaN and infinity
    except ConfigError:
        return None
    if result > 0 or (allow_zero and result == 0):
        return result
    return None
