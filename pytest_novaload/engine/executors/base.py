"""What every executor's runtime shares: VU loops, the graceful stop, the running tasks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_novaload.engine.runtime import ExecutionState
    from pytest_novaload.engine.vu import VU


class Tasks:
    """The executor's running VU tasks; stopped gracefully, then cancelled. ``aside`` holds
    its helper tasks (a StartPacer's): cancelled with them, never waited for as a VU is."""

    def __init__(self) -> None:
        self.running: set[asyncio.Task[None]] = set()
        self.aside: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return _tracked(coro, self.running)

    async def stop(self, grace: float) -> None:
        """Let running iterations finish for up to ``grace`` seconds, then cancel the rest."""
        if self.running and grace > 0:
            await asyncio.wait(set(self.running), timeout=grace)
        await self.cancel()

    def spawn_aside(self, coro: Coroutine[Any, Any, None]) -> None:
        _tracked(coro, self.aside)

    async def cancel(self) -> None:
        pending = self.running | self.aside
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _tracked(coro: Coroutine[Any, Any, None],
             into: set[asyncio.Task[None]]) -> asyncio.Task[None]:
    """Run ``coro`` as a task held in ``into`` until it ends."""
    task = asyncio.ensure_future(coro)
    into.add(task)
    task.add_done_callback(into.discard)
    return task


#: VUs started at once begin their first iteration about this far apart (10K starts per
#: second), over at most START_SPREAD_MAX s when the loop keeps up: 10K VUs that each GET then
#: sleep 1 s would otherwise wake in one burst every second, and the latency measured would be
#: the generator's own queue.
START_STEP = 1e-4
START_SPREAD_MAX = 1.0
#: the pacer releases one batch of first iterations per tick (the loop's clock counts whole
#: milliseconds under uvloop)
START_TICK = 1e-3


class StartPacer:
    """Releases the first iterations of ``count`` VUs started together, in order, one batch a
    tick (START_STEP apart on average, over at most START_SPREAD_MAX), and never faster than
    the event loop keeps up: a tick that comes late (the loop is busy with what the VUs
    already started do: opening connections, first requests) puts the next one a tick after
    it, so the rest wait instead of starting in one catch-up burst. What a VU waits here is
    the generator's, never in a latency it measures (its first request starts after)."""

    def __init__(self, count: int) -> None:
        span = min(count * START_STEP, START_SPREAD_MAX)
        ticks = max(1, int(span / START_TICK))
        self.batch = max(1, -(-count // ticks))
        self._gates = [asyncio.Event() for _ in range(-(-count // self.batch))]
        if self._gates:
            self._gates[0].set()   # the first batch starts at once

    def gate(self, k: int) -> asyncio.Event | None:
        """What the ``k``-th VU (from 0) waits on before its first iteration; None: nothing."""
        gate = self._gates[k // self.batch]
        return None if gate.is_set() else gate

    def start(self, tasks: Tasks) -> None:
        """Release the batches after the first from a task of ``tasks`` (stopped with them)."""
        if len(self._gates) > 1:
            tasks.spawn_aside(self._release())

    async def _release(self) -> None:
        clock = time.perf_counter
        due = clock() + START_TICK
        for gate in self._gates[1:]:
            now = clock()
            if now < due:
                await asyncio.sleep(due - now)
                now = clock()
            gate.set()
            # on time (within a tick): keep the schedule; late: one tick from now, no catch-up
            due = due + START_TICK if now - due < START_TICK else now + START_TICK


async def vu_loop(rt: ExecutionState, vu: VU, keep_going: Callable[[], bool],
                  gate: asyncio.Event | None = None) -> None:
    """Iterate ``vu`` while ``keep_going()``; yields to the loop after every iteration.
    ``gate`` (from `StartPacer.gate`) holds the first iteration of a VU started in a batch."""
    rt.vu_started()
    rt.plan_starts += 1   # the generator's health tells a planned burst of these
    try:
        if gate is not None:
            await gate.wait()
        while keep_going():
            await rt.iterate(vu)
            await asyncio.sleep(0)
    finally:
        rt.vu_stopped()
    # A VU that stops (ramp-down, its iterations done) closes what it held open, kept
    # WebSocket connections included; a reactivated VU reconnects on first use. At the plan's
    # end ExecutionState.aclose closes them all, after the load.
    if asyncio.get_running_loop().time() < rt.plan_ends:
        await vu.aclose()


async def sleep_until(deadline: float) -> None:
    loop = asyncio.get_running_loop()
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)

