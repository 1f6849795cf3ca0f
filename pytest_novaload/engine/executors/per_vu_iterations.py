"""per-vu-iterations: each VU runs exactly ``iterations`` iterations (within max_duration).

Keywords: ``vus`` (default 1), ``iterations`` (default 1, never scaled), ``max_duration``
(default 10m), ``graceful_stop``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pytest_novaload.engine.executors.base import Tasks, vu_loop
from pytest_novaload.engine.executors.config import DEFAULT_MAX_DURATION, Args, ExecutorConfig
from pytest_novaload.engine.stages import share
from pytest_novaload.units import format_duration

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import ExecutionState
    from pytest_novaload.engine.vu import VU


@dataclass(frozen=True, kw_only=True)
class PerVuIterationsConfig(ExecutorConfig):
    """``vus`` VUs (scaled), ``iterations`` each (not scaled), within ``max_duration``."""

    type = "per-vu-iterations"
    required: ClassVar[frozenset[str]] = frozenset()
    optional = frozenset({"vus", "iterations", "max_duration", "graceful_stop"})

    vus: int
    iterations: int
    max_duration: float = DEFAULT_MAX_DURATION

    @classmethod
    def from_args(cls, a: Args) -> Self:
        graceful_stop = a.graceful_stop()
        return cls(graceful_stop=graceful_stop, vus=a.count("vus", 1, minimum=1),
                   iterations=a.count("iterations", 1, scaled=False, minimum=1),
                   max_duration=a.duration("max_duration", DEFAULT_MAX_DURATION))

    def initial_vus(self, rank: int = 0, world: int = 1) -> int:
        return self.vus

    def shard(self, rank: int, world: int) -> Self:
        return self if world <= 1 else replace(self, vus=share(self.vus, rank, world))

    def planned_duration(self) -> float:
        return self.max_duration

    def _fields(self) -> dict[str, Any]:
        return {"vus": self.vus, "iterations": self.iterations,
                "max_duration": format_duration(self.max_duration)}

    async def run(self, rt: ExecutionState) -> None:
        await run(rt, self)


async def run(rt: ExecutionState, plan: PerVuIterationsConfig) -> None:
    """Every VU loops until it has run ``plan.iterations`` or max_duration is over."""
    loop = asyncio.get_running_loop()
    end = loop.time() + plan.max_duration
    tasks = Tasks()

    def make_keep_going(vu: VU) -> Callable[[], bool]:
        return lambda: vu.iteration < plan.iterations and loop.time() < end

    try:
        for _ in range(plan.vus):
            vu = rt.new_vu()
            tasks.spawn(vu_loop(rt, vu, make_keep_going(vu)))
        if tasks.running:
            await asyncio.wait(set(tasks.running), timeout=plan.max_duration)
        await tasks.stop(plan.graceful_stop)
    finally:
        await tasks.cancel()
