"""A cheap timeout for the awaits a client repeats thousands of times a second.

``asyncio.timeout()`` builds a context object and schedules then cancels a timer handle on
every use: ~5 us per request under uvloop, as much as the WebSocket round trip itself. A
`Deadline` belongs to one connection and keeps at most one timer handle scheduled: each use
only stores the new deadline; when the handle fires before it (the deadline moved later),
it re-arms once at the new one. A connection doing thousands of requests per second thus
schedules about one handle per timeout period. Semantics follow ``asyncio.timeout``: on
expiry the task is cancelled, and `stop` undoes that cancellation and says so, so that the
caller raises ``TimeoutError`` while a cancellation from elsewhere still propagates.
"""

from __future__ import annotations

import asyncio
import math

__all__ = ["Deadline"]

#: a handle firing this close before the deadline counts as expiry (uvloop's clock is in ms).
_EARLY = 1e-3


class Deadline:
    """One step at a time: ``start(timeout)`` before the awaits, ``stop()`` after them."""

    __slots__ = ("_armed_at", "_cancelling", "_expired", "_handle", "_loop", "_task", "_when")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = math.inf  # when the scheduled handle fires
        self._when = 0.0
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._expired = False

    def start(self, timeout: float) -> None:
        """Cancel the current task if it is still inside this step ``timeout`` s from now."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        when = loop.time() + timeout
        self._when = when
        task = self._task = asyncio.current_task(loop)
        assert task is not None, "Deadline.start outside a task"
        self._cancelling = task.cancelling()
        self._expired = False
        if when < self._armed_at:
            if self._handle is not None:
                self._handle.cancel()
            self._handle = loop.call_at(when, self._fire)
            self._armed_at = when

    def stop(self) -> bool:
        """End the step; True when the deadline expired during it (its cancel undone) and
        nothing else cancelled the task: the caller then raises ``TimeoutError``."""
        task, self._task = self._task, None
        if not self._expired or task is None:
            return False
        self._expired = False
        return task.uncancel() <= self._cancelling

    def close(self) -> None:
        """Drop the scheduled handle (the connection is gone)."""
        self._task = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            self._armed_at = math.inf

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = math.inf
        task = self._task
        loop = self._loop
        if task is None or loop is None:
            return  # no step running: the next start() schedules a handle again
        if loop.time() >= self._when - _EARLY:
            self._expired = True
            task.cancel()
        else:
            self._handle = loop.call_at(self._when, self._fire)
            self._armed_at = self._when
