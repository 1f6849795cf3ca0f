"""k6 thresholds: parse the marker's expressions, evaluate them on a MetricStore, and the one
``judge`` of a load test (its verdict and its abort_on_fail check)."""

from __future__ import annotations

from pytest_novaload.thresholds.evaluate import Outcome, evaluate, evaluate_all
from pytest_novaload.thresholds.judge import Verdict, abort_check, judge
from pytest_novaload.thresholds.parser import (
    AGGREGATIONS,
    OPERATORS,
    Threshold,
    parse_expression,
    parse_thresholds,
)

__all__ = [
    "AGGREGATIONS",
    "OPERATORS",
    "Outcome",
    "Threshold",
    "Verdict",
    "abort_check",
    "evaluate",
    "evaluate_all",
    "judge",
    "parse_expression",
    "parse_thresholds",
]
