"""Regression rules: what counts as a regression of one statistic against its baseline.

Grammar of one rule (k6's spirit: a statistic, then what it may do; whitespace optional)::

    rule       ::= stat change [minimum]
    stat       ::= "avg" | "med" | "min" | "max" | "count" | "rate" | "value"
                 | "p(" percentile ")"                 ; 0 < N <= 100, e.g. p(95), p(99.9)
    change     ::= sign decimal "%"                    ; relative: the most it may move the bad way
                 | sign decimal [unit]                 ; absolute, in the metric's units
    minimum    ::= ">" decimal [unit]                  ; after a relative change only
    sign       ::= "+"                                 ; up is bad (latency, error rate)
                 | "-"                                 ; down is bad (throughput, pass rate)
    unit       ::= "ms" | "s" | "us" | "µs"            ; trend statistics only (milliseconds)
    decimal    ::= digits ["." [digits]] | "." digits

``"p(95) +10% >2ms"``: p(95) regresses when it rises by more than 10% *and* by more than 2 ms
(so a 0.2 ms move on a 2 ms p95 never fails a PR). ``"rate -5%"`` on ``http_reqs``: throughput
regresses when it falls by more than 5%. ``"rate +0.01"`` on ``http_req_failed``: the error
rate may rise by at most 0.01 (one percentage point). ``"p(99) +50ms"``: an absolute budget.
The change is *allowed*: a regression is declared only when the change, noise included, is
beyond it (see ``compare``).

The marker's ``regressions={metric_key: rule | [rule, ...]}`` replaces the default rules of
its test (``{}`` compares nothing). The session default is a text::

    default    ::= entry { ";" entry }
    entry      ::= target "=" rule { "," rule }
    target     ::= "trend" | "counter" | "rate"        ; every metric of that kind that the
                                                       ; test's thresholds name
                 | metric-key                          ; that metric, wherever it exists

Built-in default (``DEFAULT_RULES``): ``trend=p(95) +10% >1ms, p(99) +10% >1ms; http_reqs=rate
-10%``: every trend the thresholds name may get 10% slower at p(95) and p(99) (and must move
more than 1 ms to count), and throughput may drop 10%. 10% sits above what the batch-means
interval of a 30 s run usually resolves, and 1 ms above timer and scheduler jitter on loopback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_novaload.errors import ConfigError, RuleSyntaxError
from pytest_novaload.metrics import format_percentile, metric_key, parse_metric_key

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_RULES_TEXT",
    "KIND_STATS",
    "DefaultRules",
    "Rule",
    "parse_default_rules",
    "parse_regressions",
    "parse_rule",
    "rules_for_test",
]

STATS = ("avg", "med", "min", "max", "count", "rate", "value")
KIND_STATS: dict[str, tuple[str, ...]] = {
    "trend": ("avg", "med", "min", "max", "count", "rate", "p(N)"),
    "counter": ("count", "rate"),
    "rate": ("rate",),
    "gauge": ("value", "min", "max"),
}
"""The statistics a rule may judge per metric kind (``rate`` of a trend: samples per second)."""
_UNITS = {"ms": 1.0, "s": 1000.0, "us": 1e-3, "µs": 1e-3, "μs": 1e-3}
_DECIMAL = r"(?:\d+(?:\.\d*)?|\.\d+)"
_RULE = re.compile(
    rf"\s*(?P<stat>[A-Za-z_][A-Za-z0-9_.]*(?:\s*\([^()]*\))?)\s*"
    rf"(?P<sign>[+-])\s*(?P<num>{_DECIMAL})\s*(?P<unit>%|[a-zµμ]+)?\s*"
    rf"(?:>\s*(?P<min>{_DECIMAL})\s*(?P<munit>[a-zµμ]+)?\s*)?")
_PCT = re.compile(rf"p\(\s*({_DECIMAL})\s*\)")
_BARE_PCT = re.compile(rf"p(?:ct|ercentile)?_?({_DECIMAL})", re.IGNORECASE)
_EXPECTED = ("expected 'stat change [minimum]' such as 'p(95) +10% >2ms' (p(95) may rise 10%; "
             "a regression must also exceed 2 ms) or 'rate -5%' (may fall 5%); stat one of "
             "avg, med, min, max, count, rate, value, p(N); change '+' when up is bad, '-' "
             "when down is bad")
_KIND_TARGETS = ("trend", "counter", "rate")
_TREND_STATS = ("avg", "med", "min", "max")


@dataclass(frozen=True)
class Rule:
    """One parsed rule."""

    stat: str
    """Canonical: ``p(95)``, ``avg``, ``rate``..."""
    direction: int
    """+1: up is bad; -1: down is bad."""
    relative: float | None
    """Allowed relative change as a fraction (0.10 for 10%), or None."""
    absolute: float | None
    """Allowed absolute change (absolute rule) or minimum absolute change (with relative), in
    the metric's units (milliseconds for trends)."""
    text: str

    def allowed(self, baseline: float) -> float:
        """How far (in the bad direction) the statistic may move from ``baseline``."""
        rel = self.relative * abs(baseline) if self.relative is not None else 0.0
        return max(rel, self.absolute or 0.0)

    def worse_by(self, baseline: float, value: float) -> float:
        """The change in the bad direction (positive: worse)."""
        return self.direction * (value - baseline)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.text, "stat": self.stat, "direction": "up" if self.direction > 0
                else "down", "relative": self.relative, "absolute": self.absolute}


