"""The controller side: moves every fan-out load test (a ``Fanout``) through its states and
does the I/O: side-channel messages, the barrier timer, the merge and ONE verdict (the live
progress line and --load-out's merged windows: ``live.LiveOutput``).

Thread-safe: execnet receiver threads deliver shard messages, the main thread schedules,
completes and reports, a timer thread enforces the barrier timeout. The controller judges
the merged measurements once (``judge``) and sends them, with that verdict, to every shard;
it reports from the result it already holds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pytest_novaload.gate.rules import Rule, parse_regressions
from pytest_novaload.metrics.timeline import Timeline, spans_of
from pytest_novaload.session import NovaloadSession, build_result
from pytest_novaload.thresholds import abort_check, judge
from pytest_novaload.xdist.fanout import (
    Cancellation,
    Fanout,
    Phase,
    why_not_started,
    worker_key,
)
from pytest_novaload.xdist.live import LiveOutput
from pytest_novaload.xdist.merge import ShardPart, Windows, fanout_extra, merge_parts
from pytest_novaload.xdist.wire import (
    Abort,
    Arrive,
    Cancel,
    Done,
    Go,
    LoadMeta,
    Merged,
    Message,
    Meta,
    Progress,
    Result,
    decode,
    encode,
)

if TYPE_CHECKING:
    import execnet

__all__ = ["Coordinator", "Reporter"]


def _rules(meta: LoadMeta) -> dict[str, tuple[Rule, ...]] | None:
    """The marker's regression rules of a load test (checked at collection on the worker)."""
    return parse_regressions(meta.regressions) if meta.regressions is not None else None


class Reporter(Protocol):
    """Logs a load test's one report (xdist/report.py does it through pytest's hooks)."""

    def report(self, fanout: Fanout) -> str | None:
        """Log the report, record the result; return why the session stops (-x), if it does."""


