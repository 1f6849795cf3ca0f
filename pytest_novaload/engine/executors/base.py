"""What every executor's runtime shares: VU loops, the graceful stop, the running tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import ExecutionState
    from pytest_novaload.engine.vu import VU


class Tasks:
    """The executor's running VU tasks; stopped gracefully, then cancelled."""

    def __init__(self) -> None:
        self.running: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        return task

    async def stop(self, grace: float) -> None:
        """Let running iterations finish for up to ``grace`` seconds, then cancel the rest."""
        if self.running and grace > 0:
            await asyncio.wait(set(self.running), timeout=grace)
        await self.cancel()

    async def cancel(self) -> None:
        pending = set(self.running)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


#: VUs started at once begin their first iteration this far apart (10K starts per second),
#: over at most START_SPREAD_MAX s: 10K VUs that each GET then sleep 1 s would otherwise wake
#: in one burst every second, and the latency measured would be the generator's own queue.
START_STEP = 1e-4
START_SPREAD_MAX = 1.0


def start_delays(count: int) -> list[float]:
    """First-iteration offsets of ``count`` VUs started together: evenly spaced, the first 0."""
    if count <= 1:
        return [0.0] * count
    step = min(START_STEP, START_SPREAD_MAX / count)
    return [k * step for k in range(count)]


async def vu_loop(rt: ExecutionState, vu: VU, keep_going: Callable[[], bool],
                  start_delay: float = 0.0) -> None:
    """Iterate ``vu`` while ``keep_going()``; yields to the loop after every iteration.
    ``start_delay`` (from `start_delays`) spreads the first iterations of a batch of VUs."""
    rt.vu_started()
    rt.plan_starts += 1   # the generator's health tells a planned burst of these
    try:
        if start_delay > 0:
            await asyncio.sleep(start_delay)
        while keep_going():
            await rt.iterate(vu)
            await asyncio.sleep(0)
    finally:
        rt.vu_stopped()
    # A VU that stops (ramp-down, its iterations done) closes what it held open, kept
    # WebSocket connections included; a reactivated VU reconnects on first use.
    await vu.aclose()


async def sleep_until(deadline: float) -> None:
    loop = asyncio.get_running_loop()
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)