def _fail(text: str, where: str, problem: str, fixed: str | None = None) -> RuleSyntaxError:
    hint = f" Did you mean '{fixed}'?" if fixed and fixed != text else ""
    return RuleSyntaxError(f"regression rule '{text}'{where}: {problem}; {_EXPECTED}.{hint}")


def _canonical_stat(raw: str, text: str, where: str, rest: str) -> str:
    word = raw.replace(" ", "")
    m = _PCT.fullmatch(word)
    if m:
        n = float(m.group(1))
        if not 0.0 < n <= 100.0:
            raise _fail(text, where, f"percentile {word} is out of range: N must be > 0 and "
                        "<= 100")
        return format_percentile(n)
    if word in STATS:
        return word
    bare = _BARE_PCT.fullmatch(word)
    if bare:
        raise _fail(text, where, f"unknown statistic '{word}' (percentiles are written p(N))",
                    f"p({bare.group(1)}) {rest}".strip())
    alias = {"mean": "avg", "average": "avg", "median": "med", "throughput": "rate",
             "rps": "rate"}.get(word.lower())
    raise _fail(text, where, f"unknown statistic '{word}'",
                f"{alias} {rest}".strip() if alias else None)


def parse_rule(text: str, *, metric: str | None = None) -> Rule:
    """``"p(95) +10% >2ms"`` -> Rule; RuleSyntaxError naming ``text`` (and ``metric``)."""
    where = f" on {metric}" if metric else ""
    if not isinstance(text, str):
        raise RuleSyntaxError(f"regression rule {text!r}{where}: expected a string; "
                              f"{_EXPECTED}")
    if not text.strip():
        raise _fail(text, where, "the rule is empty")
    m = _RULE.fullmatch(text)
    if m is None:
        raise _diagnose(text, where)
    rest = text[m.start("sign"):].strip()
    stat = _canonical_stat(m.group("stat"), text, where, rest)
    direction = 1 if m.group("sign") == "+" else -1
    num, unit = float(m.group("num")), m.group("unit")
    is_trend_stat = stat.startswith("p(") or stat in _TREND_STATS
    for u in (unit, m.group("munit")):
        if u is not None and u != "%" and u not in _UNITS:
            raise _fail(text, where, f"unknown unit '{u}' (units: ms, s, us; a plain number is "
                        "in the metric's own units)")
        if u is not None and u != "%" and not is_trend_stat:
            raise _fail(text, where, f"'{stat}' is not a time: write its change without a unit "
                        "(a fraction for a rate metric, per second for a counter's rate)",
                        text.replace(u, ""))
    relative: float | None = None
    absolute: float | None = None
    if unit == "%":
        relative = num / 100.0
        if m.group("min") is not None:
            absolute = float(m.group("min")) * _UNITS.get(m.group("munit") or "ms", 1.0)
    else:
        if m.group("min") is not None:
            raise _fail(text, where, "a minimum ('>...') goes with a relative change such as "
                        "'+10%'; an absolute change is its own minimum",
                        f"{stat} {m.group('sign')}{m.group('num')}{unit or ''}")
        absolute = num * _UNITS.get(unit or "ms", 1.0)
    return Rule(stat, direction, relative, absolute, " ".join(text.split()))


def _diagnose(text: str, where: str) -> RuleSyntaxError:
    """The most helpful error for a rule the regular expression refused."""
    s = text.strip()
    head = re.match(r"([A-Za-z_][A-Za-z0-9_.]*(?:\s*\([^()]*\))?)\s*(.*)", s)
    if head is None:
        return _fail(text, where, "it does not start with a statistic")
    stat, rest = head.group(1), head.group(2)
    if re.match(r"(<=|>=|==|!=|<|>)", rest):
        return _fail(text, where, "a rule states an allowed change, not a limit (limits are "
                     "thresholds=)", f"{stat} +10%")
    if not rest:
        return _fail(text, where, f"no change after '{stat}'", f"{stat} +10%")
    unsigned = re.fullmatch(rf"({_DECIMAL})\s*(%|[a-zµμ]+)?(.*)", rest)
    if unsigned:
        sign = "-" if stat.strip() == "rate" else "+"
        return _fail(text, where, "the change needs a sign: '+' when up is bad (latency, "
                     "errors), '-' when down is bad (throughput)", f"{stat} {sign}{rest}")
    if re.match(rf"[+-]\s*{_DECIMAL}", rest):
        return _fail(text, where, f"cannot read '{rest}' after '{stat}' (a minimum is written "
                     "'>2ms', after a relative change)")
    return _fail(text, where, f"expected a signed change after '{stat}', found '{rest}'")


