"""ramping-vus: the VU count follows the stages' linear ramps (k6 semantics).

Keywords: ``stages`` (required), ``start_vus`` (default 1), ``graceful_ramp_down``,
``graceful_stop`` (default 30s each).

VUs above the target finish their current iteration (up to ``graceful_ramp_down``) and stop;
at the end of the last stage running iterations get ``graceful_stop``. Under xdist each shard
runs its share of the planned total at every moment, so the shards always add up to the plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from pytest_novaload.engine.executors.base import StartPacer, Tasks, vu_loop
from pytest_novaload.engine.executors.config import DEFAULT_GRACEFUL, Args, ExecutorConfig
from pytest_novaload.engine.stages import Ramp, ramping_vus_steps
from pytest_novaload.units import format_duration

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import ExecutionState
    from pytest_novaload.engine.vu import VU

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
        n = len(a.problems)
        ramp = a.stages(a.vu_target, start=a.count("start_vus", 1))
        if len(a.problems) == n and ramp.stages and ramp.peak() == 0:
            a.problems.append("start_vus=0 and every stage target is 0: k6 refuses it (either "
                              "startVUs or one of the stages' target values must be greater "
                              "than 0); give a stage a target above 0")
        return cls(graceful_stop=graceful_stop, ramp=ramp,
                   graceful_ramp_down=a.duration("graceful_ramp_down", DEFAULT_GRACEFUL,
                                                 scaled=False))

    def shard(self, rank: int, world: int) -> Self:
        # Every shard keeps the total ramp and follows share(total(t), rank, world): see run.
        return self

    def initial_vus(self, rank: int = 0, world: int = 1) -> int:
        # The whole plan is kept by every shard (see shard): its part's peak.
        return max(v for _, v in ramping_vus_steps(self.ramp, rank=rank, world=world))

    def planned_duration(self) -> float:
        return self.ramp.total

    def max_run_time(self) -> float:
        return super().max_run_time() + self.graceful_ramp_down

    def _fields(self) -> dict[str, Any]:
        return {"start_vus": int(self.ramp.start),
                "stages": [[format_duration(s.duration), int(s.target),
                            *([s.name] if s.name else [])] for s in self.ramp.stages],
                "graceful_ramp_down": format_duration(self.graceful_ramp_down)}

    async def run(self, rt: ExecutionState) -> None:
        await run(rt, self)


@dataclass
class _Slot:
    vu: VU
    active: bool = False
    task: asyncio.Task[None] | None = None


async def run(rt: ExecutionState, plan: RampingVusConfig) -> None:
    """Walk this shard's k6 step list: start and stop VUs at each step's offset.

    A VU the plan removes finishes its iteration; it is interrupted when its
    ``graceful_ramp_down`` is over, from the highest slot down (a slot keeps running while a
    slot above it is still in its grace, as in k6). At the end of the stages every VU gets
    ``graceful_stop``; slots still in a ramp-down grace keep their own deadline.
    """
    ramp = plan.ramp
    loop = asyncio.get_running_loop()
    steps = ramping_vus_steps(ramp, rank=rt.rank, world=rt.world)
    start = loop.time()
    end = rt.plan_ends = start + ramp.total
    slots: list[_Slot] = []     # slots[:running] are the planned VUs
    running = 0
    grace: dict[int, float] = {}   # slot -> end of its ramp-down grace (its task still runs)
    heap: list[int] = []           # -slot for the slots in grace (lazy deletion)
    wake = asyncio.Event()         # a VU task ended: a grace or the final stop may be over
    tasks = Tasks()

    def spawn(i: int, gate: asyncio.Event | None = None) -> None:
        slot = slots[i]
        task = slot.task = tasks.spawn(vu_loop(rt, slot.vu, _keep(slot), gate))
        task.add_done_callback(lambda _: ended(i, task))

    def ended(i: int, task: asyncio.Task[None]) -> None:
        slot = slots[i]
        if slot.task is not task:
            return
        grace.pop(i, None)
        if slot.active and loop.time() < end:
            spawn(i)   # wanted back while it was closing after a ramp-down
        wake.set()

    def adjust(target: int, now: float) -> None:
        """Work only on the slots whose state changes: O(change), not O(VUs), per step."""
        nonlocal running
        while len(slots) < target:
            slots.append(_Slot(rt.new_vu()))
        pacer = StartPacer(max(target - running, 0))  # a big step starts spread, not at once
        for i in range(running, target):      # ramp up (a slot in grace is reused)
            slot = slots[i]
            slot.active = True
            grace.pop(i, None)
            if slot.task is None or slot.task.done():
                spawn(i, pacer.gate(i - running))
        pacer.start(tasks)
        for i in range(target, running):      # ramp down: finish the iteration, then stop
            slots[i].active = False
            grace[i] = now + plan.graceful_ramp_down
            heapq.heappush(heap, -i)
        running = target

    def interrupt(now: float) -> float:
        """Cancel the slots whose grace is over, top down; the next deadline to wait for."""
        while heap:
            i = -heap[0]
            deadline = grace.get(i)
            if deadline is not None and slots[i].active:
                deadline = None
            if deadline is None:
                heapq.heappop(heap)
            elif deadline <= now:
                heapq.heappop(heap)
                del grace[i]
                task = slots[i].task
                if task is not None:
                    task.cancel()  # ramp-down grace is over: interrupt the iteration
            else:
                return deadline
        return math.inf

    def _keep(slot: _Slot) -> Callable[[], bool]:
        return lambda: slot.active and loop.time() < end

    async def nap(until: float) -> None:
        wake.clear()
        delay = until - loop.time()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), delay)

    try:
        step = 0
        while True:
            now = loop.time()
            if now >= end:
                break
            target = running
            while step < len(steps) and start + steps[step][0] <= now:
                target = steps[step][1]
                step += 1
            if target != running:
                adjust(target, now)
            next_step = start + steps[step][0] if step < len(steps) else end
            await nap(min(next_step, end, interrupt(now)))
        for slot in slots:
            slot.active = False
        stop_at = end + plan.graceful_stop
        while tasks.running and (now := loop.time()) < stop_at:
            await nap(min(stop_at, interrupt(now)))
    finally:
        await tasks.cancel()
