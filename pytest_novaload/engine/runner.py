"""Runs one load (one shard of it) on an event loop the plugin owns.

``LoadRunner.run()`` is synchronous: it creates the loop (uvloop when installed), drives the
executor, samples once a second (VU gauge, time series, abort_on_fail thresholds, progress,
generator health) and returns the ``Measurements`` even when the run is interrupted or
aborted, so nothing measured is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_novaload.allowlist import Allowlist
from pytest_novaload.engine.executors import ExecutorConfig
from pytest_novaload.engine.gc_policy import RunGc
from pytest_novaload.engine.health import (
    PROBE_S,
    GeneratorHealth,
    loop_name,
    nofile_limit,
    resource_verdict,
)
from pytest_novaload.engine.runtime import ErrorLog, ExecutionState, ScenarioMix
from pytest_novaload.engine.stages import stage_ends
from pytest_novaload.metrics import MetricStore
from pytest_novaload.metrics.errors import GENERATOR
from pytest_novaload.metrics.spool import LineSpool
from pytest_novaload.metrics.timeline import StageStores, Timeline, spans_of
from pytest_novaload.redact import Redactor
from pytest_novaload.thresholds import Threshold, abort_check

__all__ = ["GeneratorHealth", "LoadRunner", "Measurements", "Snapshot", "loop_name",
           "new_event_loop", "nofile_limit", "resource_verdict", "window_lines"]

Progress = Callable[["Snapshot"], None]
WindowSink = Callable[[int, MetricStore, float], None]
"""Told each closed window: (unix second it started in, the window, unix time it closed)."""


@dataclass
class Snapshot:
    """What the runner knows once a second, for progress lines."""

    elapsed: float
    planned: float
    vus: int
    vus_max: int
    iterations: int
    store: MetricStore
    stage_ends: tuple[float, ...] = ()   # when each stage ends; () for plans without stages


@dataclass
class Measurements:
    """Everything one run (one shard, or every shard merged) measured."""

    store: MetricStore
    errors: ErrorLog
    started: float          # unix time
    finished: float
    duration: float         # seconds of test time, used for counter rates
    timeseries: Iterable[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    aborted: str | None = None          # the reason, when abort_on_fail stopped the run
    generator: dict[str, Any] = field(default_factory=dict)
    crashed: Exception | None = None    # the run itself failed; what it measured is kept
    stages: StageStores | None = None   # every sample of each stage (stage-scoped thresholds)
    timeline: Timeline | None = None    # per-second numbers of the judged keys (this process)


def _import_clients() -> None:
    """Import the protocol clients before the clock starts: a VU's first ``vu.http`` /
    ``vu.ws`` / ``vu.db`` would otherwise import them (httpx, websockets, asyncpg) in the
    middle of the load, stalling every VU's start by 150-270 ms (measured), after which the
    iterations due meanwhile all start at once. Once per process; a missing optional
    dependency is reported when a VU uses that client, as before."""
    import importlib

    for name in ("pytest_novaload.clients.http", "pytest_novaload.clients.websocket",
                 "pytest_novaload.clients.postgres"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (measured +16% raw HTTP, +66% asyncpg), else asyncio's loop."""
    if os.environ.get("NOVALOAD_LOOP", "") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


