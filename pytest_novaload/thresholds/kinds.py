"""Thresholds against the type of their metric, checked before any load is sent.

k6 refuses a threshold whose aggregation the metric's type does not support (``avg`` on a
counter, ``count`` on a trend) before the test starts. Here a built-in metric's type is known
at collection, so the marker check reports it; a custom metric's type is known when the test
declares it (``load.trend(...)``), which raises then, still before ``load.run``.
"""

from __future__ import annotations

from collections.abc import Iterable

from pytest_novaload.metrics import KIND_AGGREGATIONS, builtin, supports, unsupported_reason
from pytest_novaload.thresholds.parser import Threshold

__all__ = ["check_builtin_kinds", "check_kind"]

_COUNT_HINT = ("; count samples with a counter instead, e.g. http_reqs for http_req_duration, "
               "iterations for iteration_duration, or load.counter(...)")


def check_kind(threshold: Threshold, kind: str) -> str | None:
    """The problem with ``threshold`` on a metric of ``kind``, or None when it fits."""
    if supports(kind, threshold.agg):
        return None
    first = KIND_AGGREGATIONS[kind][0]
    example = f"{first}{threshold.op}{threshold.limit:g}"
    hint = _COUNT_HINT if kind == "trend" and threshold.agg == "count" else ""
    return (f"threshold '{threshold.expression}' on {threshold.metric}: "
            f"{unsupported_reason(kind, threshold.agg)}, e.g. '{example}'{hint}")


def check_builtin_kinds(thresholds: Iterable[Threshold]) -> list[str]:
    """Every problem of thresholds on built-in metrics (custom ones are checked when declared)."""
    problems: list[str] = []
    for th in thresholds:
        metric = builtin(th.name)
        if metric is not None:
            problem = check_kind(th, metric.kind)
            if problem is not None:
                problems.append(problem)
    return problems
