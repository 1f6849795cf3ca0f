"""pytest-xdist fan-out: every worker drives a shard of each load test at the same moment.

Controller: ``FanoutScheduling`` sends every load test to every worker first, in the same
order (the ordinary tests follow, load-balanced as ``--dist load`` does). A ``Coordinator``
runs the start barrier over an execnet side channel passed in ``workerinput``, gives each
shard its rank and the world size at release, shows merged progress, tells shards to stop
(abort_on_fail, a crashed peer), merges the shards' measurements (digests merged, counters
summed, never an average of percentiles) and emits ONE report per load test.
Worker: ``WorkerShard`` is the session's ``Shard``; ``WorkerPlugin`` runs load items without
logging them and sends their reports to the controller, which logs the chosen one.

Side-channel messages (tuples; the controller knows which worker a message came from):
  worker -> controller: ("meta", {nodeid: meta}), ("arrive", nodeid), ("progress", nodeid, d),
                        ("result", nodeid, d), ("done", nodeid, d)
  controller -> worker: ("go", nodeid, rank, world), ("cancel", nodeid, reason),
                        ("abort", nodeid, reason), ("merged", nodeid, d)
A worker sends only from its main thread, so a shard's messages reach the controller before
xdist's own ``runtest_protocol_complete`` for the same item (same gateway, same order).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import cycle
from typing import Any

import execnet
import pytest
from _pytest.runner import runtestprotocol
from xdist.remote import Producer
from xdist.scheduler import LoadScheduling
from xdist.workermanage import WorkerController

from pytest_novaload.engine.runner import Runner, RunOutput, Snapshot, window_lines
from pytest_novaload.engine.runtime import ErrorLog
from pytest_novaload.errors import ShardError
from pytest_novaload.metrics import MetricStore, Trend
from pytest_novaload.reporting import terminal
from pytest_novaload.reporting.model import RunResult, threshold_keys
from pytest_novaload.session import (
    TARGET_ENV,
    MergedRun,
    NovaloadSession,
    build_result,
    report_properties,
)
from pytest_novaload.thresholds import Threshold, evaluate

__all__ = [
    "ControllerPlugin",
    "Coordinator",
    "FanoutScheduling",
    "ShardPart",
    "WorkerPlugin",
    "WorkerShard",
    "compact_store_dict",
    "merge_generators",
    "merge_parts",
]

WINDOW_CENTROIDS = 64
"""Per-second windows travel with their digests compacted to this many centroids."""

ShardMetaFn = Callable[[pytest.Item], tuple[dict[str, Any], tuple[Threshold, ...]] | None]
"""plugin.py's view of an item: (executor description, thresholds) for a load test, else None."""


# -- merging (pure) ----------------------------------------------------------------------------

@dataclass
class ShardPart:
    """What one shard measured, as the controller merges it."""

    worker: str
    rank: int
    store: MetricStore
    errors: ErrorLog
    started: float
    finished: float
    duration: float
    aborted: str | None = None
    interrupted: bool = False
    generator: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_output(cls, worker: str, rank: int, output: RunOutput) -> ShardPart:
        return cls(worker, rank, output.store, output.errors, output.started, output.finished,
                   output.duration, output.aborted, output.interrupted, output.generator)

    def to_wire(self) -> dict[str, Any]:
        return {"rank": self.rank, "store": self.store.to_dict(),
                "errors": self.errors.to_list(), "started": self.started,
                "finished": self.finished, "duration": self.duration, "aborted": self.aborted,
                "interrupted": self.interrupted, "generator": self.generator}

    @classmethod
    def from_wire(cls, worker: str, d: dict[str, Any]) -> ShardPart:
        return cls(worker, int(d["rank"]), MetricStore.from_dict(d["store"]),
                   ErrorLog.from_list(list(d["errors"])), float(d["started"]),
                   float(d["finished"]), float(d["duration"]), d.get("aborted"),
                   bool(d.get("interrupted")), dict(d.get("generator") or {}))


