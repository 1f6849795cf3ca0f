"""Noise-aware verdicts: one test's numbers against its baseline entry, under its rules.

Per statistic, with ``worse`` the change in the rule's bad direction and ``allowed`` what the
rule allows (its relative change of the baseline, and at least its minimum absolute change):

- **pass**: the point change is within what the rule allows (``worse <= allowed``);
- **regressed**: the whole 95% interval of the change lies beyond it: even the most
  favourable end of the change's interval is worse than ``allowed`` (a true change at or under
  the allowed amount is called a regression at most 2.5% of the time, given honest intervals);
- **inconclusive**: the point change breaks the rule but the noise covers it, or the interval
  is unknown (a run too short for one), or a number is missing or not a number.

The change's interval combines both runs' intervals by MOVER (Zou & Donner 2008: the
difference's bounds from each interval's distance to its estimate, squared and summed), which
keeps the asymmetry of percentile intervals. When only one side has an interval, the other is
taken to have the same relative width (same plan, same noise).

A baseline that speaks for three or more runs (its ``runs`` history, see ``baseline.py``) is
judged by their mean, and the change's interval is at least the prediction interval of one
more run from their spread, ``t(k-1) * sd * sqrt(1 + 1/k)``: the run-to-run noise (another
runner, a loaded machine for a whole run) that no within-run interval sees.

A test's verdict is the worst of its statistics (regressed > inconclusive > pass), ``new``
with no baseline entry, and ``incomparable`` when the baseline was taken with another
executor or stage shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_novaload.errors import ConfigError
from pytest_novaload.gate.baseline import Baseline, compatibility, rules_of
from pytest_novaload.gate.intervals import t_quantile
from pytest_novaload.gate.rules import (
    DEFAULT_RULES,
    DefaultRules,
    Rule,
    stat_applies,
)
from pytest_novaload.gate.values import stat_interval, stat_value, unit_of
from pytest_novaload.thresholds.parser import parse_expression

__all__ = [
    "VERDICTS",
    "StatComparison",
    "TestComparison",
    "change_interval",
    "compare_runs",
    "compare_test",
    "history",
    "is_marginal",
    "judge_stat",
    "marginal_thresholds",
    "rules_of",
    "run_spread",
]

VERDICTS = ("pass", "regressed", "inconclusive", "new", "incomparable")
Pair = tuple[float, float]


@dataclass(frozen=True)
class StatComparison:
    """One statistic of one metric, judged by one rule."""

    metric: str
    stat: str
    rule: str
    kind: str
    baseline: float | None
    value: float | None
    verdict: str
    interval: Pair | None = None
    """The current value's 95% interval."""
    baseline_interval: Pair | None = None
    change_interval: Pair | None = None
    allowed: float | None = None
    note: str = ""
    baseline_runs: int = 1
    """Runs the baseline value is the mean of (its history included)."""

    @property
    def change(self) -> float | None:
        if self.value is None or self.baseline is None:
            return None
        return self.value - self.baseline

    @property
    def relative(self) -> float | None:
        """The change as a fraction of the baseline (None from a zero baseline)."""
        change = self.change
        if change is None or not self.baseline:
            return None
        return change / abs(self.baseline)

    @property
    def unit(self) -> str:
        return unit_of(self.kind, self.stat)

    def to_dict(self) -> dict[str, Any]:
        """The summary.json ``comparison.stats`` item."""
        d: dict[str, Any] = {
            "metric": self.metric, "stat": self.stat, "baseline": _j(self.baseline),
            "value": _j(self.value), "change": _j(self.change),
            "interval": _jp(self.interval), "verdict": self.verdict, "rule": self.rule,
            "relative_change": _j(self.relative), "allowed": _j(self.allowed),
            "baseline_interval": _jp(self.baseline_interval),
            "change_interval": _jp(self.change_interval), "unit": self.unit,
            "kind": self.kind,
        }
        if self.note:
            d["note"] = self.note
        if self.baseline_runs > 1:
            d["baseline_runs"] = self.baseline_runs
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StatComparison:
        """Inverse of ``to_dict`` (SUMMARY.md and JUnit read summary.json's comparison)."""
        return cls(str(d.get("metric", "")), str(d.get("stat", "")), str(d.get("rule", "")),
                   str(d.get("kind", "")), _f(d.get("baseline")), _f(d.get("value")),
                   str(d.get("verdict", "")), _pair(d.get("interval")),
                   _pair(d.get("baseline_interval")), _pair(d.get("change_interval")),
                   _f(d.get("allowed")), str(d.get("note", "")),
                   int(d.get("baseline_runs") or 1))


