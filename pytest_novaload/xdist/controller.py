"""The controller side: every fan-out load test's barrier, ranks, merge and ONE report.

Thread-safe: execnet receiver threads deliver shard messages, the main thread schedules,
completes and emits reports, a timer thread enforces the barrier timeout.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import execnet
import pytest
from xdist.workermanage import WorkerController

from pytest_novaload.engine.runner import Snapshot, window_lines
from pytest_novaload.metrics import MetricStore
from pytest_novaload.reporting import terminal
from pytest_novaload.reporting.model import RunResult, threshold_keys
from pytest_novaload.session import NovaloadSession, build_result, report_properties
from pytest_novaload.thresholds import Threshold, evaluate
from pytest_novaload.xdist.merge import merge_parts
from pytest_novaload.xdist.wire import ShardPart, output_to_wire, threshold_from_wire


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