def merge_parts(parts: Sequence[ShardPart], *, aborted: str | None = None) -> RunOutput:
    """One run's output from its shards: stores and error logs merged (t-digests merged,
    counters summed, rates as sum/sum, VU gauges summed), the longest shard's duration, the
    earliest start and the latest end. ``aborted`` overrides the shards' own reasons."""
    if not parts:
        raise ValueError("merge_parts needs at least one shard")
    ordered = sorted(parts, key=lambda p: p.rank)
    store = MetricStore()
    errors = ErrorLog()
    for p in ordered:
        store.merge(p.store)
        errors.merge(p.errors)
    reason = aborted or next((p.aborted for p in ordered if p.aborted), None)
    return RunOutput(store=store, errors=errors, started=min(p.started for p in ordered),
                     finished=max(p.finished for p in ordered),
                     duration=max(p.duration for p in ordered), timeseries=[],
                     interrupted=any(p.interrupted for p in ordered), aborted=reason,
                     generator=merge_generators(ordered))


def merge_generators(parts: Sequence[ShardPart]) -> dict[str, Any]:
    """Generator health over shards: the worst shard's verdict, the largest lag and CPU, and
    every shard's own numbers under ``shards``."""
    gens = [(p, p.generator) for p in parts if p.generator]
    if not gens:
        return {}
    worst = max(gens, key=lambda pg: (bool(pg[1].get("saturated")),
                                      float(pg[1].get("loop_lag_p99_ms", 0.0))))[1]
    out = dict(worst)
    for key in ("loop_lag_p99_ms", "loop_lag_max_ms", "gc_pause_max_ms", "gc_pause_total_ms",
                "cpu"):  # per process: the worst shard's figure
        values = [float(g[key]) for _, g in gens if key in g]
        if values:
            out[key] = max(values)
    out["saturated"] = any(bool(g.get("saturated")) for _, g in gens)
    out["shards"] = [{"worker": p.worker, "rank": p.rank, **g} for p, g in gens]
    return out


def compact_store_dict(d: dict[str, Any], max_centroids: int = WINDOW_CENTROIDS
                       ) -> dict[str, Any]:
    """``MetricStore.to_dict()`` with every trend digest compacted (windows for transport)."""
    metrics: dict[str, Any] = {}
    for name, entry in d["metrics"].items():
        if entry["kind"] != "trend":
            metrics[name] = entry
            continue
        series = [{"tags": s["tags"],
                   "sink": Trend.from_dict(s["sink"]).compact(max_centroids).to_dict()}
                  for s in entry["series"]]
        metrics[name] = {**entry, "series": series}
    return {"metrics": metrics}


def threshold_to_wire(t: Threshold) -> dict[str, Any]:
    return dataclasses.asdict(t)


def threshold_from_wire(d: dict[str, Any]) -> Threshold:
    return Threshold(**d)


def output_to_wire(output: RunOutput) -> dict[str, Any]:
    return {"store": output.store.to_dict(), "errors": output.errors.to_list(),
            "started": output.started, "finished": output.finished,
            "duration": output.duration, "aborted": output.aborted,
            "interrupted": output.interrupted, "generator": output.generator}


def output_from_wire(d: dict[str, Any]) -> RunOutput:
    return RunOutput(store=MetricStore.from_dict(d["store"]),
                     errors=ErrorLog.from_list(list(d["errors"])), started=float(d["started"]),
                     finished=float(d["finished"]), duration=float(d["duration"]),
                     timeseries=[], interrupted=bool(d["interrupted"]), aborted=d["aborted"],
                     generator=dict(d["generator"] or {}))


# -- worker side ---------------------------------------------------------------------------------

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
        plan = runner.plan
        limit = (plan.planned_duration() + plan.graceful_stop + plan.graceful_ramp_down
                 + self.barrier_timeout + 60.0)
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


class WorkerPlugin:
    """Registered on xdist workers: describes the load tests, runs their shards."""

    def __init__(self, shard: WorkerShard, meta_of: ShardMetaFn) -> None:
        self.shard = shard
        self.meta_of = meta_of

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Sent before xdist's own collectionfinish (tryfirst, same gateway): the controller
        # knows the load tests when it schedules.
        metas: dict[str, Any] = {}
        for item in session.items:
            meta = self.meta_of(item)
            if meta is None:
                continue
            executor, thresholds = meta
            metas[item.nodeid] = {"location": tuple(item.location), "executor": executor,
                                  "thresholds": [threshold_to_wire(t) for t in thresholds]}
        self.shard.load_ids = set(metas)
        self.shard.send(("meta", metas))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item,
                                nextitem: pytest.Item | None) -> bool | None:
        if item.nodeid not in self.shard.load_ids:
            return None
        # Run without logging: the controller logs one report for all shards.
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        hook = item.config.hook
        data = [hook.pytest_report_to_serializable(config=item.config, report=r)
                for r in reports]
        self.shard.done(item.nodeid, data)
        return True


