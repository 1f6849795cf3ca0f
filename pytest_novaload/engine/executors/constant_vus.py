"""constant-vus: a fixed number of VUs loop over the scenario for a duration."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pytest_novaload.engine.executors.base import Tasks, sleep_until, vu_loop

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import RunContext
    from pytest_novaload.spec import ExecutorPlan


async def run(rt: RunContext, plan: ExecutorPlan) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + plan.duration
    stopped = False

    def keep_going() -> bool:
        return not stopped and loop.time() < end

    tasks = Tasks()
    try:
        for _ in range(plan.vus):
            tasks.spawn(vu_loop(rt, rt.new_vu(), keep_going))
        await sleep_until(end)
        stopped = True
        await tasks.stop(plan.graceful_stop)
    finally:
        await tasks.cancel()
