"""The worker side: the session's ``Shard`` on an xdist worker, talking to the controller's
``Coordinator`` over the side channel (barrier wait, abort, progress, results)."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import execnet

from pytest_novaload.engine.runner import Runner, RunOutput, Snapshot
from pytest_novaload.errors import ShardError
from pytest_novaload.session import MergedRun
from pytest_novaload.xdist.wire import ShardPart, compact_store_dict, output_from_wire

_CLOSED = object()


class WorkerShard:
    """The session's ``Shard`` on an xdist worker: talks to the controller's Coordinator."""

    def __init__(self, channel: execnet.Channel, worker: str, *,
                 barrier_timeout: float = 60.0) -> None:
        self.channel = channel
        self.worker = worker
        self.barrier_timeout = barrier_timeout
        self.load_ids: set[str] = set()
        self._lock = threading.Lock()
        self._inbox: dict[str, queue.Queue[tuple[Any, ...]]] = {}
        self._aborts: dict[str, str] = {}
        self._runners: dict[str, Runner] = {}
        self._ranks: dict[str, tuple[int, int]] = {}
        self._arrived: set[str] = set()
        self._current: str | None = None
        self._closed = False
        channel.setcallback(self._receive, endmarker=_CLOSED)

    # receiver thread
    def _receive(self, msg: Any) -> None:
        if msg is _CLOSED:
            with self._lock:
                self._closed = True
                boxes = list(self._inbox.values())
            for box in boxes:
                box.put(("closed",))
            return
        kind, nodeid, *rest = msg
        if kind == "abort":
            with self._lock:
                self._aborts.setdefault(nodeid, str(rest[0]))
                runner = self._runners.get(nodeid)
            if runner is not None:
                runner.request_abort(str(rest[0]))
            return
        self._box(nodeid).put((kind, *rest))

    def _box(self, nodeid: str) -> queue.Queue[tuple[Any, ...]]:
        with self._lock:
            box = self._inbox.get(nodeid)
            if box is None:
                box = self._inbox[nodeid] = queue.Queue()
                if self._closed:
                    box.put(("closed",))
            return box

    def send(self, msg: tuple[Any, ...]) -> None:
        with contextlib.suppress(OSError):
            self.channel.send(msg)

    def _wait(self, nodeid: str, kinds: tuple[str, ...], timeout: float | None,
              what: str) -> tuple[Any, ...]:
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
            if msg[0] == "closed":
                raise ShardError(f"{nodeid}: worker '{self.worker}' lost its side channel to "
                                 "the xdist controller")
            if msg[0] in kinds:
                return msg

    # Shard protocol (main thread)
    def begin(self, nodeid: str) -> tuple[int, int]:
        self._current = nodeid
        with self._lock:
            self._arrived.add(nodeid)
        self.send(("arrive", nodeid))
        msg = self._wait(nodeid, ("go", "cancel"), self.barrier_timeout + 30.0,
                         "start signal")
        if msg[0] == "cancel":
            raise ShardError(str(msg[1]))
        rank, world = int(msg[1]), int(msg[2])
        self._ranks[nodeid] = (rank, world)
        return rank, world

    def attach(self, runner: Runner) -> None:
        nodeid = self._current
        if nodeid is None:
            return
        with self._lock:
            self._runners[nodeid] = runner
            reason = self._aborts.get(nodeid)
        runner.progress = self._progress(nodeid, runner)
        if reason is not None:
            runner.request_abort(reason)

    def _progress(self, nodeid: str, runner: Runner) -> Callable[[Snapshot], None]:
        def send(s: Snapshot) -> None:
            self.send(("progress", nodeid, {
                "elapsed": s.elapsed, "planned": s.planned, "vus": s.vus,
                "vus_max": s.vus_max, "iterations": s.iterations,
                "windows": _take_windows(runner)}))
        return send

    def finish(self, nodeid: str, output: RunOutput, runner: Runner) -> MergedRun:
        with self._lock:
            self._runners.pop(nodeid, None)
        rank, world = self._ranks.get(nodeid, (0, 1))
        payload = ShardPart.from_output(self.worker, rank, output).to_wire()
        payload["windows"] = _take_windows(runner)
        self.send(("result", nodeid, payload))
        if output.interrupted:
            return MergedRun(output, world)
        # Peers may legitimately end later (iteration executors, graceful stops): this bound
        # only keeps a lost controller message from hanging the worker.
        limit = runner.plan.max_run_time() + self.barrier_timeout + 60.0
        msg = self._wait(nodeid, ("merged",), limit, "merged result")
        d: dict[str, Any] = msg[1]
        return MergedRun(output_from_wire(d), int(d["shards"]), dict(d["extra"]),
                         d.get("failure"))

    def done(self, nodeid: str, reports: list[dict[str, Any]]) -> None:
        """The item's protocol ended: hand its reports to the controller."""
        with self._lock:
            arrived = nodeid in self._arrived
            self._inbox.pop(nodeid, None)
            self._aborts.pop(nodeid, None)
            self._runners.pop(nodeid, None)
        self._current = None
        self.send(("done", nodeid, {"arrived": arrived, "reports": reports}))


def _take_windows(runner: Runner) -> list[tuple[int, dict[str, Any]]]:
    batch = list(runner.windows)
    del runner.windows[:len(batch)]
    return [(t, compact_store_dict(d)) for t, d in batch]

