"""constant-arrival-rate and ramping-arrival-rate: an open model.

Iteration starts come from the clock (``stages.arrival_times``), not from the end of the previous
iteration. A start with no free VU allocates one up to ``max_vus``; past that it is dropped and
counted in ``dropped_iterations``. Under xdist shard ``rank`` starts every ``world``-th iteration of
the total plan, so totals are exact and shards do not start in bursts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from pytest_novaload.engine.executors.base import Tasks, sleep_until
from pytest_novaload.engine.stages import arrival_times
from pytest_novaload.metrics.builtins import define_builtins

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import RunContext
    from pytest_novaload.engine.vu import VU
    from pytest_novaload.spec import ExecutorPlan


async def run(rt: RunContext, plan: ExecutorPlan) -> None:
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