# -- controller side -------------------------------------------------------------------------------

@dataclass
class _Run:
    """One load test on the controller: barrier, shards, merge, verdict."""

    nodeid: str
    location: tuple[str, int | None, str]
    executor: dict[str, Any]
    thresholds: tuple[Threshold, ...]
    nodes: list[str]                                   # workers expected to run a shard
    arrived: dict[str, float] = field(default_factory=dict)
    released: float = 0.0                              # unix time of the "go"; 0: not yet
    ranks: dict[str, int] = field(default_factory=dict)
    world: int = 0
    results: dict[str, ShardPart] = field(default_factory=dict)
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: set[str] = field(default_factory=set)
    left: dict[str, str] = field(default_factory=dict)  # worker -> why it left mid-test
    lost_before_start: list[str] = field(default_factory=list)
    failure: str | None = None                         # a worker crashed or left mid-test
    cancelled: str | None = None
    cause: str | None = None                           # the worker whose report explains it
    silent: bool = False                               # cancelled by -x/--maxfail: no report
    interrupted: bool = False                          # Ctrl-C on the controller
    abort_reason: str | None = None
    merged: bool = False
    result: RunResult | None = None
    windows: dict[int, MetricStore] = field(default_factory=dict)
    cumulative: MetricStore = field(default_factory=MetricStore)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    ticks: dict[str, int] = field(default_factory=dict)   # progress messages per shard
    shown_tick: int = 0
    last_line: float = -1.0
    last_check: float = 0.0
    emitted: bool = False                              # the verdict is being / was logged
    reported: bool = False                             # ... and -x/--maxfail has seen it
    timer: threading.Timer | None = None

    def sort_key(self, worker: str) -> tuple[int, int]:
        rank = self.ranks.get(worker)
        seq = self.nodes.index(worker) if worker in self.nodes else 1 << 20
        return (rank if rank is not None else 1 << 20, seq)

    def timeseries(self) -> list[dict[str, Any]]:
        keys = threshold_keys(self.thresholds)
        lines: list[dict[str, Any]] = []
        for t in sorted(self.windows):
            lines.extend(window_lines(self.windows[t], t, self.nodeid, keys))
        return lines


