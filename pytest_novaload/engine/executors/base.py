"""What every executor's runtime shares: VU loops, the graceful stop, the running tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import RunContext
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


async def vu_loop(rt: RunContext, vu: VU, keep_going: Callable[[], bool]) -> None:
    """Iterate ``vu`` while ``keep_going()``; yields to the loop after every iteration."""
    rt.vu_started()
    try:
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

