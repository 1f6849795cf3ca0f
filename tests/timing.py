"""Time scaling for real-time tests (websockets' ``tests/utils.py`` habit).

Set ``NOVALOAD_TIME_FACTOR`` (default 1) on a slow or busy machine: every duration a real-time
test waits for and every tolerance it allows on elapsed time grows by that factor, so the test
still asserts the same behaviour. A factor never loosens a count: tests derive counts from the
plan, not from how many sleeps fit in a window.
"""

from __future__ import annotations

import os


def _factor() -> float:
    raw = os.environ.get("NOVALOAD_TIME_FACTOR", "1")
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 1.0:  # also catches nan
        raise ValueError(f"NOVALOAD_TIME_FACTOR={raw!r}: expected a number >= 1 (how much "
                         "slower this machine is than a quiet laptop), e.g. 3; unset it for 1")
    return value


TIME_FACTOR = _factor()
"""How much slower than a quiet machine real time may run here (>= 1)."""


def scaled(seconds: float) -> float:
    """``seconds`` times the time factor: a wait or a bound on elapsed real time."""
    return seconds * TIME_FACTOR

