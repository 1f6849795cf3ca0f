"""shared-iterations: VUs share one pool of ``iterations`` (within max_duration)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pytest_novaload.engine.executors.base import Tasks, vu_loop

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import RunContext
    from pytest_novaload.spec import ExecutorPlan


async def run(rt: RunContext, plan: ExecutorPlan) -> None:
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
