"""From the runner's per-second windows to the ``ci95`` fields of summary.json.

The runner cuts its store into one window a second (``MetricStore.roll()``; under xdist the
controller merges the shards' windows second by second). ``interval_fields`` aggregates each
window by metric key, as the summary does for the whole run, and derives each wanted
statistic's interval (``intervals.py``). ``wanted_stats`` says which statistics: p(95) and
p(99) of every trend a threshold or a rule names, the percentiles thresholds and rules judge,
and ``rate`` of the counters and rate metrics they name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_novaload.gate.intervals import ci95_fields
from pytest_novaload.gate.rules import Rule
from pytest_novaload.metrics import (
    MetricStore,
    Sink,
    new_sink,
    parse_metric_key,
    parse_percentile,
)

__all__ = ["interval_fields", "metric_windows", "wanted_stats"]

_SUMMARY_PERCENTILES = ("p(95)", "p(99)")


def wanted_stats(kinds: Mapping[str, str], thresholds: Iterable[tuple[str, str]],
                 rules: Mapping[str, Sequence[Rule]]) -> dict[str, list[str]]:
    """{metric key: statistics to give an interval}, from ``(key, agg)`` of the thresholds,
    the rules by key and each key's kind (summary.json's ``type``)."""
    out: dict[str, list[str]] = {}

    def want(key: str, stat: str) -> None:
        kind = kinds.get(key)
        if kind == "trend" and (parse_percentile(stat) is not None or stat in ("med", "avg")):
            stats = out.setdefault(key, list(_SUMMARY_PERCENTILES))
        elif kind in ("counter", "rate") and stat == "rate":
            stats = out.setdefault(key, [])
        else:
            if kind == "trend":
                out.setdefault(key, list(_SUMMARY_PERCENTILES))
            elif kind in ("counter", "rate"):
                out.setdefault(key, ["rate"])
            return
        if stat not in stats:
            stats.append(stat)

    for key, agg in thresholds:
        want(key, agg)
    for key, key_rules in rules.items():
        for rule in key_rules:
            want(key, rule.stat)
    return out


def metric_windows(windows: Sequence[MetricStore], key: str, kind: str) -> list[Sink]:
    """Metric ``key`` (tags included) aggregated in each window; an empty sink where a window
    does not have it yet (a counter's empty second is a zero, and counts for throughput)."""
    name, filters = parse_metric_key(key)
    out: list[Sink] = []
    for w in windows:
        out.append(w.aggregate(name, filters or None) if name in w else new_sink(kind))
    return out


def interval_fields(windows: Sequence[MetricStore], whole: MetricStore,
                    wanted: Mapping[str, Sequence[str]], *,
                    duration: float) -> dict[str, dict[str, Any]]:
    """{metric key: {"ci95": {...}, "ci95_basis": {...}}} to merge into summary.json's
    metric entries; ``windows`` in time order, ``whole`` the run's store, ``duration`` its
    seconds (the counter rate's denominator, as in the summary)."""
    out: dict[str, dict[str, Any]] = {}
    for key, stats in wanted.items():
        name, filters = parse_metric_key(key)
        if name not in whole:
            continue
        kind = whole.kind(name)
        fields = ci95_fields(metric_windows(windows, key, kind),
                             whole.aggregate(name, filters or None), stats, duration=duration)
        if fields:
            out[key] = fields
    return out
