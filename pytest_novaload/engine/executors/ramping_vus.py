"""ramping-vus: the VU count follows the stages' linear ramps (k6 semantics).

Keywords: ``stages`` (required), ``start_vus`` (default 1), ``graceful_ramp_down``,
``graceful_stop`` (default 30s each).

VUs above the target finish their current iteration (up to ``graceful_ramp_down``) and stop;
at the end of the last stage running iterations get ``graceful_stop``. Under xdist each shard
runs its share of the planned total at every moment, so the shards always add up to the plan.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from pytest_novaload.engine.executors.base import Tasks, vu_loop
from pytest_novaload.engine.executors.config import DEFAULT_GRACEFUL, Args, ExecutorConfig
from pytest_novaload.engine.stages import Ramp, share, vus_at
from pytest_novaload.units import format_duration

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import RunContext
    from pytest_novaload.engine.vu import VU

TICK = 0.01  # seconds between checks of the plan


@dataclass(frozen=True, kw_only=True)
class RampingVusConfig(ExecutorConfig):
    """``ramp``: VUs over time (targets scaled, durations scaled)."""

    type = "ramping-vus"
    required = frozenset({"stages"})
    optional = frozenset({"start_vus", "graceful_ramp_down", "graceful_stop"})

    ramp: Ramp
    graceful_ramp_down: float = DEFAULT_GRACEFUL

    @classmethod
    def from_args(cls, a: Args) -> Self:
        graceful_stop = a.graceful_stop()
        ramp = a.stages(a.vu_target, start=a.count("start_vus", 1))
        return cls(graceful_stop=graceful_stop, ramp=ramp,
                   graceful_ramp_down=a.duration("graceful_ramp_down", DEFAULT_GRACEFUL,
                                                 scaled=False))

    def shard(self, rank: int, world: int) -> Self:
        # Every shard keeps the total ramp and follows share(total(t), rank, world): see run.
        return self

    def planned_duration(self) -> float:
        return self.ramp.total

    def max_run_time(self) -> float:
        return super().max_run_time() + self.graceful_ramp_down

    def _fields(self) -> dict[str, Any]:
        return {"start_vus": int(self.ramp.start),
                "stages": [[format_duration(s.duration), int(s.target)]
                           for s in self.ramp.stages],
                "graceful_ramp_down": format_duration(self.graceful_ramp_down)}

    async def run(self, rt: RunContext) -> None:
        await run(rt, self)


@dataclass
class _Slot:
    vu: VU
    active: bool = False
    task: asyncio.Task[None] | None = None
    generation: int = 0   # bumped on every ramp-down, so a stale grace deadline is ignored


async def run(rt: RunContext, plan: RampingVusConfig) -> None:
    """Follow ``plan.ramp``: this shard's share of the planned VUs at every tick."""
    ramp = plan.ramp
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + ramp.total
    slots: list[_Slot] = []     # slots[:running] are the active VUs
    running = 0
    restart: set[int] = set()   # active slots whose previous task was still closing
    stopping: deque[tuple[float, int, int]] = deque()  # (grace deadline, slot, generation)
    tasks = Tasks()

    def target_at(now: float) -> int:
        return share(vus_at(ramp, now - start), rt.rank, rt.world)

    def spawn(i: int) -> None:
        slot = slots[i]
        slot.task = tasks.spawn(vu_loop(rt, slot.vu, _keep(slot)))

    def adjust(target: int, now: float) -> None:
        """Work only on the slots whose state changes: O(change), not O(VUs), per tick."""
        nonlocal running
        while len(slots) < target:
            slots.append(_Slot(rt.new_vu()))
        for i in range(running, target):      # ramp up
            slot = slots[i]
            slot.active = True
            if slot.task is None or slot.task.done():
                spawn(i)
            else:
                restart.add(i)  # finishing after a ramp-down; restarted once it is done
        for i in range(target, running):      # ramp down: finish the iteration, then stop
            slot = slots[i]
            slot.active = False
            slot.generation += 1
            stopping.append((now + plan.graceful_ramp_down, i, slot.generation))
        running = target
        for i in list(restart):
            slot = slots[i]
            if not slot.active:
                restart.discard(i)
            elif slot.task is None or slot.task.done():
                restart.discard(i)
                spawn(i)
        while stopping and stopping[0][0] <= now:
            _, i, generation = stopping.popleft()
            slot = slots[i]
            if not slot.active and slot.generation == generation and slot.task is not None:
                slot.task.cancel()  # ramp-down grace is over: interrupt the iteration

    def _keep(slot: _Slot) -> Callable[[], bool]:
        return lambda: slot.active and loop.time() < end

    try:
        while True:
            now = loop.time()
            if now >= end:
                break
            adjust(target_at(now), now)
            await asyncio.sleep(min(TICK, end - now))
        for slot in slots:
            slot.active = False
        await tasks.stop(plan.graceful_stop)
    finally:
        await tasks.cancel()