def parse_regressions(spec: Mapping[str, Any]) -> dict[str, tuple[Rule, ...]]:
    """The marker's ``regressions=`` dict -> {metric key: rules}; ONE ConfigError for all."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"regressions={spec!r}: expected a dict mapping a metric key to "
                          "rules, e.g. {'http_req_duration': ['p(95) +10% >2ms']}")
    problems: list[str] = []
    out: dict[str, tuple[Rule, ...]] = {}
    for raw_key, value in spec.items():
        try:
            name, filters = parse_metric_key(raw_key)
        except ConfigError as e:
            problems.extend(e.problems)
            continue
        key = metric_key(name, filters)
        items: Sequence[Any]
        if isinstance(value, str):
            items = [value]
        elif isinstance(value, list | tuple):
            items = value
        else:
            problems.append(f"regressions['{raw_key}'] = {value!r}: expected a rule such as "
                            "'p(95) +10% >2ms' or a list of rules")
            continue
        rules: list[Rule] = []
        for item in items:
            try:
                rules.append(parse_rule(item, metric=str(raw_key)))
            except RuleSyntaxError as e:
                problems.extend(e.problems)
        out[key] = tuple(rules)
    if problems:
        raise ConfigError(problems)
    return out


@dataclass(frozen=True)
class DefaultRules:
    """The session default: rules per metric kind (for the metrics thresholds name) and per
    metric key (wherever the metric exists)."""

    by_kind: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    by_metric: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    text: str = ""


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside braces (metric keys carry ``{tag:value,...}``)."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        depth += (ch == "{") - (ch == "}")
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_default_rules(text: str, *, what: str = "load_regressions") -> DefaultRules:
    """The session default text -> DefaultRules; ONE ConfigError listing every problem."""
    problems: list[str] = []
    by_kind: dict[str, tuple[Rule, ...]] = {}
    by_metric: dict[str, tuple[Rule, ...]] = {}
    example = "e.g. 'trend=p(95) +10% >1ms, p(99) +10% >1ms; http_reqs=rate -10%'"
    for entry in _split_top(text, ";"):
        if not entry.strip():
            continue
        target, sep, body = entry.partition("=")
        target = target.strip()
        if not sep or not target or not body.strip():
            problems.append(f"{what} entry '{entry.strip()}': expected 'target=rule, rule' "
                            f"with target trend, counter, rate or a metric key; {example}")
            continue
        rules: list[Rule] = []
        for item in _split_top(body, ","):
            try:
                rules.append(parse_rule(item.strip(), metric=target))
            except RuleSyntaxError as e:
                problems.extend(e.problems)
        if target in _KIND_TARGETS:
            by_kind[target] = tuple(rules)
            continue
        try:
            name, filters = parse_metric_key(target)
        except ConfigError as e:
            problems.extend(f"{what}: {p}" for p in e.problems)
            continue
        by_metric[metric_key(name, filters)] = tuple(rules)
    if problems:
        raise ConfigError(problems)
    return DefaultRules(by_kind, by_metric, text)


DEFAULT_RULES_TEXT = "trend=p(95) +10% >1ms, p(99) +10% >1ms; http_reqs=rate -10%"
DEFAULT_RULES = parse_default_rules(DEFAULT_RULES_TEXT)


def stat_applies(rule: Rule, kind: str) -> bool:
    """Whether ``rule``'s statistic exists for a metric of ``kind``."""
    allowed = KIND_STATS.get(kind, ())
    return rule.stat in allowed or (rule.stat.startswith("p(") and "p(N)" in allowed)


def rules_for_test(metric_kinds: Mapping[str, str], threshold_keys: Sequence[str],
                   regressions: Mapping[str, tuple[Rule, ...]] | None = None,
                   default: DefaultRules = DEFAULT_RULES) -> dict[str, tuple[Rule, ...]]:
    """The rules that judge one test: {metric key: rules}, in a stable order.

    ``metric_kinds`` maps each metric key of the run to its kind (summary.json's "type");
    ``threshold_keys`` are the metric keys its thresholds name. The marker's ``regressions``
    (when given, even empty) replace the default; otherwise ``default`` applies by kind to
    the metrics the thresholds name, and by key to the metrics it names that exist.
    """
    if regressions is not None:
        return {k: v for k, v in regressions.items() if v}
    out: dict[str, tuple[Rule, ...]] = {}
    for key in dict.fromkeys(threshold_keys):
        kind = metric_kinds.get(key)
        rules = default.by_kind.get(kind, ()) if kind else ()
        rules = tuple(r for r in rules if stat_applies(r, kind or ""))
        if rules:
            out[key] = rules
    for key, rules in default.by_metric.items():
        kind = metric_kinds.get(key)
        if kind is None:
            continue
        fit = tuple(r for r in rules if stat_applies(r, kind))
        if fit:
            out[key] = tuple(dict.fromkeys((*out.get(key, ()), *fit)))
    return out
