"""Generator health: event-loop lag, garbage-collection pauses, CPU, and a verdict on whether
the latencies measured can be trusted, and if not, why.

Verdicts, first that applies: the generator ran out of file descriptors or ports; ``saturated``
(all of its CPU used); ``loop stalls`` by garbage collection; ``planned burst`` (the lag came
while the plan itself started many VUs or iterations at once, and the loop kept up otherwise:
load the plan asked for, not a generator that cannot keep up); ``loop stalls`` (lag with CPU
left, not explained by the plan's starts); ``ok``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["BURST_MIN_STARTS", "PROBE_S", "STALL_MS", "GeneratorHealth", "loop_name",
           "nofile_limit", "resource_verdict"]

#: event-loop lag p99 above which latencies include the generator's own delay
STALL_MS = 50.0
#: starts within one lag probe (0.1 s) that make a burst (1,000 a second and up), when they
#: are also BURST_FACTOR times the run's usual starts per probe (a steady open-model rate is
#: the load itself, not a burst)
BURST_MIN_STARTS = 100
BURST_FACTOR = 4
#: probes after a burst whose lag is still the burst's: VUs started together run their first
#: iterations over about a second (executors.base.StartPacer: longer when the loop is busy)
BURST_TAIL = 10
_MAX_SAMPLES = 100_000
#: the lag probe's period (LoadRunner._sample): a sample spans about PROBE_S plus its lag
PROBE_S = 0.1


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class GeneratorHealth:
    """The lag probe's samples (each with the plan's starts since the previous one), GC
    pauses, and the summary with its verdict. ``starts`` counts the VUs and iterations the
    plan has started so far (VUs of the closed executors, arrival-rate iterations)."""

    def __init__(self, starts: Callable[[], int] | None = None) -> None:
        self.lags: list[float] = []
        self.starts: list[int] = []     # the plan's starts in each sample's probe interval
        self.gc_max_ms = 0.0
        self.gc_total_ms = 0.0
        self._gc_start = 0.0
        self._count = starts
        self._seen = 0

    def lag(self, ms: float, started: int | None = None) -> None:
        """One probe: ``ms`` of lag; ``started`` starts since the last probe (default: read
        from the ``starts`` counter)."""
        if started is None:
            total = self._count() if self._count is not None else 0
            started, self._seen = total - self._seen, total
        if len(self.lags) < _MAX_SAMPLES:
            self.lags.append(max(ms, 0.0))
            self.starts.append(max(started, 0))

    def gc_event(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif self._gc_start:
            ms = (time.perf_counter() - self._gc_start) * 1000.0
            self.gc_total_ms += ms
            self.gc_max_ms = max(self.gc_max_ms, ms)

    def _bursts(self) -> tuple[list[bool], list[bool]]:
        """Per sample: (was its probe a burst of the plan's starts, did its lag come in one or
        in the BURST_TAIL probes after one)."""
        starts = self.starts
        if not starts:
            return [], []
        usual = sorted(starts)[len(starts) // 2]
        floor = max(BURST_MIN_STARTS, BURST_FACTOR * usual)
        burst = [n >= floor for n in starts]
        within, last = [], -BURST_TAIL - 1
        for i, b in enumerate(burst):
            if b:
                last = i
            within.append(i - last <= BURST_TAIL)
        return burst, within

    def summary(self, cpu_s: float, wall_s: float,
                resources: tuple[int, str] = (0, "")) -> dict[str, Any]:
        """The health figures and verdict; ``resources``: (count, first example) of calls the
        generator could not make for want of file descriptors or ports (its own failure)."""
        p99 = _p99(self.lags)
        mx = max(self.lags, default=0.0)
        cpu = cpu_s / wall_s if wall_s > 0 else 0.0
        burst_probe, in_burst = self._bursts()
        burst_lags = [lag for lag, b in zip(self.lags, in_burst, strict=True) if b]
        steady_p99 = _p99([lag for lag, b in zip(self.lags, in_burst, strict=True) if not b])
        burst: dict[str, Any] = {}
        if burst_lags:
            n = sum(s for s, b in zip(self.starts, burst_probe, strict=True) if b)
            burst = {"burst_starts": n, "burst_lag_p99_ms": round(_p99(burst_lags), 2),
                     "steady_lag_p99_ms": round(steady_p99, 2),
                     "burst_peak_starts_per_s": round(max(
                         s / (PROBE_S + lag / 1000.0)
                         for s, lag in zip(self.starts, self.lags, strict=True)))}
        if cpu > 0.95 and wall_s >= 3.0:  # a sub-second run is all start-up: not a verdict
            verdict = ("saturated: the generator used all of its CPU, so latencies include its "
                       "own delay; add shards with -n N or lower the load")
        elif p99 > STALL_MS and self.gc_max_ms > 0.5 * p99:
            verdict = (f"loop stalls: garbage collection paused the generator up to "
                       f"{self.gc_max_ms:.0f} ms (event-loop lag p99 {p99:.0f} ms); the slowest "
                       "latencies may include that pause")
        elif p99 > STALL_MS and burst_lags and steady_p99 <= STALL_MS:
            verdict = (f"planned burst: the plan started {burst['burst_starts']:,} VUs or "
                       f"iterations at once (up to {burst['burst_peak_starts_per_s']:,}/s), "
                       f"event-loop lag p99 {burst['burst_lag_p99_ms']:.0f} ms then and "
                       f"{steady_p99:.1f} ms otherwise: load the plan asked for, not a "
                       "generator that cannot keep up; latencies measured during the burst "
                       "include the generator's delay (ramp the stage over longer, or add "
                       "shards with -n N, if that is not the load you meant)")
        elif p99 > STALL_MS and burst_lags:
            verdict = (f"loop stalls: event-loop lag p99 {p99:.0f} ms at {cpu * 100:.0f}% CPU, "
                       f"and {steady_p99:.0f} ms outside the plan's bursts of starts "
                       f"({burst['burst_starts']:,} VUs or iterations at once): the generator "
                       "does not keep up between them either (blocking calls in the scenario, "
                       "more connections than one process opens in time, a busy machine); "
                       "the slowest latencies may include that delay")
        elif p99 > STALL_MS:
            verdict = (f"loop stalls: event-loop lag p99 {p99:.0f} ms at {cpu * 100:.0f}% CPU, "
                       "not explained by the plan's starts (blocking calls in the scenario, "
                       "many connections opened at once); the slowest latencies may include "
                       "that delay")
        else:
            verdict = "ok"
        shortage, example = resources
        if shortage:
            verdict = resource_verdict(shortage, example)
        return {
            "loop_lag_p99_ms": round(p99, 2), "loop_lag_max_ms": round(mx, 2),
            "gc_pause_max_ms": round(self.gc_max_ms, 2),
            "gc_pause_total_ms": round(self.gc_total_ms, 1),
            "cpu": round(cpu, 3), "python": sys.version.split()[0],
            "loop": loop_name(),
            "saturated": verdict.startswith("saturated"),
            "stalled": verdict.startswith("loop stalls"),
            "planned_burst": verdict.startswith("planned burst"),
            "verdict": verdict,
            **burst,
            **({"resource_errors": shortage, "nofile_limit": nofile_limit()}
               if shortage else {}),
        }


def nofile_limit() -> int:
    """The soft RLIMIT_NOFILE in force (file descriptors this process may open), -1 unknown."""
    try:
        import resource

        return int(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    except (ImportError, OSError, ValueError):
        return -1


def resource_verdict(count: int, example: str) -> str:
    """The generator line when it ran out of file descriptors or ephemeral ports."""
    if "assign requested address" in example.lower():
        return (f"out of ephemeral ports: {count} calls could not be made ({example[:120]}); "
                "this is the generator's limit, not the server's failure: reuse connections "
                "(keep_alive), spread the load with -n N, or give source addresses "
                "ws={'local_addrs': ['127.0.0.2', ...]}")
    return (f"out of file descriptors: {count} calls could not be made ({example[:120]}); "
            f"the limit in force is {nofile_limit()} (ulimit -n); this is the generator's "
            "limit, not the server's failure: raise it (ulimit -n 65535), or spread the load "
            "with -n N")


def loop_name() -> str:
    """The event loop runs use: "uvloop" when installed (and not turned off), else "asyncio"."""
    return "uvloop" if _uvloop_active() else "asyncio"


def _uvloop_active() -> bool:
    if os.environ.get("NOVALOAD_LOOP", "") == "asyncio":
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True
