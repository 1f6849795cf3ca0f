"""Metrics: t-digest trends, counters, rates and gauges in a mergeable, tagged store."""

from __future__ import annotations

from pytest_novaload.metrics.builtins import (
    BUILTINS,
    SUM_GAUGES,
    BuiltinMetric,
    builtin,
    defined_by,
    is_builtin,
)
from pytest_novaload.metrics.digest import Digest
from pytest_novaload.metrics.sinks import (
    KIND_AGGREGATIONS,
    KINDS,
    Counter,
    Gauge,
    Rate,
    Sink,
    Trend,
    format_percentile,
    parse_percentile,
    sink_from_dict,
    supports,
    unsupported_reason,
)
from pytest_novaload.metrics.store import (
    MetricStore,
    Tags,
    make_tags,
    metric_key,
    new_sink,
    parse_metric_key,
)

__all__ = [
    "BUILTINS",
    "KINDS",
    "KIND_AGGREGATIONS",
    "SUM_GAUGES",
    "BuiltinMetric",
    "Counter",
    "Digest",
    "Gauge",
    "MetricStore",
    "Rate",
    "Sink",
    "Tags",
    "Trend",
    "builtin",
    "defined_by",
    "format_percentile",
    "is_builtin",
    "make_tags",
    "metric_key",
    "new_sink",
    "parse_metric_key",
    "parse_percentile",
    "sink_from_dict",
    "supports",
    "unsupported_reason",
]
