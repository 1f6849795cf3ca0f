"""Pure stage plans: how many VUs, or how many iterations per second, at time ``t``.

Nothing here sleeps or touches a loop. Executors follow these plans with a clock, and unit tests
check them with plain numbers (k6 ``lib/executor`` semantics: targets ramp linearly from the
previous stage's target over the stage's duration).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_novaload.clients._options import shown


@dataclass(frozen=True)
class Stage:
    """Ramp linearly to ``target`` over ``duration`` seconds."""

    duration: float
    target: float
    name: str | None = None
    """``("5m", 10000, "peak")``: thresholds may judge it alone, ``{stage:peak}``."""


@dataclass(frozen=True)
class Ramp:
    """A piecewise-linear function of time: starts at ``start``, then follows ``stages``."""

    start: float
    stages: tuple[Stage, ...]

    @property
    def total(self) -> float:
        return sum(s.duration for s in self.stages)

    def value(self, t: float) -> float:
        """The planned value at ``t`` seconds after the start (held after the last stage)."""
        prev = self.start
        elapsed = 0.0
        for s in self.stages:
            if t < elapsed + s.duration:
                frac = (t - elapsed) / s.duration if s.duration > 0 else 1.0
                return prev + (s.target - prev) * frac
            elapsed += s.duration
            prev = s.target
        return prev

    def peak(self) -> float:
        return max([self.start, *(s.target for s in self.stages)])

    def integral(self, t0: float, t1: float) -> float:
        """Area under the ramp between ``t0`` and ``t1`` (iterations for a rate ramp)."""
        if t1 <= t0:
            return 0.0
        area = 0.0
        prev = self.start
        elapsed = 0.0
        for s in self.stages:
            a, b = elapsed, elapsed + s.duration
            lo, hi = max(a, t0), min(b, t1)
            if hi > lo and s.duration > 0:
                va = prev + (s.target - prev) * (lo - a) / s.duration
                vb = prev + (s.target - prev) * (hi - a) / s.duration
                area += (va + vb) / 2 * (hi - lo)
            elapsed = b
            prev = s.target
        if t1 > elapsed:
            area += prev * (t1 - max(t0, elapsed))
        return area


def share(total: int, rank: int, world: int) -> int:
    """Shard ``rank``'s part of ``total`` over ``world`` shards: 3 over 2 is 2 + 1, never 2 + 2.

    VU number j (0-based) belongs to shard j % world: k6's striping of VUs over equal
    execution segments, so a shard's count follows the whole count VU by VU.
    """
    base, rest = divmod(total, world)
    return base + (1 if rank < rest else 0)


def ramping_vus_steps(ramp: Ramp, *, rank: int = 0,
                      world: int = 1) -> list[tuple[float, int]]:
    """``[(t, vus), ...]``: from offset ``t`` (seconds) on, ``vus`` VUs are planned.

    k6's raw execution steps (``getRawExecutionSteps``). Ramping up from a to b, VU number v
    starts when the linear ramp reaches v; ramping down, the count goes from v to v - 1 when
    the ramp reaches v - 1. So the plan is the ramp rounded towards the stage's starting
    value: a VU is never stopped before the plan is a whole VU below it. A 0-s stage jumps,
    a stage whose target is the current count holds. Every step changes the count (two may
    share an offset). A shard's plan is the whole plan through ``share``, so the shards add
    up to the whole plan at every instant. The end of the stages is not a step: the
    executor stops every VU there (graceful_stop).
    """
    steps: list[tuple[float, int]] = [(0.0, share(int(ramp.start), rank, world))]

    def add(t: float, vus: int) -> None:
        mine = share(vus, rank, world)
        if mine != steps[-1][1]:
            steps.append((t, mine))

    level, t_end = int(ramp.start), 0.0
    for stage in ramp.stages:
        duration, target = stage.duration, int(stage.target)
        t_end += duration
        if target == level:
            continue
        if duration <= 0:
            add(t_end, target)
        elif target > level:
            for v in range(level + 1, target + 1):
                add(t_end - duration * (target - v) / (target - level), v)
        else:
            for v in range(level, target, -1):
                add(t_end - duration * (v - 1 - target) / (level - target), v - 1)
        level = target
    return steps


def ramping_vus_allowed(steps: Sequence[tuple[float, int]], graceful_ramp_down: float,
                        end: float) -> list[tuple[float, int]]:
    """``[(t, vus), ...]``: VUs allowed to run, the planned ones plus those finishing.

    A VU the plan removes at t may finish its iteration until t + graceful_ramp_down (and is
    reused if the plan wants it back meanwhile); VUs are interrupted from the highest number
    down, so one keeps running while any VU above it is in its grace. ``end`` (the stages'
    total + graceful_stop) is where every VU is gone: k6's ``GetExecutionRequirements``.
    The executor follows the same rule with a clock; this is its pure form for the tests.
    """
    grace: dict[int, float] = {}          # VU number (1-based) -> end of its grace
    heap: list[int] = []                  # -VU numbers in grace (lazy deletion)
    times = sorted({t for t, _ in steps} | {t + graceful_ramp_down for t, _ in steps})
    out: list[tuple[float, int]] = []
    planned, i = 0, 0
    for now in times:
        if now >= end:
            break
        while i < len(steps) and steps[i][0] <= now:
            vus = steps[i][1]
            for n in range(vus + 1, planned + 1):      # removed: its grace starts
                grace[n] = now + graceful_ramp_down
                heapq.heappush(heap, -n)
            for n in range(planned + 1, vus + 1):      # wanted back: running again
                grace.pop(n, None)
            planned, i = vus, i + 1
        while heap and grace.get(-heap[0], now) <= now:   # top-down interruption
            grace.pop(-heapq.heappop(heap), None)
        allowed = max(planned, -heap[0] if heap else 0)
        if not out or out[-1][1] != allowed:
            out.append((now, allowed))
    if not out or out[-1][1] != 0:
        out.append((end, 0))
    return out


def vus_at(ramp: Ramp, t: float) -> int:
    """Whole VUs planned at ``t``: the count of the last k6 step at or before ``t``."""
    vus = 0
    for offset, n in ramping_vus_steps(ramp):
        if offset > t:
            break
        vus = n
    return vus


def arrival_times(ramp: Ramp, time_unit: float, end: float | None = None) -> Iterator[float]:
    """Start offsets (seconds) of iterations for an arrival-rate plan.

    The ramp gives iterations per ``time_unit``. The n-th iteration starts when the integral of
    the rate reaches n (k6's ramping-arrival-rate), so a constant rate of 10/s starts at 0.0,
    0.1, 0.2, ... Starts are a pure function of the plan, not of how long iterations take: an
    open model.
    """
    horizon = ramp.total if end is None else end
    n = 0
    t = 0.0
    while True:
        # Advance t until integral(0, t) >= n, by stepping and solving within linear pieces.
        t = _solve_integral(ramp, time_unit, float(n), t, horizon)
        if t >= horizon:
            return
        yield t
        n += 1


def _solve_integral(ramp: Ramp, time_unit: float, goal: float, t_from: float,
                    horizon: float) -> float:
    """Smallest t >= t_from with integral(0, t) / time_unit >= goal, or ``horizon``."""
    if goal <= 0:
        return min(_first_positive(ramp), horizon)
    # Walk the linear pieces; within a piece solve the quadratic exactly.
    prev = ramp.start
    elapsed = 0.0
    acc = 0.0
    pieces: list[tuple[float, float, float, float]] = []
    for s in ramp.stages:
        pieces.append((elapsed, elapsed + s.duration, prev, s.target))
        elapsed += s.duration
        prev = s.target
    pieces.append((elapsed, math.inf, prev, prev))
    for a, b, va, vb in pieces:
        if b == a:
            continue
        span = b - a
        slope = 0.0 if math.isinf(b) else (vb - va) / span
        piece_area = math.inf if math.isinf(b) else (va + vb) / 2 * span / time_unit
        if acc + piece_area >= goal:
            need = (goal - acc) * time_unit
            # va*x + slope*x^2/2 = need
            if need <= 0:
                x = 0.0
            elif abs(slope) < 1e-12:
                x = need / va if va > 0 else math.inf
            else:
                disc = va * va + 2 * slope * need
                x = (-va + math.sqrt(max(disc, 0.0))) / slope
            t = a + x
            return min(max(t, t_from), horizon) if t < horizon else horizon
        acc += piece_area
        if a >= horizon:
            break
    return horizon


def _first_positive(ramp: Ramp) -> float:
    """When the rate first rises above zero (the first iteration starts there)."""
    prev = ramp.start
    elapsed = 0.0
    for s in ramp.stages:
        if prev > 0 or (s.target > 0 and s.duration > 0):
            return elapsed
        elapsed += s.duration
        prev = s.target
    return elapsed if prev > 0 else math.inf


def parse_stages(raw: Sequence[object]) -> tuple[list[tuple[object, object]], list[str]]:
    """Split raw stage entries into (duration, target) pairs, reporting malformed ones."""
    named, problems = parse_named_stages(raw)
    return [(d, t) for d, t, _ in named], problems


def parse_named_stages(raw: Sequence[object]
                       ) -> tuple[list[tuple[object, object, str | None]], list[str]]:
    """Raw stage entries -> (duration, target, name or None); a name is a third item or a
    ``"name"`` key, unique, without braces, commas or colons (it goes in ``{stage:name}``)."""
    pairs: list[tuple[object, object, str | None]] = []
    problems: list[str] = []
    seen: set[str] = set()

    def named(i: int, name: object) -> str | None:
        if name is None:
            return None
        if not isinstance(name, str) or not name or not all(
                c.isalnum() or c in "_-." for c in name) or name.isdigit():
            problems.append(f"stages[{i}] name {shown(name)}: expected a word of letters, digits, "
                            "'_', '-' or '.' (not only digits), e.g. 'peak'")
            return None
        if name in seen:
            problems.append(f"stages[{i}] name '{name}': another stage has that name; stage "
                            "names are unique")
        seen.add(name)
        return name

    for i, entry in enumerate(raw):
        if isinstance(entry, dict):
            if not {"duration", "target"} <= set(entry) <= {"duration", "target", "name"}:
                problems.append(
                    f"stages[{i}] = {shown(entry)}: expected a (duration, target) pair or "
                    f"{{'duration': ..., 'target': ..., 'name': ...}} ('name' optional), "
                    "e.g. ('30s', 100)")
                continue
            pairs.append((entry["duration"], entry["target"], named(i, entry.get("name"))))
        elif isinstance(entry, list | tuple) and len(entry) in (2, 3):
            pairs.append((entry[0], entry[1],
                          named(i, entry[2]) if len(entry) == 3 else None))
        else:
            problems.append(
                f"stages[{i}] = {shown(entry)}: expected a (duration, target) pair such as "
                "('30s', 100)")
    return pairs, problems


def stage_ends(executor: Mapping[str, Any]) -> tuple[float, ...]:
    """When each stage ends (seconds from the start), read from the plan as summary.json shows
    it (``ExecutorConfig.describe()``: the controller only has that form); () without stages."""
    from pytest_novaload.units import parse_duration

    ends: list[float] = []
    total = 0.0
    try:
        for duration, _target in executor.get("stages") or ():
            total += parse_duration(duration)
            ends.append(total)
    except (TypeError, ValueError, ArithmeticError):
        return ()
    return tuple(ends)
