"""The one verdict on a load test, and the abort_on_fail check made while it runs.

``judge`` decides a finished run (one process's, or every xdist shard merged on the
controller); ``abort_check`` is what the runner (on its own numbers) and the xdist controller
(on every shard's windows merged) ask once a second. Nothing else evaluates thresholds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_novaload.metrics import MetricStore
from pytest_novaload.metrics.timeline import StageStores, Timeline
from pytest_novaload.thresholds.evaluate import Outcome
from pytest_novaload.thresholds.parser import Threshold
from pytest_novaload.thresholds.scoped import evaluate_scoped

__all__ = ["Verdict", "abort_check", "judge"]


@dataclass(frozen=True)
class Verdict:
    """Every threshold's outcome, why the run stopped early (if it did), and whether Ctrl-C
    ended it (then nothing is judged)."""

    outcomes: tuple[Outcome, ...] = ()
    aborted: str | None = None
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes) and self.aborted is None

    @property
    def outcome(self) -> str:
        """summary.json's outcome: "interrupted", "passed" or "failed"."""
        if self.interrupted:
            return "interrupted"
        return "passed" if self.ok else "failed"

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def message(self, nodeid: str) -> str:
        """Every threshold with its observed value and limit; the failed ones marked."""
        failed = self.failed
        head = (f"{len(failed)} of {len(self.outcomes)} thresholds failed"
                if failed else "load aborted")
        lines = [f"{head} for {nodeid}:"]
        lines += [f"  {o.line()}" for o in self.outcomes]
        if self.aborted:
            lines.append(f"  run stopped early: {self.aborted}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON builtins (the xdist controller sends its verdict to every shard)."""
        return {"outcomes": [o.to_dict() for o in self.outcomes], "aborted": self.aborted,
                "interrupted": self.interrupted}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        """Inverse of ``to_dict``."""
        return cls(tuple(Outcome.from_dict(o) for o in d["outcomes"]), d.get("aborted"),
                   bool(d.get("interrupted")))


def judge(thresholds: Iterable[Threshold], store: MetricStore, duration_s: float, *,
          aborted: str | None = None, interrupted: bool = False,
          stages: StageStores | None = None, timeline: Timeline | None = None) -> Verdict:
    """Judge every threshold on ``store`` (``duration_s`` of test time, for counter rates),
    a stage-scoped one on its stage's samples (``stages``) and a window one on every window
    of the per-second ``timeline``; an interrupted run is judged on nothing."""
    if interrupted:
        return Verdict((), aborted, True)
    return Verdict(tuple(evaluate_scoped(th, store, duration_s, stages=stages,
                                         timeline=timeline) for th in thresholds), aborted)


def abort_check(thresholds: Iterable[Threshold], store: MetricStore, elapsed_s: float, *,
                skip_gauges: bool = False, stages: StageStores | None = None,
                timeline: Timeline | None = None) -> str | None:
    """The reason to stop now, or None: the first ``abort_on_fail`` threshold past its
    ``delay_abort_eval`` that fails on a value (a metric without samples never aborts); a
    window threshold is judged on its trailing window (skipped without a ``timeline``), a
    stage-scoped one on its stage so far (skipped without ``stages``).

    ``skip_gauges``: the numbers are shards' windows summed, which say nothing of a gauge.
    """
    for th in thresholds:
        if not th.abort_on_fail or elapsed_s < th.delay_abort_eval:
            continue
        if skip_gauges and th.name in store and store.kind(th.name) == "gauge":
            continue
        if (th.window is not None and timeline is None) or (
                "stage" in th.filters and stages is None):
            continue
        outcome = evaluate_scoped(th, store, elapsed_s, stages=stages, timeline=timeline,
                                  trailing=True)
        if outcome.observed is not None and not outcome.ok:
            return f"abort_on_fail: {outcome.line()}"
    return None
