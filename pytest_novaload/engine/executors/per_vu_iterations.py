"""per-vu-iterations: each VU runs exactly ``iterations`` iterations (within max_duration)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from pytest_novaload.engine.executors.base import Tasks, vu_loop

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import RunContext
    from pytest_novaload.engine.vu import VU
    from pytest_novaload.spec import ExecutorPlan


async def run(rt: RunContext, plan: ExecutorPlan) -> None:
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
