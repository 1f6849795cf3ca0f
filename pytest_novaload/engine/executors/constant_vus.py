"""constant-vus: a fixed number of VUs loop over the scenario for a duration.

Keywords: ``duration`` (required), ``vus`` (default 1), ``graceful_stop``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Self

from pytest_novaload.engine.executors.base import StartPacer, Tasks, sleep_until, vu_loop
from pytest_novaload.engine.executors.config import Args, ExecutorConfig
from pytest_novaload.engine.stages import share
from pytest_novaload.units import format_duration

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import ExecutionState


@dataclass(frozen=True, kw_only=True)
class ConstantVusConfig(ExecutorConfig):
    """``vus`` VUs (scaled) for ``duration`` seconds (scaled)."""

    type = "constant-vus"
    required = frozenset({"duration"})
    optional = frozenset({"vus", "graceful_stop"})

    vus: int
    duration: float

    @classmethod
    def from_args(cls, a: Args) -> Self:
        graceful_stop = a.graceful_stop()
        return cls(graceful_stop=graceful_stop, vus=a.count("vus", 1, minimum=1),
                   duration=a.positive_duration("duration", 0.0))

    def initial_vus(self, rank: int = 0, world: int = 1) -> int:
        return self.vus

    def shard(self, rank: int, world: int) -> Self:
        return self if world <= 1 else replace(self, vus=share(self.vus, rank, world))

    def planned_duration(self) -> float:
        return self.duration

    def _fields(self) -> dict[str, Any]:
        return {"vus": self.vus, "duration": format_duration(self.duration)}

    async def run(self, rt: ExecutionState) -> None:
        await run(rt, self)


async def run(rt: ExecutionState, plan: ConstantVusConfig) -> None:
    """Start ``plan.vus`` VU loops; stop starting iterations at the end, then grace."""
    loop = asyncio.get_running_loop()
    end = rt.plan_ends = loop.time() + plan.duration
    stopped = False

    def keep_going() -> bool:
        return not stopped and loop.time() < end

    tasks = Tasks()
    try:
        pacer = StartPacer(plan.vus)
        for k in range(plan.vus):
            tasks.spawn(vu_loop(rt, rt.new_vu(), keep_going, pacer.gate(k)))
        pacer.start(tasks)
        await sleep_until(end)
        stopped = True
        await tasks.stop(plan.graceful_stop)
    finally:
        await tasks.cancel()
