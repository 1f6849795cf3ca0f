"""The gate on one finished load test: 95% intervals for what it judges, marginal thresholds,
and its comparison with the baseline.

``assess`` runs where the one verdict is made (the session for one process, the xdist
controller on every shard merged), after ``judge``: it derives the intervals from the run's
per-second windows (``Timeline``), marks each threshold whose interval straddles its limit as
marginal (failed with ``marginal_fails``), and compares the summary.json entry with its
baseline entry. What it returns travels as plain values (the xdist wire).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pytest_novaload.gate.baseline import Baseline
from pytest_novaload.gate.compare import compare_test, is_marginal
from pytest_novaload.gate.intervals import ci95_fields
from pytest_novaload.gate.rules import DEFAULT_RULES, DefaultRules, Rule, rules_for_test
from pytest_novaload.gate.seed import SUITES
from pytest_novaload.gate.windows import wanted_stats
from pytest_novaload.metrics import MetricStore, parse_metric_key
from pytest_novaload.metrics.timeline import StageStores, Timeline, strip_stage
from pytest_novaload.thresholds import Outcome, Threshold, Verdict

__all__ = ["Gate", "assess", "interval_keys", "rule_texts"]

_THROUGHPUT = ("http_reqs", "iterations")


@dataclass(frozen=True)
class Gate:
    """The session's gate options, resolved."""

    baseline: Baseline | None = None
    save: str | None = None
    rules: DefaultRules = DEFAULT_RULES
    marginal_fails: bool = False


def interval_keys(thresholds: Iterable[Threshold],
                  regressions: Mapping[str, Sequence[Rule]] | None,
                  default: DefaultRules = DEFAULT_RULES) -> tuple[str, ...]:
    """The metric keys whose per-second numbers a run keeps: those its thresholds and rules
    name (stage filters dropped: the timeline keeps the stage), the default rules' metrics,
    throughput, and the seed suites' measures."""
    keys = [strip_stage(t.metric)[0] for t in thresholds]
    keys += list(regressions or ())
    keys += list(default.by_metric)
    keys += list(_THROUGHPUT)
    keys += [m.metric for _, measures in SUITES.values() for m in measures if m.metric]
    return tuple(dict.fromkeys(keys))


def rule_texts(regressions: Mapping[str, Sequence[Rule]] | None) -> dict[str, Any]:
    """What summary.json records of the marker's ``regressions=`` (the baseline keeps it)."""
    if regressions is None:
        return {}
    return {"regressions": {k: [r.text for r in rules] for k, rules in regressions.items()}}


def _intervals(entry: Mapping[str, Any], store: MetricStore, duration: float,
               timeline: Timeline | None, stages: StageStores | None,
               thresholds: Sequence[Threshold],
               rules: Mapping[str, Sequence[Rule]]) -> dict[str, dict[str, Any]]:
    """{metric key: {"ci95", "ci95_basis"}} for every metric key thresholds or rules name."""
    if timeline is None:
        return {}
    metrics = entry.get("metrics") or {}
    kinds = {k: str(v.get("type")) for k, v in metrics.items() if isinstance(v, Mapping)}
    wanted = wanted_stats(kinds, [(t.metric, t.agg) for t in thresholds], rules)
    out: dict[str, dict[str, Any]] = {}
    for key, stats in wanted.items():
        base, stage = strip_stage(key)
        name, filters = parse_metric_key(base)
        if name not in store or timeline.kind(base) is None:
            continue
        if stage is not None:
            span = stages.find(stage) if stages is not None else None
            if span is None or stages is None:
                continue
            sub = stages.store(span.index, like=store)
            if name not in sub:
                continue
            whole = sub.aggregate(name, filters or None)
            windows = [s for _, s in timeline.series(base, stage=span.index)]
            lengths = timeline.lengths(stage=span.index)
            seconds = stages.duration(span.index)
        else:
            whole = store.aggregate(name, filters or None)
            windows = [s for _, s in timeline.series(base)]
            lengths = timeline.lengths()
            seconds = duration
        fields = ci95_fields(windows, whole, stats, duration=seconds, lengths=lengths)
        if fields:
            out[key] = fields
    return out


def _marginal(verdict: Verdict, intervals: Mapping[str, Mapping[str, Any]],
              marginal_fails: bool) -> Verdict:
    outcomes: list[Outcome] = []
    for o in verdict.outcomes:
        th = o.threshold
        ci = (intervals.get(th.metric) or {}).get("ci95", {}).get(th.agg)
        pair = (float(ci[0]), float(ci[1])) if isinstance(ci, list) and len(ci) == 2 else None
        if pair is None or th.window is not None or o.observed is None:
            outcomes.append(o)
            continue
        marginal = is_marginal(th.op, th.limit, pair)
        ok = o.ok and not (marginal and marginal_fails)
        outcomes.append(replace(o, interval=pair, marginal=marginal, ok=ok))
    return replace(verdict, outcomes=tuple(outcomes))


def assess(gate: Gate, *, entry: Mapping[str, Any], verdict: Verdict, store: MetricStore,
           duration: float, timeline: Timeline | None, stages: StageStores | None,
           thresholds: Sequence[Threshold],
           regressions: Mapping[str, tuple[Rule, ...]] | None,
           machine: Mapping[str, Any], options: Mapping[str, Any]
           ) -> tuple[Verdict, dict[str, Any]]:
    """(the verdict with marginal thresholds marked, what summary.json adds: ``ci95`` by
    metric key and the ``comparison``) for one test's summary.json ``entry``."""
    kinds = {k: str(v.get("type")) for k, v in (entry.get("metrics") or {}).items()
             if isinstance(v, Mapping)}
    rules = rules_for_test(kinds, [t.metric for t in thresholds],
                           dict(regressions) if regressions is not None else None, gate.rules)
    intervals = _intervals(entry, store, duration, timeline, stages, thresholds, rules)
    verdict = _marginal(verdict, intervals, gate.marginal_fails)
    # summary.json carries the intervals of the trends judged and of what the rules judge;
    # a rate or counter a threshold alone names keeps its interval on the threshold.
    extra: dict[str, Any] = {"ci95": {k: v for k, v in intervals.items()
                                      if kinds.get(k) == "trend" or k in rules}}
    if gate.baseline is not None:
        merged = dict(entry)
        merged["metrics"] = {k: {**v, **intervals.get(k, {})}
                             for k, v in (entry.get("metrics") or {}).items()}
        comparison = compare_test(merged, gate.baseline.entry(str(entry.get("nodeid", ""))),
                                  baseline_path=gate.baseline.path, machine=machine,
                                  options=options, rules=rules)
        extra["comparison"] = comparison.to_dict()
    return verdict, extra
