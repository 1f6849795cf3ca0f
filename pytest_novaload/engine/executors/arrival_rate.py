"""constant-arrival-rate and ramping-arrival-rate: an open model.

Iteration starts come from the clock (``stages.arrival_times``), not from the end of the previous
iteration. A start with no free VU allocates one up to ``max_vus``; past that it is dropped and
counted in ``dropped_iterations``. Under xdist shard ``rank`` starts every ``world``-th iteration of
the total plan, so totals are exact and shards do not start in bursts.

Keywords: ``rate`` and ``duration`` (constant), or ``stages`` of rates and ``start_rate``
(ramping); both take ``time_unit`` (default 1s, never scaled), ``preallocated_vus`` and
``max_vus`` (default: the peak rate per second, rounded up), ``graceful_stop``. The two share
one runtime: a constant rate is a ramp with one flat stage.
"""

from __future__ import annotations

import asyncio
import math
from abc import abstractmethod
from collections import deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Self

from pytest_novaload.engine.executors.base import Tasks, sleep_until
from pytest_novaload.engine.executors.config import Args, ExecutorConfig
from pytest_novaload.engine.stages import Ramp, Stage, arrival_times, share
from pytest_novaload.metrics.builtins import define_builtins
from pytest_novaload.units import format_duration

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import ExecutionState
    from pytest_novaload.engine.vu import VU

_POOL = frozenset({"time_unit", "preallocated_vus", "max_vus", "graceful_stop"})


@dataclass(frozen=True, kw_only=True)
class ArrivalRateConfig(ExecutorConfig):
    """What both arrival-rate executors share: the time unit and the VU pool."""

    time_unit: float = 1.0
    preallocated_vus: int = 0
    max_vus: int = 0

    @classmethod
    def from_args(cls, a: Args) -> Self:
        graceful_stop = a.graceful_stop()
        time_unit = a.positive_duration("time_unit", 1.0, scaled=False)
        plan = cls(graceful_stop=graceful_stop, time_unit=time_unit if time_unit > 0 else 1.0,
                   **cls._rate_args(a))
        default_pre = max(1, math.ceil(plan.rate_ramp().peak() / plan.time_unit))
        if "preallocated_vus" in a:
            pre = a.count("preallocated_vus", default_pre, minimum=0)
        elif "max_vus" in a:
            pre = a.count("max_vus", default_pre, minimum=1)
        else:
            pre = default_pre
        mx = a.count("max_vus", pre, minimum=1) if "max_vus" in a else pre
        if mx < pre:
            a.problems.append(
                f"max_vus={a.raw.get('max_vus')!r} is below preallocated_vus="
                f"{a.raw.get('preallocated_vus')!r}: max_vus must be >= preallocated_vus")
        return replace(plan, preallocated_vus=pre, max_vus=max(mx, pre))

    @classmethod
    @abstractmethod
    def _rate_args(cls, a: Args) -> dict[str, Any]:
        """The executor's own fields, read from the marker (rates scaled)."""

    @abstractmethod
    def rate_ramp(self) -> Ramp:
        """The plan as a ramp of iterations per ``time_unit``."""

    @abstractmethod
    def _rate_fields(self) -> dict[str, Any]:
        """The executor's own fields as summary.json shows them."""

    def shard(self, rank: int, world: int) -> Self:
        if world <= 1:
            return self
        # The shard starts every world-th iteration of the total plan (exact totals, no
        # bursts); only the VU pools are split, with remainders.
        return replace(self, preallocated_vus=max(1, share(self.preallocated_vus, rank, world)),
                       max_vus=max(1, share(self.max_vus, rank, world)))

    def initial_vus(self, rank: int = 0, world: int = 1) -> int:
        return self.preallocated_vus   # more are initialised during the run, up to max_vus

    def planned_duration(self) -> float:
        return self.rate_ramp().total

    def _fields(self) -> dict[str, Any]:
        return {**self._rate_fields(), "time_unit": format_duration(self.time_unit),
                "preallocated_vus": self.preallocated_vus, "max_vus": self.max_vus}

    async def run(self, rt: ExecutionState) -> None:
        await run(rt, self)


