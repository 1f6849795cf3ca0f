"""The worker side: the session's ``Shard`` on an xdist worker, talking to the controller's
``Coordinator`` over the side channel (barrier wait, abort, progress, results).

It sends only from the main thread (see ``pytest_novaload.xdist``); the channel's receiver
thread only files what arrives and forwards aborts to the running ``LoadRunner``.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_novaload.engine.runner import LoadRunner, Measurements, Snapshot
from pytest_novaload.errors import ShardError
from pytest_novaload.thresholds import Verdict
from pytest_novaload.xdist.wire import (
    Abort,
    Arrive,
    Cancel,
    Done,
    Go,
    Merged,
    Message,
    Progress,
    Result,
    WindowList,
    compact_store_dict,
    decode,
    encode,
)

if TYPE_CHECKING:
    import execnet

__all__ = ["WorkerShard"]

_CLOSED = object()


class _Closed:
    """Filed in every inbox when the side channel closes."""


class WorkerShard:
    """The session's ``Shard`` on an xdist worker: talks to the controller's Coordinator."""

    def __init__(self, channel: execnet.Channel, worker: str, *,
                 barrier_timeout: float = 60.0) -> None:
        self.channel = channel
        self.worker = worker
        self.barrier_timeout = barrier_timeout
        self.load_ids: set[str] = set()
        self._lock = threading.Lock()
        self._inbox: dict[str, queue.Queue[Message | _Closed]] = {}
        self._aborts: dict[str, str] = {}
        self._runners: dict[str, LoadRunner] = {}
        self._ranks: dict[str, tuple[int, int]] = {}
        self._arrived: set[str] = set()
        self._current: str | None = None
        self._closed = False
        channel.setcallback(self._receive, endmarker=_CLOSED)

    # receiver thread
    def _receive(self, raw: Any) -> None:
        if raw is _CLOSED:
            with self._lock:
                self._closed = True
                boxes = list(self._inbox.values())
            for box in boxes:
                box.put(_Closed())
            return
        msg = decode(raw)
        if isinstance(msg, Abort):
            with self._lock:
                self._aborts.setdefault(msg.nodeid, msg.reason)
                runner = self._runners.get(msg.nodeid)
            if runner is not None:
                runner.request_abort(msg.reason)
            return
        if isinstance(msg, Go | Cancel | Merged):
            self._box(msg.nodeid).put(msg)

    def _box(self, nodeid: str) -> queue.Queue[Message | _Closed]:
        with self._lock:
            box = self._inbox.get(nodeid)
            if box is None:
                box = self._inbox[nodeid] = queue.Queue()
                if self._closed:
                    box.put(_Closed())
            return box

    def send(self, msg: Message) -> None:
        with contextlib.suppress(OSError):
            self.channel.send(encode(msg))

    def _wait(self, nodeid: str, kinds: tuple[type[Message], ...], timeout: float | None,
              what: str) -> Message:
        box = self._box(nodeid)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise ShardError(f"{nodeid}: no {what} from the xdist controller within "
                                 f"{timeout:g}s (worker '{self.worker}')")
            try:
                msg = box.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if isinstance(msg, _Closed):
                raise ShardError(f"{nodeid}: worker '{self.worker}' lost its side channel to "
                                 "the xdist controller")
            if isinstance(msg, kinds):
                return msg

    # Shard protocol (main thread)
    def begin(self, nodeid: str) -> tuple[int, int]:
        self._current = nodeid
        with self._lock:
            self._arrived.add(nodeid)
        self.send(Arrive(nodeid))
        msg = self._wait(nodeid, (Go, Cancel), self.barrier_timeout + 30.0, "start signal")
        if isinstance(msg, Cancel):
            raise ShardError(msg.reason)
        assert isinstance(msg, Go)
        self._ranks[nodeid] = (msg.rank, msg.world)
        return msg.rank, msg.world

    def attach(self, runner: LoadRunner) -> None:
        nodeid = self._current
        if nodeid is None:
            return
        with self._lock:
            self._runners[nodeid] = runner
            reason = self._aborts.get(nodeid)
        runner.progress = self._progress(nodeid, runner)
        if reason is not None:
            runner.request_abort(reason)

    def _progress(self, nodeid: str, runner: LoadRunner) -> Callable[[Snapshot], None]:
        def send(s: Snapshot) -> None:
            self.send(Progress(nodeid, s.elapsed, s.planned, s.vus, s.vus_max, s.iterations,
                               _compacted(runner)))
        return send

    def finish(self, nodeid: str, measured: Measurements, runner: LoadRunner) -> Merged:
        with self._lock:
            self._runners.pop(nodeid, None)
        rank, world = self._ranks.get(nodeid, (0, 1))
        self.send(Result(nodeid, rank, measured, _compacted(runner)))
        if measured.interrupted:
            return Merged(nodeid, measured, Verdict(aborted=measured.aborted, interrupted=True),
                          world)
        # Peers may legitimately end later (iteration executors, graceful stops): this bound
        # only keeps a lost controller message from hanging the worker.
        limit = runner.plan.max_run_time() + self.barrier_timeout + 60.0
        merged = self._wait(nodeid, (Merged,), limit, "merged result")
        assert isinstance(merged, Merged)
        return merged

    def done(self, nodeid: str, reports: list[dict[str, Any]]) -> None:
        """The item's protocol ended: hand its reports to the controller."""
        with self._lock:
            arrived = nodeid in self._arrived
            self._inbox.pop(nodeid, None)
            self._aborts.pop(nodeid, None)
            self._runners.pop(nodeid, None)
        self._current = None
        self.send(Done(nodeid, arrived, reports))


def _compacted(runner: LoadRunner) -> WindowList:
    return [(t, compact_store_dict(d)) for t, d in runner.take_windows()]
