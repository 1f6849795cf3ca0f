"""Simulated DWCP v3 live migration: phase and progress as a pure function of time.

A migration is fixed when it is created (start time, duration, optional failing step), so any
worker process answers the same thing at the same instant without sharing memory.

Timeline, as fractions of the duration:
  0.00 pending -> 0.05 pre-copy (0%) -> 0.10..0.80 iterative-copy (10%..90% in nine steps)
  -> 0.90 stop-and-copy (95%) -> 1.00 completed (100%).
A failing migration stops at one iterative-copy step with phase `failed`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["PHASES", "STEPS", "Plan", "next_change", "step_index", "view"]

PHASES = ("pending", "pre-copy", "iterative-copy", "stop-and-copy", "completed", "failed")

#: (fraction of the duration, phase, progress percent)
STEPS: tuple[tuple[float, str, int], ...] = (
    (0.0, "pending", 0),
    (0.05, "pre-copy", 0),
    *((0.10 + (k - 1) * 0.70 / 8, "iterative-copy", 10 * k) for k in range(1, 10)),
    (0.90, "stop-and-copy", 95),
    (1.0, "completed", 100),
)
_FRACTIONS = [f for f, _, _ in STEPS]
#: steps a failure may be planned at (the iterative-copy ones)
FAILABLE_STEPS = tuple(i for i, (_, phase, _) in enumerate(STEPS) if phase == "iterative-copy")
FAILURE_REASON = "DWCP v3: dirty page rate exceeded link bandwidth"


@dataclass(frozen=True, slots=True)
class Plan:
    """What is fixed at creation. `final_state` is set for migrations already finished in the
    database before the plan was loaded (seed data), which then override the clock."""

    id: int
    vm_id: int
    source_zone: str
    target_zone: str
    created: float  # epoch seconds
    duration_s: float
    fail_step: int | None = None
    final_state: str | None = None
    final_progress: int = 100
    error: str | None = None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def step_index(plan: Plan, now: float) -> int:
    """Index into STEPS reached at `now` (a failure step counts as reached)."""
    # the epsilon makes a step's own start time (as next_change computes it) count as reached
    frac = (now - plan.created) / plan.duration_s + 1e-9 if plan.duration_s > 0 else 1.0
    return max(0, bisect.bisect_right(_FRACTIONS, frac) - 1)


def _terminal_step(plan: Plan) -> int:
    return plan.fail_step if plan.fail_step is not None else len(STEPS) - 1


def next_change(plan: Plan, now: float) -> float | None:
    """Epoch time of the next phase/progress change after `now`, or None when finished."""
    if plan.final_state is not None:
        return None
    i = step_index(plan, now)
    if i >= _terminal_step(plan):
        return None
    return plan.created + STEPS[i + 1][0] * plan.duration_s


def view(plan: Plan, now: float) -> dict[str, Any]:
    """The migration as the API shows it at `now`."""
    out: dict[str, Any] = {
        "id": plan.id,
        "vm_id": plan.vm_id,
        "source_zone": plan.source_zone,
        "target_zone": plan.target_zone,
        "created_at": _iso(plan.created),
    }
    if plan.final_state is not None:
        failed = plan.final_state == "failed"
        out.update(
            state=plan.final_state,
            phase="failed" if failed else "completed",
            progress=plan.final_progress,
            duration_ms=round(plan.duration_s * 1000),
            finished_at=_iso(plan.created + plan.duration_s),
        )
        if failed:
            out["error"] = plan.error or FAILURE_REASON
        return out
    i = min(step_index(plan, now), _terminal_step(plan))
    _, phase, progress = STEPS[i]
    if plan.fail_step is not None and i == plan.fail_step:
        out.update(
            state="failed",
            phase="failed",
            progress=STEPS[i - 1][2],
            error=f"{FAILURE_REASON} (iteration {i - FAILABLE_STEPS[0] + 1})",
        )
    elif phase == "completed":
        out.update(state="completed", phase=phase, progress=100)
    else:
        out.update(
            state="pending" if phase == "pending" else "running", phase=phase, progress=progress
        )
    if out["state"] in ("completed", "failed"):
        ended = STEPS[i][0] * plan.duration_s
        out["duration_ms"] = round(ended * 1000)
        out["finished_at"] = _iso(plan.created + ended)
    else:
        out["elapsed_ms"] = round(max(0.0, now - plan.created) * 1000)
    return out