@dataclass(frozen=True, kw_only=True)
class ConstantArrivalRateConfig(ArrivalRateConfig):
    """``rate`` iterations (scaled) per ``time_unit`` for ``duration`` seconds (scaled)."""

    type = "constant-arrival-rate"
    required = frozenset({"rate", "duration"})
    optional = _POOL

    rate: float
    duration: float

    @classmethod
    def _rate_args(cls, a: Args) -> dict[str, Any]:
        raw = a.raw.get("rate", 0)
        n = len(a.problems)
        rate = a.rate("rate", raw)
        if rate == 0 and len(a.problems) == n:
            a.problems.append(f"rate={raw!r}: expected more than 0 iterations per time_unit "
                              "(k6: the iteration rate must be more than 0)")
        return {"rate": rate, "duration": a.duration("duration")}

    def rate_ramp(self) -> Ramp:
        return Ramp(self.rate, (Stage(self.duration, self.rate),))

    def _rate_fields(self) -> dict[str, Any]:
        rate = int(self.rate) if float(self.rate).is_integer() else self.rate
        return {"rate": rate, "duration": format_duration(self.duration)}


@dataclass(frozen=True, kw_only=True)
class RampingArrivalRateConfig(ArrivalRateConfig):
    """``ramp``: iterations per ``time_unit`` over time (rates scaled, durations scaled)."""

    type = "ramping-arrival-rate"
    required = frozenset({"stages"})
    optional = _POOL | {"start_rate"}

    ramp: Ramp

    @classmethod
    def _rate_args(cls, a: Args) -> dict[str, Any]:
        start = a.rate("start_rate", a.raw.get("start_rate", 0))
        n = len(a.problems)
        ramp = a.stages(a.rate, start=start)
        if len(a.problems) == n and ramp.stages and ramp.peak() == 0:
            # k6 runs nothing (and passes); a load test that sends nothing is refused here.
            a.problems.append("start_rate and every stage target are 0: nothing would run; "
                              "give a stage a target above 0")
        return {"ramp": ramp}

    def rate_ramp(self) -> Ramp:
        return self.ramp

    def _rate_fields(self) -> dict[str, Any]:
        return {"start_rate": self.ramp.start,
                "stages": [[format_duration(s.duration), s.target, *([s.name] if s.name else [])]
                           for s in self.ramp.stages]}


async def run(rt: ExecutionState, plan: ArrivalRateConfig) -> None:
    """Start iterations at the plan's arrival times, on free VUs or new ones up to max_vus."""
    loop = asyncio.get_running_loop()
    define_builtins(rt.store, plan.type)
    dropped = rt.store.counter("dropped_iterations")
    ramp = plan.rate_ramp()
    horizon = ramp.total
    start = loop.time()
    # Free VUs queue up first-in first-out, so iterations rotate over the pool like k6's.
    free: deque[VU] = deque(rt.new_vu() for _ in range(plan.preallocated_vus))
    tasks = Tasks()

    async def one(vu: VU) -> None:
        rt.vu_started()
        rt.plan_starts += 1
        try:
            await rt.iterate(vu)
        finally:
            rt.vu_stopped()
            free.append(vu)

    try:
        for i, offset in enumerate(arrival_times(ramp, plan.time_unit, horizon)):
            if i % rt.world != rt.rank:
                continue
            due = start + offset
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            if free:
                vu = free.popleft()
            elif rt.allocated < plan.max_vus:
                vu = rt.new_vu()
            else:
                dropped.add(1)
                continue
            tasks.spawn(one(vu))
        await sleep_until(start + horizon)
        await tasks.stop(plan.graceful_stop)
    finally:
        await tasks.cancel()