class Coordinator:
    """Controller state of every fan-out load test, in the order the scheduler sent them."""

    def __init__(self, session: NovaloadSession, reporter: Reporter) -> None:
        self.session = session
        self.reporter = reporter
        self.barrier_timeout = session.options.barrier_timeout
        self.meta: dict[str, LoadMeta] = {}
        self.runs: dict[str, Fanout] = {}
        self.order: list[Fanout] = []
        self.channels: dict[str, execnet.Channel] = {}
        self.down: set[str] = set()
        self._lock = threading.RLock()
        self.live = LiveOutput(session, self._warn)

    # -- wiring -----------------------------------------------------------------------------
    def connect(self, wid: str, channel: execnet.Channel) -> None:
        with self._lock:
            self.channels[wid] = channel
        channel.setcallback(lambda raw: self._receive(wid, raw))

    def load_ids(self) -> set[str]:
        with self._lock:
            return set(self.meta)

    def plan_runs(self, nodeids: Sequence[str], workers: Sequence[str]) -> None:
        """The scheduler sent these load tests to these workers, in this order."""
        with self._lock:
            for nodeid in nodeids:
                meta = self.meta[nodeid]
                run = Fanout(nodeid, meta, sorted(workers, key=worker_key))
                run.windows = Windows(Timeline(self.session.gate_keys(
                    meta.thresholds, _rules(meta)), spans_of(meta.executor)))
                self.runs[nodeid] = run
                self.order.append(run)

    def _send(self, wid: str, msg: Message) -> None:
        channel = self.channels.get(wid)
        if channel is None or wid in self.down:
            return
        with contextlib.suppress(OSError):
            channel.send(encode(msg))

    # -- messages from shards (receiver threads) --------------------------------------------
    def _receive(self, wid: str, raw: Any) -> None:
        try:
            msg = decode(raw)
            with self._lock:
                if isinstance(msg, Meta):
                    for nodeid, meta in msg.tests.items():
                        self.meta.setdefault(nodeid, meta)
                    return
                run = self.runs.get(msg.nodeid)
                if run is None:
                    if isinstance(msg, Arrive):
                        self._send(wid, Cancel(msg.nodeid, f"{msg.nodeid} is not a fan-out "
                                               "load test on this controller"))
                elif isinstance(msg, Arrive):
                    self._arrive(run, wid)
                elif isinstance(msg, Progress):
                    self._on_progress(run, wid, msg)
                elif isinstance(msg, Result):
                    self._on_result(run, wid, msg)
                elif isinstance(msg, Done):
                    self._on_done(run, wid, msg)
        except Exception as exc:  # never raise into execnet's receiver thread
            self._warn(f"pytest-novaload: bad side-channel message from {wid}: {exc!r}")

    def _arrive(self, run: Fanout, wid: str) -> None:
        if run.cancel is not None:
            self._send(wid, Cancel(run.nodeid, run.cancel.reason))
            return
        if run.phase is not Phase.BARRIER or wid not in run.nodes:
            self._send(wid, Cancel(run.nodeid, f"{run.nodeid}: worker '{wid}' arrived at a "
                                   "start barrier it is not part of"))
            return
        run.arrived[wid] = time.time()
        if run.timer is None:
            run.timer = threading.Timer(self.barrier_timeout, self._barrier_expired, (run,))
            run.timer.daemon = True
            run.timer.start()
        self._maybe_release(run)

    def _maybe_release(self, run: Fanout) -> None:
        if run.phase is not Phase.BARRIER or not run.nodes:
            return
        if not all(w in run.arrived for w in run.nodes):
            return
        if not all(r.phase is Phase.REPORTED for r in self.order[:self.order.index(run)]):
            return  # the previous verdict first: -x stops here, output stays in order
        if run.timer is not None:
            run.timer.cancel()
        run.ranks = {w: i for i, w in enumerate(run.nodes)}
        run.released = time.time()
        run.move(Phase.RUNNING)
        for w, rank in run.ranks.items():
            self._send(w, Go(run.nodeid, rank, run.world))

    def _barrier_expired(self, run: Fanout) -> None:
        with self._lock:
            if run.phase is not Phase.BARRIER:
                return
            missing = [w for w in run.nodes if w not in run.arrived]
            late = (f"worker(s) {', '.join(missing)} did not reach the start barrier"
                    if missing else "the previous load test's verdict did not come")
            self._cancel(run, f"{run.nodeid}: {late} within {self.barrier_timeout:g}s; no "
                              "shard ran. Raise --load-barrier-timeout if setup is that slow")

    def _cancel(self, run: Fanout, reason: str, *, cause: str | None = None,
                silent: bool = False) -> None:
        run.move(Phase.CANCELLED)
        run.cancel = Cancellation(reason, silent)
        run.cause = cause
        if run.timer is not None:
            run.timer.cancel()
        for w in run.arrived:
            self._send(w, Cancel(run.nodeid, reason))

    def _abort(self, run: Fanout, reason: str) -> None:
        if run.abort_reason is None:
            run.abort_reason = reason
        for w in run.missing():
            self._send(w, Abort(run.nodeid, reason))

    def _on_progress(self, run: Fanout, wid: str, msg: Progress) -> None:
        if run.phase is not Phase.RUNNING:
            return
        run.windows.add(msg.windows)
        self.live.stream(run, wid, msg.windows)
        run.live.latest[wid] = msg
        run.live.ticks[wid] = run.live.ticks.get(wid, 0) + 1
        self._check_abort(run)
        self.live.show(run)

    def _check_abort(self, run: Fanout) -> None:
        """abort_on_fail judged on every shard's windows merged (counts are exact, digests
        compacted) at most twice a second; a shard also judges its own numbers every second
        (gauges only there: summed windows say nothing of a gauge)."""
        now = time.monotonic()
        if run.abort_reason is not None or now - run.live.last_abort_check < 0.5:
            return
        run.live.last_abort_check = now
        reason = abort_check(run.meta.thresholds, run.windows.total,
                             time.time() - run.released, skip_gauges=True,
                             timeline=run.windows.timeline)
        if reason is not None:
            self._abort(run, f"{reason} (all {run.world} shards merged)")

    def _on_result(self, run: Fanout, wid: str, msg: Result) -> None:
        part = ShardPart(wid, msg.rank, msg.measured)
        run.results[wid] = part
        run.windows.add(msg.windows)
        self.live.stream(run, wid, msg.windows)
        if part.measured.aborted and run.abort_reason is None:
            self._abort(run, f"{part.measured.aborted} (shard {part.rank + 1}/{run.world}, "
                             f"worker '{wid}')")
        self._maybe_merge(run)

    def _on_done(self, run: Fanout, wid: str, msg: Done) -> None:
        run.done[wid] = msg
        if not msg.arrived:
            if run.phase is Phase.BARRIER:
                self._cancel(run, f"{run.nodeid}: the shard on worker '{wid}' "
                                  f"{why_not_started(msg.reports)}, so no shard ran",
                             cause=wid)
        elif run.phase is Phase.RUNNING and wid in run.missing():
            run.left[wid] = "failed before it sent its measurements"
            run.cause = wid
            self._abort(run, f"the shard on worker '{wid}' failed")
            self._maybe_merge(run)

    def _maybe_merge(self, run: Fanout) -> None:
        """Every shard's measurements are in (or given up on): merge them, judge them once,
        and send both to every shard that reported."""
        if run.phase is not Phase.RUNNING or run.missing():
            return
        run.move(Phase.MERGED)
        self.live.end()
        self.live.stream_rest(run)
        parts = sorted(run.results.values(), key=lambda p: p.rank)
        if not parts:
            return
        merged = merge_parts(parts, aborted=run.abort_reason)
        merged.interrupted = merged.interrupted or run.interrupted
        lost = run.lost()
        extra = fanout_extra(parts, lost=lost, lost_before_start=run.lost_before_start)
        failure = None
        if lost:
            failure = (f"{run.failure or 'a shard left'}; the measurements of the other "
                       f"{len(parts)} shard(s) are kept in summary.json")
        verdict = judge(run.meta.thresholds, merged.store, merged.duration,
                        aborted=merged.aborted, interrupted=merged.interrupted,
                        stages=merged.stages, timeline=run.windows.timeline)
        if run.meta.regressions is not None:
            extra["regressions"] = run.meta.regressions
        run.result = result = build_result(run.nodeid, run.meta.executor, merged, verdict,
                                           shards=run.world, extra=extra)
        self.session.apply_gate(result, run.meta.thresholds, _rules(run.meta),
                                run.windows.timeline)
        for w in run.results:
            self._send(w, Merged(run.nodeid, merged, result.verdict, run.world, result.extra,
                                 failure))

    def _warn(self, text: str) -> None:
        if self.session.write is not None:
            with contextlib.suppress(Exception):
                self.session.write(text + "\n")

    # -- main thread: scheduler events ------------------------------------------------------
    def shard_complete(self, wid: str, nodeid: str) -> None:
        """xdist says worker ``wid`` finished its item ``nodeid`` (its done message is in)."""
        with self._lock:
            run = self.runs.get(nodeid)
            if run is None:
                return
            run.complete.add(wid)
        self._maybe_report(run)

    def node_down(self, wid: str, error: object | None) -> None:
        """A worker crashed or left. Its current load test fails (the other shards stop and
        keep their measurements); later load tests run without it."""
        touched: list[Fanout] = []
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
                if run.phase is Phase.RUNNING:
                    if wid not in run.results:
                        self._abort(run, f"worker '{wid}' {why}")
                    self._maybe_merge(run)
                elif run.phase is Phase.BARRIER:
                    self._cancel(run, run.failure)
        for run in touched:
            self._maybe_report(run)

    def stop_pending(self, reason: str) -> None:
        """The session stops (-x/--maxfail): load tests that have not started never will."""
        with self._lock:
            for run in self.order:
                if run.phase is Phase.BARRIER:
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
            running = [r for r in self.order if r.phase is Phase.RUNNING]
            for run in running:
                run.interrupted = True
                self._abort(run, "interrupted (Ctrl-C)")
            running += [r for r in self.order if r.phase is Phase.MERGED]
        deadline = time.monotonic() + grace
        while running and time.monotonic() < deadline:
            with self._lock:
                if all(r.phase is not Phase.RUNNING for r in running):
                    break
            time.sleep(0.05)
        for run in running:
            with self._lock:
                if run.phase is Phase.RUNNING:
                    for w in run.missing():  # gone or silent: merge what did arrive
                        run.left[w] = "sent nothing before the interrupt"
                    self._maybe_merge(run)
                result = run.result if run.phase is Phase.MERGED else None
                if run.phase is Phase.MERGED:
                    run.move(Phase.REPORTED)
            if result is not None:
                self.session.record(result, run.timeseries())

    # -- main thread: the one report per load test ------------------------------------------
    def _maybe_report(self, run: Fanout) -> None:
        with self._lock:
            if not run.ready_to_report():
                return
            run.move(Phase.REPORTING)
        stop = None
        if run.cancel is None or not run.cancel.silent:
            stop = self.reporter.report(run)
        with self._lock:
            run.move(Phase.REPORTED)
            if stop is not None:
                self.stop_pending(stop)
            later = self.order[self.order.index(run) + 1:]
            if later:
                self._maybe_release(later[0])