class LoadRunner:
    """One run of ``plan`` (one shard of it) with ``scenario``; thresholds are only watched
    for abort_on_fail (``judge`` decides the run once it is over)."""

    def __init__(self, plan: ExecutorConfig, scenario: Any, *, env: Mapping[str, str],
                 client_options: Mapping[str, Any] | None = None,
                 thresholds: tuple[Threshold, ...] = (), rank: int = 0, world: int = 1,
                 store: MetricStore | None = None, progress: Progress | None = None,
                 timeseries_keys: tuple[str, ...] = (), test_id: str = "",
                 keep_windows: bool = False, on_window: WindowSink | None = None,
                 allowlist: Allowlist | None = None, redactor: Redactor | None = None,
                 interval_keys: tuple[str, ...] = ()) -> None:
        """``allowlist``: the hosts the clients may load besides loopback (default: loopback
        only); ``redactor``: hides secrets in error examples (default: the env's);
        ``interval_keys``: the metric keys whose per-second numbers the gate keeps."""
        spans = spans_of(plan.describe())
        self.plan = plan.shard(rank, world)
        self.mix = ScenarioMix(scenario)
        self.store = store if store is not None else MetricStore()
        self._redactor = redactor or Redactor.from_env(env)
        self.gc: RunGc | None = None   # the run's collector policy, while it runs
        self.rt = ExecutionState(self.store, self.mix, dict(env),
                                 {k: dict(v) for k, v in (client_options or {}).items()},
                                 rank=rank, world=world,
                                 errors=ErrorLog(self._redactor),
                                 allowlist=allowlist or Allowlist())
        self.rt.on_fatal = self.request_abort
        self.rt.reserve(self.plan.initial_vus(rank, world))
        self.abort_thresholds = tuple(t for t in thresholds if t.abort_on_fail)
        self.progress = progress
        self._stage_ends = stage_ends(self.plan.describe())
        self.timeseries_keys = timeseries_keys
        self.test_id = test_id
        self.keep_windows = keep_windows
        self.on_window = on_window
        self._windows: list[tuple[int, dict[str, Any]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._abort_reason: str | None = None
        self._lock = threading.Lock()
        self._wall_start = time.time()
        self._t_start = time.perf_counter()
        self._window_start: float | None = None
        self._lines = LineSpool()   # redacted, on disk: a long run's memory stays flat
        # Stage boundaries cut the open second into pieces, each in one stage (0: none).
        self.timeline = Timeline(interval_keys, spans)
        self.stages = StageStores(spans) if spans else None
        self._load_t0: float | None = None
        self._piece_start: float | None = None
        self._pieces: list[tuple[MetricStore, int, float]] = []

    # -- control from other threads (xdist side channel) ------------------------------------
    def request_abort(self, reason: str) -> None:
        """Stop the run as soon as possible (thread-safe); iterations are cancelled."""
        with self._lock:
            if self._abort_reason is None:
                self._abort_reason = reason
            loop, main = self._loop, self._main
        if loop is not None and main is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(main.cancel)

    # -- the run ------------------------------------------------------------------------------
    def take_windows(self) -> list[tuple[int, dict[str, Any]]]:
        """The per-second windows closed since the last call (``keep_windows``), handed over:
        the xdist worker streams them to the controller."""
        taken, self._windows = self._windows, []
        return taken

    def run(self) -> Measurements:
        _import_clients()
        started = self._wall_start = time.time()
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        rt = self.rt
        self.health = GeneratorHealth(starts=lambda: rt.plan_starts)
        interrupted = False
        crashed: Exception | None = None
        run_gc = self.gc = RunGc(lambda: rt.warm, self.health.gc_event)
        run_gc.start()
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                self._loop = runner.get_loop()
                try:
                    runner.run(self._run())
                except asyncio.CancelledError:
                    pass  # aborted through request_abort
                except Exception as exc:  # a bug or broken setup: keep what was measured
                    crashed = exc
                finally:
                    run_gc.mute()
                    with contextlib.suppress(BaseException):
                        runner.run(self.rt.aclose())
        except KeyboardInterrupt:
            interrupted = True
        finally:
            self._loop = None
            run_gc.stop()
        duration = max(time.perf_counter() - t0, 1e-9)
        self._flush_window()
        cpu = time.process_time() - cpu0
        return Measurements(
            store=self.store, errors=self.rt.errors, started=started, finished=time.time(),
            duration=duration, timeseries=self._lines, interrupted=interrupted,
            aborted=self._abort_reason,
            generator=self.health.summary(cpu, duration, resources=self.rt.errors.of(GENERATOR)),
            crashed=crashed, stages=self.stages, timeline=self.timeline)

    async def _run(self) -> None:
        self._main = asyncio.current_task()
        self._t_start = time.perf_counter()
        # The first time-series window starts with the loop, not before the GC set-up: under
        # a loaded machine that set-up can take a second, which would skip a second's line.
        self._window_start = self._piece_start = self._load_t0 = time.time()
        self.timeline.t0 = self._load_t0
        if self._abort_reason is not None:
            return
        helpers = [asyncio.ensure_future(self._sample()), asyncio.ensure_future(self._tick())]
        try:
            await self.plan.run(self.rt)
        except asyncio.CancelledError:
            if self._abort_reason is None:
                raise  # Ctrl-C: asyncio.Runner turns this into KeyboardInterrupt
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _sample(self) -> None:
        """Probe event-loop lag ten times a second: a busy or stalled generator shows here
        first. Timed with perf_counter, not loop.time() (whole milliseconds under uvloop):
        each sample is the larger of how late the 0.1 s timer fired (beyond the loop clock's
        granularity) and how long a callback made ready then waited for its turn."""
        loop = asyncio.get_running_loop()
        probe = PROBE_S
        slack = 1e-3 if type(loop).__module__.startswith("uvloop") else 0.0  # ms timers
        clock = time.perf_counter
        while True:
            before = clock()
            await asyncio.sleep(probe)
            woke = clock()
            loop.call_soon(self._ready_probe, woke - before - probe - slack, woke)

    def _ready_probe(self, late: float, queued: float) -> None:
        self.health.lag(max(late, time.perf_counter() - queued) * 1000.0)

    async def _tick(self) -> None:
        """Once a second, on the wall clock's second boundaries: close the time-series window
        (so each line covers the unix second it is labelled with), check abort_on_fail
        thresholds and show progress."""
        while True:
            # The second after the open window's start, not after now: a slow start or a
            # stall past a boundary closes the late window at once instead of skipping a second.
            start = self._window_start if self._window_start is not None else self._wall_start
            boundary = math.floor(start) + 1.0
            cut = self._next_cut(boundary)
            target = cut if cut is not None else boundary
            while (left := target - time.time()) > 0:  # timers may wake a hair early
                await asyncio.sleep(left)
            if cut is not None:
                self._cut(cut)
                continue
            self._flush_window(boundary)
            self._check_aborts()
            if self.progress is not None:
                with contextlib.suppress(Exception):
                    self.progress(self.snapshot())

    def snapshot(self) -> Snapshot:
        its = self.store.aggregate("iterations")
        now = time.perf_counter()
        return Snapshot(elapsed=now - self._t_start,
                        planned=self.plan.planned_duration(), vus=self.rt.active,
                        vus_max=self.rt.vus_max, iterations=int(its.value("count")),
                        store=self.store, stage_ends=self._stage_ends)

    def _check_aborts(self) -> None:
        if not self.abort_thresholds or self._abort_reason is not None:
            return
        # A shard leaves window thresholds to the controller (on every shard merged).
        reason = abort_check(self.abort_thresholds, self.store,
                             time.perf_counter() - self._t_start, stages=self.stages,
                             timeline=None if self.keep_windows else self.timeline)
        if reason is not None:
            self.request_abort(reason)

    def _stage_at(self, a: float, b: float) -> int:
        """The stage (1-based; 0 for none) running in the middle of [a, b] (unix times)."""
        if self._load_t0 is None or self.stages is None:
            return 0
        mid = (a + b) / 2.0 - self._load_t0
        for span in self.stages.spans:
            if span.start <= mid < span.end:
                return span.index
        return 0

    def _next_cut(self, boundary: float) -> float | None:
        """The first stage end strictly inside the open piece and before ``boundary``."""
        if self.stages is None or self._load_t0 is None or self._piece_start is None:
            return None
        for span in self.stages.spans:
            at = self._load_t0 + span.end
            if self._piece_start + 1e-3 < at < boundary - 1e-3:
                return at
        return None

    def _cut(self, at: float) -> None:
        """A stage ends inside the open second: what was measured since the last cut is a
        piece of that second in the stage that ended (two small dict walks, once a stage)."""
        start = self._piece_start if self._piece_start is not None else at
        self._pieces.append((self.store.roll(), self._stage_at(start, at), max(at - start, 0.0)))
        self._piece_start = at

    def _flush_window(self, boundary: float | None = None) -> None:
        """Close the current time-series window, labelled with the unix second it started in;
        the next window starts at ``boundary`` (a whole second), or now for the last one."""
        now = time.time()
        start: float = self._window_start if self._window_start is not None else self._wall_start
        self._window_start = boundary if boundary is not None else now
        piece_start = self._piece_start if self._piece_start is not None else start
        last = self.store.roll()
        pieces = [*self._pieces, (last, self._stage_at(piece_start, now),
                                  max(now - piece_start, 0.0))]
        self._pieces = []
        self._piece_start = self._window_start
        if len(pieces) == 1:
            window = last
        else:
            window = MetricStore()
            for piece, _, _ in pieces:  # in time order: VU gauges follow, never add up
                window.merge(piece, later=True)
        t = int(start)
        self._lines.extend(self._redactor.redact_obj(
            window_lines(window, t, self.test_id, self.timeseries_keys,
                         length=max(now - start, 1e-3))))
        for piece, stage, length in pieces:
            self.timeline.add(t, piece, stage=stage, length=length)
            if stage and self.stages is not None:
                self.stages.add(stage, piece, length)
            if self.keep_windows:
                self._windows.append((t, {**piece.to_dict(), "stage": stage,
                                          "length": length}))
        if self.on_window is not None:
            with contextlib.suppress(Exception):  # an output never breaks the load
                self.on_window(t, window, now)


def window_lines(window: MetricStore, t: int, test_id: str,
                 keys: tuple[str, ...] = (), *, length: float = 1.0) -> list[dict[str, Any]]:
    """One time-series line per metric (and per threshold sub-metric) for one second;
    ``length`` is how much of that second the window covered (rates are per second)."""
    from pytest_novaload.metrics import parse_metric_key

    lines: list[dict[str, Any]] = []
    wanted: list[tuple[str, str, dict[str, str]]] = [(n, n, {}) for n in window.names()]
    for key in keys:
        name, filters = parse_metric_key(key)
        if filters and name in window:
            wanted.append((key, name, filters))
    for key, name, filters in wanted:
        series = window.series(name)
        if not series:
            continue
        sink = window.aggregate(name, filters or None)
        if sink.empty:
            continue
        line: dict[str, Any] = {"t": t, "test": test_id, "metric": key}
        line.update({k: v for k, v in sink.stats(length).items() if k != "type"})
        if sink.kind == "trend":
            line["rate"] = round(line.get("count", 0) / length, 3)
            line["errors"] = sum(
                int(s.value("count")) for tags, s in series.items()
                if _is_error(tags) and all((k, v) in tags for k, v in filters.items()))
        lines.append(line)
    return lines


def _is_error(tags: tuple[tuple[str, str], ...]) -> bool:
    return any((k == "expected_response" and v == "false") or k == "error" for k, v in tags)
