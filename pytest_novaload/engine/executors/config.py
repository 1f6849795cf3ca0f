"""What every executor's configuration shares: the base class and the marker-argument reader.

An executor's config (k6's ``XConfig``) is a frozen, fully resolved plan: every number scaled,
every duration in seconds. It is built from the marker's arguments by ``from_args``, which
records each problem in the reader instead of stopping at the first, so the marker reports
them all at once. The config also knows its shard of an xdist run, how it reads in
summary.json and how long it plans to start iterations; ``run`` hands it to its runtime.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pytest_novaload.clients._options import shown
from pytest_novaload.engine.stages import Ramp, Stage, parse_named_stages
from pytest_novaload.errors import ConfigError
from pytest_novaload.units import format_duration, parse_duration

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import ExecutionState

__all__ = ["DEFAULT_GRACEFUL", "DEFAULT_MAX_DURATION", "Args", "ExecutorConfig", "scale_count",
           "scale_rate"]

DEFAULT_GRACEFUL = 30.0
DEFAULT_MAX_DURATION = 600.0


def scale_count(n: int, scale: float) -> int:
    """Scale a VU count: rounded to nearest, never turning a non-zero value into 0."""
    if n == 0:
        return 0
    return max(1, round(n * scale))


def scale_rate(r: float, scale: float) -> float:
    """Scale a rate like a count (k6 rates are whole numbers of iterations per time unit)."""
    if r == 0 or scale == 1:
        return r
    return float(max(1, round(r * scale)))


class Args:
    """The marker's executor arguments, read with scaling; every problem lands in ``problems``.

    A bad value records a problem naming the keyword, the value and what was expected, and
    returns a harmless default so the rest of the marker is still checked.
    """

    def __init__(self, args: Mapping[str, Any], *, scale: float, duration_scale: float,
                 problems: list[str]) -> None:
        self.raw = args
        self.scale = scale
        self.duration_scale = duration_scale
        self.problems = problems

    def __contains__(self, key: str) -> bool:
        return key in self.raw

    def duration(self, key: str, default: float = 0.0, *, scaled: bool = True) -> float:
        """Seconds of ``key`` (``"30s"``, ``"1m"``, a number), times duration_scale if scaled."""
        if key not in self.raw:
            return default
        try:
            v = parse_duration(self.raw[key], what=key)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return 0.0
        return v * self.duration_scale if scaled else v

    def positive_duration(self, key: str, default: float, *, scaled: bool = True) -> float:
        """``duration`` that must be more than 0 seconds when given."""
        n = len(self.problems)
        v = self.duration(key, default, scaled=scaled)
        if key in self.raw and v <= 0 and len(self.problems) == n:
            self.problems.append(f"{key}={shown(self.raw[key])}: expected more than 0 seconds")
        return v

    def count(self, key: str, default: int, *, scaled: bool = True, minimum: int = 0) -> int:
        """A whole number >= ``minimum`` (a VU count is scaled, an iteration count is not)."""
        raw = self.raw.get(key, default)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < minimum or (
                isinstance(raw, float) and not raw.is_integer()):
            self.problems.append(f"{key}={shown(raw)}: expected a whole number >= {minimum}")
            return default
        return scale_count(int(raw), self.scale) if scaled else int(raw)

    def vu_target(self, key: str, raw: object) -> float:
        """A stage's VU target: a whole number >= 0, scaled like a count."""
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0 or (
                isinstance(raw, float) and not raw.is_integer()):
            self.problems.append(f"{key}={shown(raw)}: expected a whole number of VUs >= 0")
            return 0.0
        return float(scale_count(int(raw), self.scale))

    def rate(self, key: str, raw: object) -> float:
        """A number of iterations per time unit >= 0, scaled."""
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not raw >= 0 or (
                raw == math.inf):
            self.problems.append(f"{key}={shown(raw)}: expected a finite number of iterations >= 0")
            return 0.0
        return scale_rate(float(raw), self.scale)

    def stages(self, target: Callable[[str, object], float], start: float) -> Ramp:
        """``stages=[(duration, target), ...]`` as a ramp from ``start``; durations scaled."""
        raw = self.raw.get("stages")
        if not isinstance(raw, list | tuple) or not raw:
            self.problems.append(
                f"stages={shown(raw)}: expected a non-empty list of (duration, target) "
                "pairs, e.g. [('30s', 100), ('1m', 100), ('30s', 0)]")
            return Ramp(start, ())
        pairs, bad = parse_named_stages(raw)
        self.problems.extend(bad)
        stages: list[Stage] = []
        for i, (d, value, name) in enumerate(pairs):
            try:
                seconds = parse_duration(d, what=f"stages[{i}] duration")  # type: ignore[arg-type]
            except ConfigError as exc:
                self.problems.extend(exc.problems)
                continue
            stages.append(Stage(seconds * self.duration_scale,
                                target(f"stages[{i}] target", value), name))
        return Ramp(start, tuple(stages))

    def graceful_stop(self) -> float:
        """``graceful_stop`` (not scaled: it is a grace for iterations, not load time)."""
        return self.duration("graceful_stop", DEFAULT_GRACEFUL, scaled=False)


@dataclass(frozen=True, kw_only=True)
class ExecutorConfig(ABC):
    """One executor's resolved plan. Subclasses set the class attributes and the methods."""

    type: ClassVar[str]
    """The k6 name, e.g. ``"ramping-vus"``."""
    required: ClassVar[frozenset[str]]
    """Marker keywords this executor needs (k6's, in snake case)."""
    optional: ClassVar[frozenset[str]]
    """Marker keywords this executor also takes."""

    graceful_stop: float = DEFAULT_GRACEFUL

    @classmethod
    def keywords(cls) -> frozenset[str]:
        return cls.required | cls.optional

    @classmethod
    @abstractmethod
    def from_args(cls, a: Args) -> Self:
        """The config from the marker's arguments; problems are recorded in ``a.problems``."""
        ...

    @abstractmethod
    def shard(self, rank: int, world: int) -> Self:
        """Shard ``rank`` of ``world``'s part; the shards add up to this plan."""
        ...

    @abstractmethod
    def planned_duration(self) -> float:
        """How long iterations are started for (without graceful stop)."""
        ...

    @abstractmethod
    def initial_vus(self, rank: int = 0, world: int = 1) -> int:
        """The VUs this shard (of this sharded plan) initialises before the start: k6's
        ``vus_max`` (the peak planned VUs; an arrival-rate executor's preallocated pool)."""
        ...

    def max_run_time(self) -> float:
        """The longest the executor can run: planned duration plus every grace period."""
        return self.planned_duration() + self.graceful_stop

    def describe(self) -> dict[str, Any]:
        """The plan as it goes into summary.json: type, the executor's fields, graceful_stop."""
        return {"type": self.type, **self._fields(),
                "graceful_stop": format_duration(self.graceful_stop)}

    @abstractmethod
    def _fields(self) -> dict[str, Any]:
        ...

    @abstractmethod
    async def run(self, rt: ExecutionState) -> None:
        """Follow this plan on the running loop with ``rt``'s VUs (the executor's runtime)."""
        ...