def _f(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _pair(x: Any) -> Pair | None:
    if isinstance(x, list | tuple) and len(x) == 2:
        lo, hi = _f(x[0]), _f(x[1])
        if lo is not None and hi is not None:
            return lo, hi
    return None


def _j(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(f"{x:.6g}")


def _jp(p: Pair | None) -> list[float | None] | None:
    return None if p is None else [_j(p[0]), _j(p[1])]


@dataclass
class TestComparison:
    """One test against its baseline entry."""

    __test__ = False  # not a pytest test class, whatever its name

    nodeid: str
    baseline: str
    verdict: str
    stats: list[StatComparison] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def regressed(self) -> list[StatComparison]:
        return [s for s in self.stats if s.verdict == "regressed"]

    def to_dict(self) -> dict[str, Any]:
        """The summary.json ``comparison`` object."""
        d: dict[str, Any] = {"baseline": self.baseline, "verdict": self.verdict,
                             "stats": [s.to_dict() for s in self.stats]}
        if self.warnings:
            d["warnings"] = list(self.warnings)
        if self.reason:
            d["reason"] = self.reason
        return d

    @classmethod
    def from_dict(cls, nodeid: str, d: Mapping[str, Any]) -> TestComparison:
        """Inverse of ``to_dict`` for test ``nodeid``."""
        return cls(nodeid, str(d.get("baseline", "")), str(d.get("verdict", "")),
                   [StatComparison.from_dict(s) for s in d.get("stats") or ()
                    if isinstance(s, Mapping)],
                   [str(w) for w in d.get("warnings") or ()], str(d.get("reason", "")))

    def failure_message(self) -> str:
        """For RegressionFailed: every regressed statistic with its numbers."""
        from pytest_novaload.gate.report import stat_line

        bad = self.regressed
        lines = [f"{len(bad)} of {len(self.stats)} compared statistics regressed for "
                 f"{self.nodeid} (baseline {self.baseline}):"]
        lines += [f"  {stat_line(s)}" for s in bad]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def change_interval(value: float, value_ci: Pair | None, base: float,
                    base_ci: Pair | None) -> Pair | None:
    """95% interval of ``value - base`` (MOVER); None when neither side has an interval."""
    if value_ci is None and base_ci is None:
        return None
    if value_ci is None:
        value_ci = _mirror(base_ci, base, value)
    if base_ci is None:
        base_ci = _mirror(value_ci, value, base)
    if value_ci is None or base_ci is None:
        return None
    d = value - base
    lo = d - math.hypot(value - value_ci[0], base_ci[1] - base)
    hi = d + math.hypot(value_ci[1] - value, base - base_ci[0])
    return lo, hi


def _mirror(ci: Pair | None, of: float, to: float) -> Pair | None:
    """``ci`` of ``of`` moved to ``to`` with the same relative width (None if of == 0)."""
    if ci is None or of == 0:
        return None
    return to * ci[0] / of, to * ci[1] / of


def _bad(x: float | None) -> bool:
    return x is None or not math.isfinite(x)


MIN_RUNS = 3
"""Baseline runs from which their spread is used (two give t(1) = 12.7: no use)."""


def run_spread(values: Sequence[float]) -> tuple[float, float] | None:
    """(mean, prediction half-width of one more run) of the baseline runs' values; None
    with fewer than ``MIN_RUNS``."""
    k = len(values)
    if k < MIN_RUNS:
        return None
    mean = math.fsum(values) / k
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (k - 1))
    return mean, t_quantile(0.975, k - 1) * sd * math.sqrt(1.0 + 1.0 / k)


def history(entry: Mapping[str, Any], key: str, stat: str) -> list[float]:
    """The earlier runs' values of ``key``'s ``stat`` in a baseline entry (oldest first)."""
    out: list[float] = []
    for run in entry.get("runs") or ():
        values = run.get("values") if isinstance(run, Mapping) else None
        v = (values.get(key) or {}).get(stat) if isinstance(values, Mapping) else None
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
    return out


def judge_stat(rule: Rule, metric: str, current: Mapping[str, Any] | None,
               base: Mapping[str, Any] | None, *, duration_s: float | None = None,
               base_duration_s: float | None = None,
               earlier: Sequence[float] = ()) -> StatComparison:
    """One rule on one metric: the current and the baseline metric entries; ``earlier``
    the baseline's earlier runs' values of the statistic (``history``)."""
    kind = str((current or base or {}).get("type", ""))
    value = stat_value(current, rule.stat, duration_s)
    baseline = stat_value(base, rule.stat, base_duration_s)
    vci, bci = stat_interval(current, rule.stat), stat_interval(base, rule.stat)
    spread = (run_spread([*earlier, baseline])
              if baseline is not None and math.isfinite(baseline) else None)
    runs = len(earlier) + 1 if spread is not None else 1
    if spread is not None and baseline is not None:
        shift = spread[0] - baseline
        bci = (bci[0] + shift, bci[1] + shift) if bci is not None else None
        baseline = spread[0]

    def out(verdict: str, note: str = "", *, allowed: float | None = None,
            cci: Pair | None = None) -> StatComparison:
        return StatComparison(metric, rule.stat, rule.text, kind, baseline, value, verdict,
                              vci, bci, cci, allowed, note, runs)

    if kind and not stat_applies(rule, kind):
        return out("inconclusive", f"'{rule.stat}' does not apply to a {kind} metric")
    if current is None:
        return out("inconclusive", "not measured in this run")
    if base is None:
        return out("inconclusive", "not in the baseline")
    if _bad(value) or _bad(baseline):
        return out("inconclusive", "no value" if value is None or baseline is None
                   else "not a number")
    assert value is not None and baseline is not None
    allowed = rule.allowed(baseline)
    worse = rule.worse_by(baseline, value)
    cci = change_interval(value, vci, baseline, bci)
    if spread is not None:
        d, h = value - baseline, spread[1]
        cci = (d - h, d + h) if cci is None else (min(cci[0], d - h), max(cci[1], d + h))
    if worse <= allowed:
        return out("pass", allowed=allowed, cci=cci)
    if cci is None:
        return out("inconclusive", "no interval: the runs are too short to measure their "
                   "noise", allowed=allowed)
    least_worse = cci[0] if rule.direction > 0 else -cci[1]
    if least_worse > allowed:
        return out("regressed", allowed=allowed, cci=cci)
    return out("inconclusive", "the change is within the noise", allowed=allowed, cci=cci)


def _verdict(stats: Sequence[StatComparison]) -> str:
    verdicts = {s.verdict for s in stats}
    for v in ("regressed", "inconclusive"):
        if v in verdicts:
            return v
    return "pass"


def compare_test(test: Mapping[str, Any], entry: Mapping[str, Any] | None, *,
                 baseline_path: str, machine: Mapping[str, Any] | None = None,
                 options: Mapping[str, Any] | None = None,
                 rules: Mapping[str, tuple[Rule, ...]] | None = None,
                 default: DefaultRules = DEFAULT_RULES) -> TestComparison:
    """Judge a summary.json test entry against its baseline entry (None: a new test)."""
    nodeid = str(test.get("nodeid", ""))
    if entry is None:
        return TestComparison(nodeid, baseline_path, "new",
                              reason="no entry in the baseline: recorded, not judged")
    level, reasons = compatibility(entry, test, machine=machine, options=options)
    if level == "incomparable":
        return TestComparison(nodeid, baseline_path, "incomparable", warnings=reasons[1:],
                              reason=reasons[0])
    if rules is None:
        rules = rules_of(test, default)
    current_metrics = test.get("metrics") or {}
    base_metrics = entry.get("metrics") or {}
    stats = [judge_stat(rule, key, current_metrics.get(key), base_metrics.get(key),
                        duration_s=_num(test.get("duration_s")),
                        base_duration_s=_num(entry.get("duration_s")),
                        earlier=history(entry, key, rule.stat))
             for key, key_rules in rules.items() for rule in key_rules]
    return TestComparison(nodeid, baseline_path, _verdict(stats), stats, reasons)


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def compare_runs(baseline: Baseline, summary: Mapping[str, Any], *,
                 default: DefaultRules = DEFAULT_RULES) -> list[TestComparison]:
    """Every test of ``summary`` against ``baseline``."""
    machine = summary.get("machine") or {}
    options = summary.get("options") or {}
    return [compare_test(t, baseline.entry(str(t.get("nodeid", ""))),
                         baseline_path=baseline.path, machine=machine, options=options,
                         default=default)
            for t in summary.get("tests") or () if isinstance(t, Mapping)]


# -- absolute thresholds: marginal when the interval straddles the limit ----------------------

def is_marginal(op: str, limit: float, interval: Pair | None) -> bool:
    """True when a threshold ``agg op limit`` on a value with ``interval`` could go either way:
    the interval contains the limit (only for < <= > >=; never without an interval)."""
    if interval is None or op not in ("<", "<=", ">", ">="):
        return False
    lo, hi = interval
    return lo <= limit <= hi


def marginal_thresholds(test: Mapping[str, Any], *,
                        marginal_fails: bool = False) -> list[dict[str, Any]]:
    """The test entry's thresholds, each with ``interval`` and ``marginal`` added; with
    ``marginal_fails`` a marginal threshold's ``ok`` becomes False (k6's point verdict
    otherwise stays)."""
    metrics = test.get("metrics") or {}
    out: list[dict[str, Any]] = []
    for th in test.get("thresholds") or ():
        if not isinstance(th, Mapping):
            continue
        item = dict(th)
        try:
            agg, op, limit = parse_expression(str(th.get("expression", "")))
        except ConfigError:
            out.append(item)
            continue
        ci = stat_interval(metrics.get(str(th.get("metric"))), agg)
        item["interval"] = list(ci) if ci else None
        item["marginal"] = is_marginal(op, limit, ci)
        if marginal_fails and item["marginal"]:
            item["ok"] = False
        out.append(item)
    return out