class Coordinator:
    """Controller state of every fan-out load test. Thread-safe: execnet receiver threads
    deliver shard messages, the main thread schedules, completes and emits reports, a timer
    thread enforces the barrier timeout."""

    def __init__(self, config: pytest.Config, session: NovaloadSession) -> None:
        self.config = config
        self.session = session
        self.barrier_timeout = session.options.barrier_timeout
        self.meta: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, _Run] = {}
        self.order: list[_Run] = []
        self.channels: dict[str, execnet.Channel] = {}
        self.controllers: dict[str, WorkerController] = {}
        self.down: set[str] = set()
        self._lock = threading.RLock()
        self._tty_line = False

    # -- wiring -----------------------------------------------------------------------------
    def connect(self, node: WorkerController, channel: execnet.Channel) -> None:
        wid = str(node.gateway.id)
        with self._lock:
            self.channels[wid] = channel
            self.controllers[wid] = node
        channel.setcallback(lambda msg: self._receive(wid, msg))

    def load_ids(self) -> set[str]:
        with self._lock:
            return set(self.meta)

    def plan_runs(self, nodeids: Sequence[str], workers: Sequence[str]) -> None:
        """The scheduler sent these load tests to these workers, in this order."""
        with self._lock:
            for nodeid in nodeids:
                meta = self.meta[nodeid]
                loc = meta["location"]
                run = _Run(nodeid, (str(loc[0]), loc[1], str(loc[2])), dict(meta["executor"]),
                           tuple(threshold_from_wire(t) for t in meta["thresholds"]),
                           sorted(workers, key=_worker_key))
                self.runs[nodeid] = run
                self.order.append(run)

    def _send(self, wid: str, msg: tuple[Any, ...]) -> None:
        channel = self.channels.get(wid)
        if channel is None or wid in self.down:
            return
        with contextlib.suppress(OSError):
            channel.send(msg)

    # -- messages from shards (receiver threads) --------------------------------------------------
    def _receive(self, wid: str, msg: Any) -> None:
        try:
            kind = msg[0]
            if kind == "meta":
                with self._lock:
                    for nodeid, meta in msg[1].items():
                        self.meta.setdefault(nodeid, meta)
                return
            with self._lock:
                run = self.runs.get(msg[1])
                if run is None:
                    if kind == "arrive":
                        self._send(wid, ("cancel", msg[1], f"{msg[1]} is not a fan-out load "
                                         "test on this controller"))
                    return
                if kind == "arrive":
                    self._arrive(run, wid)
                elif kind == "progress":
                    self._progress(run, wid, msg[2])
                elif kind == "result":
                    self._result(run, wid, msg[2])
                elif kind == "done":
                    self._done(run, wid, msg[2])
        except Exception as exc:  # never raise into execnet's receiver thread
            self._warn(f"pytest-novaload: bad side-channel message from {wid}: {exc!r}")

    def _arrive(self, run: _Run, wid: str) -> None:
        if run.cancelled is not None:
            self._send(wid, ("cancel", run.nodeid, run.cancelled))
            return
        if run.released or wid not in run.nodes:
            self._send(wid, ("cancel", run.nodeid, f"{run.nodeid}: worker '{wid}' arrived at "
                             "a start barrier it is not part of"))
            return
        run.arrived[wid] = time.time()
        if run.timer is None:
            run.timer = threading.Timer(self.barrier_timeout, self._barrier_expired, (run,))
            run.timer.daemon = True
            run.timer.start()
        self._maybe_release(run)

    def _maybe_release(self, run: _Run) -> None:
        if run.released or run.cancelled is not None or not run.nodes:
            return
        if not all(w in run.arrived for w in run.nodes):
            return
        if not all(r.reported for r in self.order[:self.order.index(run)]):
            return  # the previous verdict first: -x stops here, output stays in order
        if run.timer is not None:
            run.timer.cancel()
        run.world = len(run.nodes)
        run.ranks = {w: i for i, w in enumerate(run.nodes)}
        run.released = time.time()
        for w, rank in run.ranks.items():
            self._send(w, ("go", run.nodeid, rank, run.world))

    def _barrier_expired(self, run: _Run) -> None:
        with self._lock:
            if run.released or run.cancelled is not None:
                return
            missing = [w for w in run.nodes if w not in run.arrived]
            late = (f"worker(s) {', '.join(missing)} did not reach the start barrier"
                    if missing else "the previous load test's verdict did not come")
            self._cancel(run, f"{run.nodeid}: {late} within {self.barrier_timeout:g}s; no "
                              "shard ran. Raise --load-barrier-timeout if setup is that slow")

    def _cancel(self, run: _Run, reason: str, *, cause: str | None = None,
                silent: bool = False) -> None:
        run.cancelled = reason
        run.cause = cause
        run.silent = silent
        if run.timer is not None:
            run.timer.cancel()
        for w in run.arrived:
            self._send(w, ("cancel", run.nodeid, reason))

    def _abort(self, run: _Run, reason: str) -> None:
        if run.abort_reason is None:
            run.abort_reason = reason
        for w in run.ranks:
            if w not in run.results and w not in run.left:
                self._send(w, ("abort", run.nodeid, reason))

    def _progress(self, run: _Run, wid: str, d: dict[str, Any]) -> None:
        if not run.released or run.merged:
            return
        self._add_windows(run, d.get("windows") or ())
        run.progress[wid] = {k: v for k, v in d.items() if k != "windows"}
        run.ticks[wid] = run.ticks.get(wid, 0) + 1
        self._check_abort(run)
        self._show_progress(run)

    def _add_windows(self, run: _Run, windows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        for t, wd in windows:
            window = MetricStore.from_dict(wd)
            run.cumulative.merge(window)  # copies what it keeps: window stays independent
            mine = run.windows.get(int(t))
            if mine is None:
                run.windows[int(t)] = window
            else:
                mine.merge(window)

    def _check_abort(self, run: _Run) -> None:
        """abort_on_fail judged on every shard's windows merged (counts are exact, digests
        compacted); a shard also judges its own numbers every second."""
        ths = [t for t in run.thresholds if t.abort_on_fail]
        now = time.monotonic()
        if not ths or run.abort_reason is not None or now - run.last_check < 0.5:
            return
        run.last_check = now
        elapsed = time.time() - run.released
        for th in ths:
            name = th.metric.split("{", 1)[0]
            if elapsed < th.delay_abort_eval or (
                    name in run.cumulative and run.cumulative.kind(name) == "gauge"):
                continue  # summed windows say nothing of a gauge: the shards judge those
            outcome = evaluate(th, run.cumulative, elapsed)
            if outcome.observed is not None and not outcome.ok:
                self._abort(run, f"abort_on_fail: {outcome.line()} "
                                 f"(all {run.world} shards merged)")
                return

    def _result(self, run: _Run, wid: str, d: dict[str, Any]) -> None:
        part = ShardPart.from_wire(wid, d)
        run.results[wid] = part
        self._add_windows(run, d.get("windows") or ())
        if part.aborted and run.abort_reason is None:
            self._abort(run, f"{part.aborted} (shard {part.rank + 1}/{run.world}, "
                             f"worker '{wid}')")
        self._maybe_merge(run)

    def _done(self, run: _Run, wid: str, d: dict[str, Any]) -> None:
        run.done[wid] = d
        if not d.get("arrived"):
            if not run.released and run.cancelled is None:
                self._cancel(run, f"{run.nodeid}: the shard on worker '{wid}' "
                                  f"{_why_not_started(d.get('reports') or [])}, so no shard "
                                  "ran", cause=wid)
        elif run.released and wid not in run.results and wid not in run.left:
            run.left[wid] = "failed before it sent its measurements"
            run.cause = wid
            self._abort(run, f"the shard on worker '{wid}' failed")
            self._maybe_merge(run)

    def _maybe_merge(self, run: _Run) -> None:
        if not run.released or run.merged:
            return
        if any(w not in run.results and w not in run.left for w in run.ranks):
            return
        run.merged = True
        self._end_progress()
        parts = sorted(run.results.values(), key=lambda p: p.rank)
        if not parts:
            return
        output = merge_parts(parts, aborted=run.abort_reason)
        output.interrupted = output.interrupted or run.interrupted
        extra = self._extra(run, parts)
        lost = [w for w in run.ranks if w in run.left and w not in run.results]
        failure = None
        if lost:
            failure = (f"{run.failure or 'a shard left'}; the measurements of the other "
                       f"{len(parts)} shard(s) are kept in summary.json")
        run.result = build_result(run.nodeid, run.thresholds, run.executor, output,
                                  shards=run.world, extra=extra)
        payload = output_to_wire(output)
        payload.update(shards=run.world, extra=extra, failure=failure)
        for w in run.results:
            self._send(w, ("merged", run.nodeid, payload))

    def _extra(self, run: _Run, parts: Sequence[ShardPart]) -> dict[str, Any]:
        starts = [p.started for p in parts]
        extra: dict[str, Any] = {
            "start_spread_ms": round((max(starts) - min(starts)) * 1000.0, 3),
            "workers": [{"worker": p.worker, "rank": p.rank} for p in parts],
        }
        lost = [{"worker": w, "rank": run.ranks[w], "reason": run.left[w]}
                for w in run.ranks if w in run.left and w not in run.results]
        if lost:
            extra["lost_shards"] = lost
        if run.lost_before_start:
            extra["workers_lost_before_start"] = list(run.lost_before_start)
        return extra

    # -- progress ---------------------------------------------------------------------------------
    def _show_progress(self, run: _Run) -> None:
        write = self.session.write
        mode = self.session.options.progress
        if write is None or mode == "off" or not run.progress:
            return
        tty = self.session.isatty if mode == "auto" else mode == "tty"
        # One line per round: once every running shard has sent this second's numbers.
        tick = min(run.ticks.get(w, 0) for w in run.ranks if w not in run.left) \
            if any(w not in run.left for w in run.ranks) else 0
        if tick <= run.shown_tick:
            return
        run.shown_tick = tick
        counts = list(run.progress.values())
        elapsed = max(float(c["elapsed"]) for c in counts)
        if not tty and run.last_line >= 0 and elapsed - run.last_line < 10.0:
            return
        run.last_line = elapsed
        snap = Snapshot(elapsed=elapsed, planned=max(float(c["planned"]) for c in counts),
                        vus=sum(int(c["vus"]) for c in counts),
                        vus_max=sum(int(c["vus_max"]) for c in counts),
                        iterations=sum(int(c["iterations"]) for c in counts),
                        store=run.cumulative)
        line = f"{terminal.progress_line(run.nodeid, snap)}  [{run.world} shards]"
        with contextlib.suppress(Exception):
            if tty:
                write("\r" + line[:150].ljust(150))
                self._tty_line = True
            else:
                write(line + "\n")

    def _end_progress(self) -> None:
        if self._tty_line and self.session.write is not None:
            with contextlib.suppress(Exception):
                self.session.write("\r" + " " * 150 + "\r")
        self._tty_line = False

    def _warn(self, text: str) -> None:
        if self.session.write is not None:
            with contextlib.suppress(Exception):
                self.session.write(text + "\n")

    # -- main thread: scheduler events ------------------------------------------------------------
    def shard_complete(self, wid: str, nodeid: str) -> None:
        """xdist says worker ``wid`` finished its item ``nodeid`` (its done message is in)."""
        with self._lock:
            run = self.runs.get(nodeid)
            if run is None:
                return
            run.complete.add(wid)
        self._maybe_emit(run)

    def node_down(self, wid: str, error: object | None) -> None:
        """A worker crashed or left. Its current load test fails (the other shards stop and
        keep their measurements); later load tests run without it."""
        touched: list[_Run] = []
        with self._lock:
            self.down.add(wid)
            why = (f"crashed ({error})" if error else
                   "left early (-x/--maxfail, or an error stopped its session)")
            mine = [r for r in self.order
                    if wid in r.nodes and wid not in r.complete and wid not in r.left]
            for i, run in enumerate(mine):
                touched.append(run)
                if i > 0:
                    # Not started on that worker: the remaining shards share its part.
                    run.nodes.remove(wid)
                    run.lost_before_start.append(wid)
                    self._maybe_release(run)
                    continue
                run.left[wid] = why
                rank = run.ranks.get(wid)
                where = f" (shard {rank + 1}/{run.world})" if rank is not None else ""
                run.failure = run.failure or (
                    f"worker '{wid}' {why} while running {run.nodeid}{where}")
                if run.released:
                    if wid not in run.results:
                        self._abort(run, f"worker '{wid}' {why}")
                    self._maybe_merge(run)
                elif run.cancelled is None:
                    self._cancel(run, run.failure)
        for run in touched:
            self._maybe_emit(run)

    def stop_pending(self, reason: str) -> None:
        """The session stops (-x/--maxfail): load tests that have not started never will."""
        with self._lock:
            for run in self.order:
                if not run.released and run.cancelled is None and not run.emitted:
                    self._cancel(run, reason, silent=True)

    def close(self) -> None:
        with self._lock:
            for run in self.order:
                if run.timer is not None:
                    run.timer.cancel()

    def interrupt(self, grace: float = 5.0) -> None:
        """Ctrl-C: stop the running shards, wait ``grace`` seconds for what they measured and
        record it, judged on nothing, as "interrupted" (the workers are still connected)."""
        with self._lock:
            running = [r for r in self.order if r.released and not r.emitted]
            for run in running:
                if not run.merged:
                    run.interrupted = True
                    self._abort(run, "interrupted (Ctrl-C)")
        deadline = time.monotonic() + grace
        while running and time.monotonic() < deadline:
            with self._lock:
                if all(r.merged for r in running):
                    break
            time.sleep(0.05)
        for run in running:
            with self._lock:
                if not run.merged:
                    for w in run.ranks:  # gone or silent: merge what did arrive
                        if w not in run.results:
                            run.left.setdefault(w, "sent nothing before the interrupt")
                    self._maybe_merge(run)
                result = run.result if not run.emitted else None
                run.emitted = True
            if result is not None:
                self.session.record(result, run.timeseries())

    # -- main thread: the one report per load test --------------------------------------------
    def _maybe_emit(self, run: _Run) -> None:
        with self._lock:
            if run.emitted or any(w not in run.complete and w not in run.left
                                  for w in run.nodes):
                return
            if run.released and not run.merged:
                return  # a shard's measurements are still on their way
            run.emitted = True
            chosen = None if run.silent else self._pick(run)
        if chosen is not None:
            self._emit(run, chosen)
        with self._lock:
            run.reported = True
            later = self.order[self.order.index(run) + 1:]
            if later:
                self._maybe_release(later[0])

    def _pick(self, run: _Run) -> tuple[str | None, list[dict[str, Any]]]:
        """The shard whose reports stand for the test: the one that explains a cancel, else
        the first failing shard by rank, else rank 0."""
        if run.cause is not None and run.cause in run.done:
            return run.cause, list(run.done[run.cause]["reports"])
        ordered = sorted(run.done, key=run.sort_key)
        for w in ordered:
            reports = list(run.done[w]["reports"])
            if any(r.get("outcome") == "failed" for r in reports):
                return w, reports
        if ordered:
            return ordered[0], list(run.done[ordered[0]]["reports"])
        return None, []

    def _emit(self, run: _Run, chosen: tuple[str | None, list[dict[str, Any]]]) -> None:
        config = self.config
        hook = config.hook
        wid, data = chosen
        reports: list[pytest.TestReport] = [
            hook.pytest_report_from_serializable(config=config, data=d) for d in data]
        if run.failure and not any(r.failed for r in reports):
            # A shard crashed after it had sent everything: still a failure.
            reports, wid = self._synthetic(run, run.failure), None
        elif not reports:
            reports = self._synthetic(run, run.failure or run.cancelled or
                                      f"{run.nodeid}: no shard reported")
        props = report_properties(run.result) if run.result is not None else []
        for rep in reports:
            if rep.when in ("call", "teardown") and props:  # JUnit reads the teardown's
                have = {k for k, _ in rep.user_properties}
                rep.user_properties = list(rep.user_properties) + [
                    (k, v) for k, v in props if k not in have]
        if run.result is not None:
            outcome = ("failed" if any(r.failed for r in reports) else
                       next((r.outcome for r in reports if r.when == "call"), "passed"))
            self.session.record(run.result, run.timeseries())
            self.session.set_outcome(run.nodeid, outcome)
        node = self.controllers.get(wid) if wid is not None else None
        hook.pytest_runtest_logstart(nodeid=run.nodeid, location=run.location)
        for rep in reports:
            if node is not None:
                rep.node = node  # type: ignore[attr-defined]
            hook.pytest_runtest_logreport(report=rep)
        hook.pytest_runtest_logfinish(nodeid=run.nodeid, location=run.location)
        failed = next((r for r in reports if r.failed), None)
        dsession = config.pluginmanager.getplugin("dsession")
        if failed is not None and dsession is not None:
            # DSession counts only reports that come from workers: count ours for -x/--maxfail.
            handle = getattr(dsession, "_handlefailures", None)
            if handle is not None:
                handle(failed)
            if getattr(dsession, "shouldstop", False):
                self.stop_pending(str(dsession.shouldstop))

    def _synthetic(self, run: _Run, message: str) -> list[pytest.TestReport]:
        props = report_properties(run.result) if run.result is not None else []
        common: dict[str, Any] = {"nodeid": run.nodeid, "location": run.location,
                                  "keywords": {run.nodeid.rsplit("::", 1)[-1]: 1}}
        return [pytest.TestReport(outcome="passed", longrepr=None, when="setup", **common),
                pytest.TestReport(outcome="failed", longrepr=message, when="call",
                                  user_properties=props, **common),
                pytest.TestReport(outcome="passed", longrepr=None, when="teardown", **common)]


def _worker_key(wid: str) -> tuple[int, str]:
    """gw2 before gw10: ranks follow the worker numbers."""
    digits = "".join(ch for ch in wid if ch.isdigit())
    return (int(digits) if digits else 1 << 30, wid)


def _why_not_started(reports: list[dict[str, Any]]) -> str:
    for r in reports:
        if r.get("outcome") == "failed":
            return ("failed in setup" if r.get("when") == "setup" else
                    "failed before it called load.run")
        if r.get("outcome") == "skipped":
            return "was skipped"
    return "ended without calling load.run"


class FanoutScheduling(LoadScheduling):  # type: ignore[misc]  # xdist ships no type hints
    """``--dist load`` plus fan-out: every load test goes to every worker, first and in the
    same order; ordinary tests are load-balanced after them as LoadScheduling does."""

    collection: list[str] | None
    pending: list[int]
    node2pending: dict[WorkerController, list[int]]
    node2collection: dict[WorkerController, list[str]]
    maxschedchunk: int | None

    def __init__(self, config: pytest.Config, log: Producer | None,
                 coordinator: Coordinator) -> None:
        super().__init__(config, log)
        self.coordinator = coordinator
        self.fanout: set[int] = set()

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:
            super().schedule()  # a replacement worker joined: ordinary tests only
            return
        load_ids = self.coordinator.load_ids()
        first = next(iter(self.node2collection.values()))
        if not load_ids.intersection(first):
            super().schedule()
            return
        if not self._check_nodes_have_same_collection():
            self.log("**Different tests collected, aborting run**")
            return
        collection = self.collection = list(first)
        fan = [i for i, nodeid in enumerate(collection) if nodeid in load_ids]
        self.fanout = set(fan)
        self.pending[:] = [i for i in range(len(collection)) if i not in self.fanout]
        if self.maxschedchunk is None:
            self.maxschedchunk = len(collection)
        nodes: list[WorkerController] = self.nodes
        self.coordinator.plan_runs([collection[i] for i in fan],
                                   [str(n.gateway.id) for n in nodes])
        # The whole block at once: a worker runs an item only once the next one is queued.
        for node in nodes:
            self.node2pending[node].extend(fan)
            node.send_runtest_some(fan)
        if self.pending:
            if len(self.pending) < 2 * len(nodes):
                ring = cycle(nodes)
                for _ in range(len(self.pending)):
                    self._send_tests(next(ring), 1)
            else:
                per_node = len(self.pending) // len(nodes)
                chunk = max(min(per_node // 4, self.maxschedchunk), 2)
                for node in nodes:
                    self._send_tests(node, chunk)
        if not self.pending:
            for node in nodes:
                node.shutdown()

    def mark_test_complete(self, node: WorkerController, item_index: int,
                           duration: float = 0) -> None:
        super().mark_test_complete(node, item_index, duration)
        if item_index in self.fanout and self.collection is not None:
            self.coordinator.shard_complete(str(node.gateway.id), self.collection[item_index])

    def mark_test_pending(self, item: str) -> None:
        if self.collection is not None and self.collection.index(item) in self.fanout:
            self.log(f"not re-queuing fan-out load test {item}: a shard never runs twice")
            return
        super().mark_test_pending(item)

    def remove_node(self, node: WorkerController) -> str | None:
        """Fan-out shards are never handed to another worker (the coordinator fails or
        shrinks their load tests); ordinary items are re-queued as usual."""
        pending = self.node2pending.pop(node)
        if not pending:
            return None
        assert self.collection is not None
        crashitem: str | None = None
        if pending[0] not in self.fanout:
            crashitem = self.collection[pending.pop(0)]
        self.pending.extend(i for i in pending if i not in self.fanout)
        for other in self.node2pending:
            self.check_schedule(other)
        return crashitem


class ControllerPlugin:
    """Registered on the xdist controller: side channels, the fan-out scheduler, node loss."""

    def __init__(self, config: pytest.Config, session: NovaloadSession) -> None:
        self.config = config
        self.coordinator = Coordinator(config, session)

    @pytest.hookimpl
    def pytest_configure_node(self, node: WorkerController) -> None:
        channel = node.gateway.newchannel()
        node.workerinput["novaload_channel"] = channel
        node.workerinput["novaload_env"] = {k: os.environ[k] for k in TARGET_ENV
                                            if k in os.environ}
        self.coordinator.connect(node, channel)

    @pytest.hookimpl
    def pytest_xdist_make_scheduler(self, config: pytest.Config,
                                    log: Producer) -> LoadScheduling | None:
        if config.getvalue("dist") == "load":
            return FanoutScheduling(config, log, self.coordinator)
        return None

    @pytest.hookimpl
    def pytest_xdist_node_collection_finished(self, node: WorkerController,
                                              ids: Sequence[str]) -> None:
        dist = self.config.getvalue("dist")
        if dist == "load":
            return
        loads = sorted(self.coordinator.load_ids().intersection(ids))
        if loads:
            raise pytest.UsageError(
                f"--dist {dist} cannot run load tests ({len(loads)} collected, e.g. "
                f"{loads[0]}): pytest-novaload runs every load test on all workers at once "
                "and needs --dist load, the default of -n. Use -n N (or --dist load), "
                "deselect the load tests with -m 'not load', or run them without xdist (-n 0)")

    @pytest.hookimpl
    def pytest_testnodedown(self, node: WorkerController, error: object | None) -> None:
        self.coordinator.node_down(str(node.gateway.id), error)

    @pytest.hookimpl(tryfirst=True)  # before DSession tears the workers down
    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self.coordinator.close()
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.coordinator.interrupt()
