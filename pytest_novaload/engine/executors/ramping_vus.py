"""ramping-vus: the VU count follows the stages' linear ramps (k6 semantics).

VUs above the target finish their current iteration (up to ``graceful_ramp_down``) and stop;
at the end of the last stage running iterations get ``graceful_stop``. Under xdist each shard
runs its share of the planned total at every moment, so the shards always add up to the plan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_novaload.engine.executors.base import Tasks, vu_loop
from pytest_novaload.engine.stages import share, vus_at

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import RunContext
    from pytest_novaload.engine.vu import VU
    from pytest_novaload.spec import ExecutorPlan

TICK = 0.01  # seconds between checks of the plan


@dataclass
class _Slot:
    vu: VU
    active: bool = False
    task: asyncio.Task[None] | None = None
    cancel_at: float = 0.0


async def run(rt: RunContext, plan: ExecutorPlan) -> None:
    assert plan.ramp is not None
    ramp = plan.ramp
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + ramp.total
    slots: list[_Slot] = []
    tasks = Tasks()

    def target_at(now: float) -> int:
        return share(vus_at(ramp, now - start), rt.rank, rt.world)

    def adjust(target: int, now: float) -> None:
        while len(slots) < target:
            slots.append(_Slot(rt.new_vu()))
        for i, slot in enumerate(slots):
            if i < target:
                slot.active = True
                # (Re)start the VU; a stopping one that was still closing is picked up next tick.
                if slot.task is None or slot.task.done():
                    slot.task = tasks.spawn(vu_loop(rt, slot.vu, _keep(slot)))
            elif slot.active:
                slot.active = False
                slot.cancel_at = now + plan.graceful_ramp_down
            elif slot.task is not None and not slot.task.done() and now >= slot.cancel_at:
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
