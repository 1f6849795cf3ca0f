"""Thresholds scoped to a stage (``{stage:peak}``, ``{stage:2}``) or to every sliding window
(``{"threshold": "rate<0.01", "window": "30s"}``).

A stage-scoped threshold is judged on the samples taken while that stage ran (the runner
cuts its store at each stage boundary; ``StageStores``), as ``evaluate`` judges a whole run.
A window threshold must hold in every window of its length sliding a second at a time over
the run's per-second windows (``Timeline``); it fails on the worst window, named by its start
(seconds from the load's first second) and its value. A run shorter than the window is one
window. While the run goes on (abort_on_fail) the trailing window is judged.
"""

from __future__ import annotations

import math
from dataclasses import replace

from pytest_novaload.metrics import MetricStore, supports, unsupported_reason
from pytest_novaload.metrics.timeline import StageStores, Timeline, strip_stage
from pytest_novaload.thresholds.evaluate import _OPS, Outcome, _unit, evaluate
from pytest_novaload.thresholds.parser import Threshold

__all__ = ["evaluate_scoped"]


def evaluate_scoped(th: Threshold, store: MetricStore, duration_s: float, *,
                    stages: StageStores | None = None, timeline: Timeline | None = None,
                    trailing: bool = False) -> Outcome:
    """``evaluate`` for a threshold of any scope (whole run, stage, sliding window)."""
    base, stage = strip_stage(th.metric)
    if stage is not None:
        span = stages.find(stage) if stages is not None else None
        if span is None or stages is None:
            return Outcome(th, None, False, "", reason=f"stage {stage} is not a stage of "
                           "this run's plan")
        if trailing and span.index not in stages.stores:
            return Outcome(th, None, True, "", reason=f"stage {span.label} has not run yet")
        out = evaluate(replace(th, metric=base), stages.store(span.index, like=store),
                       stages.duration(span.index))
        return replace(out, threshold=th)
    if th.window is None:
        return evaluate(th, store, duration_s)
    return _window(th, base, store, timeline, trailing)


def _window(th: Threshold, key: str, store: MetricStore, timeline: Timeline | None,
            trailing: bool) -> Outcome:
    assert th.window is not None
    name = key.split("{", 1)[0]
    if name not in store:
        return Outcome(th, None, False, "", reason=f"metric '{name}' was never recorded; "
                       f"metrics that exist: {', '.join(store.names()) or 'none'}")
    kind = store.kind(name)
    unit = _unit(kind, th.agg)
    if not supports(kind, th.agg):
        return Outcome(th, None, False, unit, reason=unsupported_reason(kind, th.agg),
                       kind=kind)
    if kind == "gauge":
        return Outcome(th, None, False, unit, kind=kind, reason="a window threshold needs a "
                       "trend, a counter or a rate metric (a gauge has no per-window total)")
    if timeline is None or key not in timeline.keys:
        return Outcome(th, None, False, unit, kind=kind,
                       reason="no per-second windows were kept for this metric")
    if trailing:
        last = timeline.trailing(key, th.window)
        windows = [last] if last is not None else []
    else:
        windows = timeline.sliding(key, th.window)
    first = timeline.first or 0
    worst: tuple[float, int, float] | None = None   # (badness, start, value)
    seen = 0
    for start, sink, seconds in windows:
        if kind in ("trend", "rate") and sink.empty:
            continue
        value = sink.value(th.agg, float(seconds))
        if math.isnan(value):
            continue
        seen += 1
        bad = _badness(th, value)
        if worst is None or bad > worst[0]:
            worst = (bad, start - first, value)
    length = f"{th.window:g}s"
    if worst is None:
        return Outcome(th, None, False, unit, kind=kind,
                       reason=f"no samples in any {length} window")
    _, start, value = worst
    ok = _OPS[th.op](value, th.limit)
    where = "the trailing" if trailing else "worst"
    detail = (f"{where} {length} window starts at {start}s" if not ok else
              f"{seen} windows of {length}, worst starts at {start}s")
    return Outcome(th, value, ok, unit, kind=kind, detail=detail, window_start=float(start))


def _badness(th: Threshold, value: float) -> float:
    """How far ``value`` is on the failing side of the limit (larger: worse)."""
    if th.op in ("<", "<="):
        return value - th.limit
    if th.op in (">", ">="):
        return th.limit - value
    if th.op == "==":
        return abs(value - th.limit)
    return -abs(value - th.limit)  # "!=": closest to the limit is worst
