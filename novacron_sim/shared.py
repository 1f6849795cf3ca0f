"""Runtime knobs and request counters shared by all worker processes.

One anonymous shared mmap is created before the workers fork: a row of float64 knobs any worker
may change (POST /_sim/config) and one row of uint64 counters per worker. Each worker writes only
its own row, so counting needs no lock and the sums read by GET /_sim/stats are exact.
"""

from __future__ import annotations

import mmap
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["KNOBS", "Shared", "validate_knobs"]

#: knob name -> (default, min, max)
KNOBS: dict[str, tuple[float, float, float]] = {
    "latency_ms": (0.0, 0.0, 60_000.0),
    "error_rate": (0.0, 0.0, 1.0),
    "error_status": (500.0, 500.0, 599.0),
    "migration_failure_rate": (0.0, 0.0, 1.0),
    "time_scale": (1.0, 0.001, 1000.0),
    "push_interval_ms": (250.0, 10.0, 60_000.0),
}
_KNOB_INDEX = {name: i for i, name in enumerate(KNOBS)}
_INT_KNOBS = {"error_status"}


def validate_knobs(values: Mapping[str, Any]) -> tuple[dict[str, float], list[tuple[str, str]]]:
    """Check a partial knob mapping; returns (accepted values, [(field, reason), ...])."""
    ok: dict[str, float] = {}
    problems: list[tuple[str, str]] = []
    for name, value in values.items():
        if name not in KNOBS:
            problems.append((name, f"unknown knob {name!r}; known: {', '.join(KNOBS)}"))
            continue
        _, lo, hi = KNOBS[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append((name, f"{name} must be a number between {lo:g} and {hi:g}"))
        elif not lo <= value <= hi:
            problems.append((name, f"{name} must be between {lo:g} and {hi:g}, got {value!r}"))
        elif name in _INT_KNOBS and value != int(value):
            problems.append((name, f"{name} must be an integer, got {value!r}"))
        else:
            ok[name] = float(value)
    return ok, problems


class Shared:
    """The shared block. Create in the parent, then call `bind_worker(i)` in worker i."""

    def __init__(self, workers: int, counter_names: Sequence[str]) -> None:
        self.workers = workers
        self.counter_names = tuple(counter_names)
        self.index = {name: i for i, name in enumerate(self.counter_names)}
        n_knobs = len(KNOBS)
        self._width = len(self.counter_names)
        self._mm = mmap.mmap(-1, 8 * (n_knobs + workers * self._width))  # MAP_SHARED
        view = memoryview(self._mm)
        self._knobs = view[: 8 * n_knobs].cast("d")
        self._counters = view[8 * n_knobs :].cast("Q")
        self._base = 0
        for name, (default, _, _) in KNOBS.items():
            self._knobs[_KNOB_INDEX[name]] = default

    def bind_worker(self, worker: int) -> None:
        self._base = worker * self._width

    # knobs
    def knob(self, name: str) -> float:
        return self._knobs[_KNOB_INDEX[name]]

    def set_knobs(self, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self._knobs[_KNOB_INDEX[name]] = float(value)

    def knobs(self) -> dict[str, float | int]:
        return {
            name: int(self.knob(name)) if name in _INT_KNOBS else self.knob(name) for name in KNOBS
        }

    # counters
    def inc(self, index: int, n: int = 1) -> None:
        self._counters[self._base + index] += n

    def totals(self) -> dict[str, int]:
        sums = [0] * self._width
        for w in range(self.workers):
            base = w * self._width
            for i in range(self._width):
                sums[i] += self._counters[base + i]
        return dict(zip(self.counter_names, sums, strict=True))

    def reset(self) -> None:
        """Zero every worker's counters (increments racing with this may be lost)."""
        for i in range(len(self._counters)):
            self._counters[i] = 0
