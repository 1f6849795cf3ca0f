"""What one generator can run: the marker's values screened, and plans it cannot follow refused.

Every marker value passes `screen` before any keyword reads it, so the checks behind it only
ever see bounded values (no list nested 100,000 deep, no 4,000-digit integer, no megabyte
string) and their messages can always be built. `plan_problems` refuses, with the reason,
what passes the per-keyword checks but cannot run: more VUs than one process can hold, an
arrival rate no Python generator reaches (each iteration start is a timer on one event loop),
a plan longer than the duration limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pytest_novaload.display import show
from pytest_novaload.units import MAX_DURATION, format_duration

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "MAX_ITERATIONS", "MAX_NUMBER", "MAX_RATE", "MAX_TEXT",
           "MAX_VUS", "plan_problems", "screen"]

MAX_DEPTH = 8            # stages=[('30s', 10)] is depth 2; thresholds dicts of lists are 2-3
MAX_ITEMS = 10_000       # values in one keyword (10,000 stages is already a generated marker)
MAX_TEXT = 10_000        # characters of one string
MAX_NUMBER = 10**15      # any integer of a marker; float() and round() stay exact below it
MAX_VUS = 100_000
"""VUs of one plan at most (vus, max_vus, preallocated_vus, stage targets, after --load-scale).
Each VU is a task with its own clients (tens of KB, a socket each): 100,000 already need GBs
and far more file descriptors than a default ``ulimit -n``; no single generator runs more."""
MAX_ITERATIONS = 10**12  # iterations of a plan: beyond this no run ends in MAX_DURATION
MAX_RATE = 1_000_000.0
"""Iteration starts per second at most (rate / time_unit at the peak). One event loop starts
a few tens of thousands of iterations a second; a higher rate only drops iterations while the
default preallocation (one VU per start per second) takes all memory: rate=1_000_000 with
time_unit='1ns' asks for 10^15 VUs."""


def screen(key: str, value: object) -> list[str]:
    """Problems making ``value`` (of marker keyword ``key``) unfit for any check: too deep, too
    many items, too long a text, an integer past MAX_NUMBER. Iterative: never recurses."""
    problems: list[str] = []
    stack: list[tuple[object, int]] = [(value, 0)]
    items = 0
    while stack and len(problems) < 5:
        item, depth = stack.pop()
        items += 1
        if items > MAX_ITEMS:
            problems.append(f"{key}: more than {MAX_ITEMS} values; a marker this large is "
                            "not meant (generate fewer stages or options)")
            break
        if isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        if isinstance(item, int):
            if abs(item) > MAX_NUMBER:
                problems.append(f"{key}: the number {show(item)} is beyond the limit of "
                                f"10^15 for any marker value; use a realistic value")
        elif isinstance(item, str | bytes):
            if len(item) > MAX_TEXT:
                problems.append(f"{key}: a text of {len(item)} characters ({show(item)}); "
                                f"expected at most {MAX_TEXT}")
        elif isinstance(item, list | tuple | set | frozenset | Mapping):
            if depth >= MAX_DEPTH:
                problems.append(f"{key}: values nested more than {MAX_DEPTH} deep "
                                f"({show(value)}); expected e.g. stages=[('30s', 10)]")
                break
            children: Any = (list(item.keys()) + list(item.values())
                             if isinstance(item, Mapping) else item)
            if len(children) > MAX_ITEMS:
                problems.append(f"{key}: more than {MAX_ITEMS} values; a marker this large "
                                "is not meant (generate fewer stages or options)")
                break
            stack.extend((child, depth + 1) for child in children)
    return problems


def plan_problems(plan: Any) -> list[str]:
    """Why a plan that passed the keyword checks cannot run here (empty when it can)."""
    problems: list[str] = []
    time_unit = getattr(plan, "time_unit", None)
    if isinstance(time_unit, float) and hasattr(plan, "rate_ramp"):
        per_second = plan.rate_ramp().peak() / time_unit
        if not math.isfinite(per_second) or per_second > MAX_RATE:
            return [
                f"an arrival rate of {show(per_second)} iterations/s (rate / time_unit="
                f"{format_duration(time_unit)}): above the limit of {MAX_RATE:.0f}/s that no "
                "Python generator reaches, and it would preallocate one VU per start per "
                "second; lower rate or lengthen time_unit (e.g. time_unit='1s')"]
    for field in ("vus", "max_vus", "preallocated_vus"):
        n = getattr(plan, field, None)
        if isinstance(n, int) and n > MAX_VUS:
            problems.append(f"{field}={n}: more than {MAX_VUS} VUs, which one generator "
                            f"cannot hold (memory, file descriptors); lower it, or spread the "
                            f"load over machines")
    ramp = getattr(plan, "ramp", None)
    if ramp is not None and time_unit is None and ramp.peak() > MAX_VUS:
        problems.append(f"stages reach {ramp.peak():.0f} VUs: more than {MAX_VUS}, which one "
                        "generator cannot hold; lower the targets")
    iterations = getattr(plan, "iterations", None)
    if isinstance(iterations, int) and iterations * max(1, getattr(plan, "vus", 1)) \
            > MAX_ITERATIONS:
        problems.append(f"iterations={iterations}: more than {MAX_ITERATIONS} in all; no run "
                        "ends within the duration limit; lower it")
    try:
        planned = plan.planned_duration()
    except (ArithmeticError, ValueError):
        planned = math.inf
    if not math.isfinite(planned) or planned > MAX_DURATION:
        problems.append(f"the stages add up to {show(planned)} s: longer than the limit of "
                        f"{format_duration(MAX_DURATION)} (7 days) for a whole plan; shorten "
                        "them")
    return problems
