"""shared-iterations: VUs share one pool of ``iterations`` (within max_duration).

Keywords as per-vu-iterations. More VUs than iterations is an error, as in k6; when
``--load-scale`` scales the VUs above the (never scaled) iteration count they are capped
silently instead: the operator's scale must not turn a valid marker into an error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Self

from pytest_novaload.engine.executors.base import Tasks, vu_loop
from pytest_novaload.engine.executors.config import Args
from pytest_novaload.engine.executors.per_vu_iterations import PerVuIterationsConfig
from pytest_novaload.engine.stages import share

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import ExecutionState


@dataclass(frozen=True, kw_only=True)
class SharedIterationsConfig(PerVuIterationsConfig):
    """``iterations`` in total (not scaled) over ``vus`` VUs (scaled, at most iterations)."""

    type = "shared-iterations"

    @classmethod
    def from_args(cls, a: Args) -> Self:
        plan = super().from_args(a)
        raw_vus = a.raw.get("vus", 1)
        if isinstance(raw_vus, int) and not isinstance(raw_vus, bool) \
                and raw_vus > plan.iterations >= 1:
            a.problems.append(
                f"vus={raw_vus} is more than iterations={plan.iterations}: k6 refuses it (the "
                f"number of iterations ({plan.iterations}) can't be less than the number of "
                f"VUs ({raw_vus})); set vus <= {plan.iterations} or iterations >= {raw_vus}")
        return replace(plan, vus=min(plan.vus, plan.iterations))

    def shard(self, rank: int, world: int) -> Self:
        if world <= 1:
            return self
        # Only shards that get a VU can run iterations: split the pool among those.
        active = min(self.vus, world)
        if rank >= active:
            return replace(self, vus=0, iterations=0)
        return replace(self, vus=share(self.vus, rank, world),
                       iterations=share(self.iterations, rank, active))

    async def run(self, rt: ExecutionState) -> None:
        await run(rt, self)


async def run(rt: ExecutionState, plan: SharedIterationsConfig) -> None:
    """VUs take iterations from one counter until it is empty or max_duration is over."""
    loop = asyncio.get_running_loop()
    end = loop.time() + plan.max_duration
    left = plan.iterations

    def take() -> bool:
        nonlocal left
        if left <= 0 or loop.time() >= end:
            return False
        left -= 1
        return True

    tasks = Tasks()
    try:
        for _ in range(min(plan.vus, plan.iterations)):
            tasks.spawn(vu_loop(rt, rt.new_vu(), take))
        if tasks.running:
            await asyncio.wait(set(tasks.running), timeout=plan.max_duration)
        await tasks.stop(plan.graceful_stop)
    finally:
        await tasks.cancel()
