"""What the controller shows and streams while fan-out load tests run, from every shard's
numbers merged: the live progress line (one per round) and ``--load-out``'s windows (each
second once, when every running shard has sent it).

Both are best effort: a terminal or an output that fails never breaks the run. The
``Coordinator`` calls it under its lock. No pytest, xdist or execnet import.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from pytest_novaload.engine.runner import Snapshot
from pytest_novaload.engine.stages import stage_ends
from pytest_novaload.reporting.terminal import LiveProgress
from pytest_novaload.session import NovaloadSession
from pytest_novaload.xdist.fanout import Fanout

__all__ = ["LiveOutput"]


class LiveOutput:
    """The merged live view of the fan-out load tests: at most one progress line at a time."""

    def __init__(self, session: NovaloadSession, warn: Callable[[str], None]) -> None:
        self.session = session
        self.warn = warn
        self._progress: LiveProgress | None = None

    # -- outputs (--load-out): the merged numbers, one series set per test ------------------
    def stream(self, run: Fanout, wid: str, windows: Sequence[tuple[int, Any]]) -> None:
        """Send each second once, when every running shard has sent its window of it."""
        outs = self.session.outputs
        if not outs.prom:
            return
        if windows:
            run.delivered[wid] = max(run.delivered.get(wid, -1), *(int(t) for t, _ in windows))
        running = run.running_shards()
        if running and all(w in run.delivered for w in running):
            self._emit(run, min(run.delivered[w] for w in running))

    def stream_rest(self, run: Fanout) -> None:
        """The run is merged: the seconds not sent yet, then the end of its series."""
        outs = self.session.outputs
        if outs.prom:
            self._emit(run, None)
            outs.end_test(run.nodeid)

    def _emit(self, run: Fanout, upto: int | None) -> None:
        outs = self.session.outputs
        now = time.time()
        for t in sorted(run.windows.by_second):
            if t <= run.streamed or (upto is not None and t > upto):
                continue
            run.streamed = t
            with contextlib.suppress(Exception):  # an output never breaks the run
                outs.window(run.nodeid, t, run.windows.by_second[t].copy(),
                            end=min(t + 1.0, now))
        for text in outs.take_notices():
            self.warn(f"pytest-novaload: {text}")

    # -- progress ---------------------------------------------------------------------------
    def show(self, run: Fanout) -> None:
        """One line per round: once every running shard has sent this second's numbers."""
        running = run.running_shards()
        tick = min(run.live.ticks.get(w, 0) for w in running) if running else 0
        if tick <= run.live.shown:
            return
        run.live.shown = tick
        if self._progress is None or self._progress.nodeid != run.nodeid:
            self._progress = LiveProgress.create(
                self.session.write, run.nodeid, mode=self.session.options.progress,
                isatty=self.session.isatty, suffix=f"  [{run.world} shards]",
                width=self.session.width)
        if self._progress is None:
            return
        latest = list(run.live.latest.values())
        snap = Snapshot(elapsed=max(p.elapsed for p in latest),
                        planned=max(p.planned for p in latest),
                        vus=sum(p.vus for p in latest), vus_max=sum(p.vus_max for p in latest),
                        iterations=sum(p.iterations for p in latest),
                        store=run.windows.total, stage_ends=stage_ends(run.meta.executor))
        with contextlib.suppress(Exception):
            self._progress.show(snap)

    def end(self) -> None:
        """The line of the test that just merged is finished (its summary follows)."""
        if self._progress is not None:
            with contextlib.suppress(Exception):
                self._progress.end()
        self._progress = None
