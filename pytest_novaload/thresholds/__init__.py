"""k6 thresholds: parse the marker's expressions, judge them on a MetricStore."""

from __future__ import annotations

from pytest_novaload.thresholds.evaluate import Outcome, evaluate, evaluate_all
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
    "evaluate",
    "evaluate_all",
    "parse_expression",
    "parse_thresholds",
]
