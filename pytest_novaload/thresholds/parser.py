"""k6 threshold expressions and the marker's ``thresholds=`` dict.

Grammar of one expression (whitespace allowed around every token)::

    threshold   ::= aggregation operator number
    aggregation ::= "avg" | "min" | "max" | "med" | "count" | "rate" | "value"
                  | "p(" percentile ")"
    percentile  ::= decimal                      ; 0 <= N <= 100, e.g. 95, 99.9, 0 (min)
    operator    ::= "<" | "<=" | ">" | ">=" | "==" | "===" | "!="   ; "===" is "==" (k6)
    number      ::= ["+" | "-"] decimal [("e" | "E") ["+" | "-"] digits]
    decimal     ::= digits ["." [digits]] | "." digits

The ``thresholds=`` dict maps a metric key (``name`` or ``name{tag:value,...}``) to an
expression, or to a list of expressions and/or ``{"threshold": expr, "abort_on_fail": bool,
"delay_abort_eval": duration}`` dicts. Every problem of the dict is reported at once (up to
``MAX_PROBLEMS`` of them). Whatever the input (other types, huge numbers, deep nesting, long
text), the result is thresholds or a ConfigError/ThresholdSyntaxError, never another exception.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_novaload.display import show
from pytest_novaload.errors import ConfigError, ThresholdSyntaxError
from pytest_novaload.metrics import format_percentile, metric_key, parse_metric_key
from pytest_novaload.units import parse_duration

__all__ = ["AGGREGATIONS", "MAX_EXPRESSION", "MAX_PROBLEMS", "OPERATORS", "Threshold",
           "parse_expression", "parse_thresholds"]

AGGREGATIONS = ("avg", "min", "max", "med", "count", "rate", "value")
"""The named aggregations; ``p(N)`` comes on top."""
OPERATORS = ("<", "<=", ">", ">=", "==", "!=")

_EXPECTED = ("expected 'agg op number' with agg one of avg, min, max, med, count, rate, value, "
             "p(N) such as p(95) (0 <= N <= 100); op one of <, <=, >, >=, ==, !=")
_AGG = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)(\s*\(\s*([^()]*?)\s*\))?\s*")
_OP = re.compile(r"(<=|>=|===|==|!=|<|>)\s*")
_DECIMAL = r"(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER = re.compile(rf"[+-]?{_DECIMAL}(?:[eE][+-]?\d+)?")
_BARE_PERCENTILE = re.compile(rf"p(?:ct|ercentile)?_?({_DECIMAL})", re.IGNORECASE)
_ALIASES = {"mean": "avg", "average": "avg", "median": "med", "minimum": "min",
            "maximum": "max"}
_OP_FIXES = {"=": "==", "=<": "<=", "=>": ">=", "<>": "!=", "!==": "!="}
_DICT_KEYS = ("threshold", "abort_on_fail", "delay_abort_eval", "window")
MAX_EXPRESSION = 200
"""Longest expression accepted, in characters (``p(99.9) <= 250`` is 14): longer text is not a
threshold, and the bound keeps every parse step short."""
MAX_KEY = 500
"""Longest metric key accepted, in characters."""
MAX_PROBLEMS = 50
"""At most this many problems are listed; the rest are counted."""


@dataclass(frozen=True)
class Threshold:
    """One threshold on one metric key, parsed."""

    metric: str
    """The metric key, tags included (``http_req_duration{name:create_vm}``), canonical."""
    expression: str
    """The expression as written (stripped), e.g. ``p(95)<500``."""
    agg: str
    """The aggregation, canonical: ``p(95)`` (never ``p(95.0)``), ``avg``, ``rate``..."""
    op: str
    limit: float
    abort_on_fail: bool = False
    delay_abort_eval: float = 0.0
    """Seconds after the start before an ``abort_on_fail`` threshold may stop the run."""
    window: float | None = None
    """Seconds: the threshold must hold in every sliding window this long (None: whole run)."""

    @property
    def name(self) -> str:
        """The metric name without tag filters."""
        return parse_metric_key(self.metric)[0]

    @property
    def filters(self) -> dict[str, str]:
        """The tag filters of the metric key (empty for a plain metric)."""
        return parse_metric_key(self.metric)[1]

    def to_dict(self) -> dict[str, Any]:
        """JSON builtins."""
        return {"metric": self.metric, "expression": self.expression, "agg": self.agg,
                "op": self.op, "limit": self.limit, "abort_on_fail": self.abort_on_fail,
                "delay_abort_eval": self.delay_abort_eval,
                **({"window": self.window} if self.window is not None else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Threshold:
        """Inverse of ``to_dict``."""
        return cls(metric=d["metric"], expression=d["expression"], agg=d["agg"], op=d["op"],
                   limit=float(d["limit"]), abort_on_fail=bool(d.get("abort_on_fail", False)),
                   delay_abort_eval=float(d.get("delay_abort_eval", 0.0)),
                   window=float(d["window"]) if d.get("window") is not None else None)


def parse_expression(expr: str, *, metric: str | None = None) -> tuple[str, str, float]:
    """``"p(99.9) < 250"`` -> ("p(99.9)", "<", 250.0); ThresholdSyntaxError naming ``expr``.

    ``metric`` only makes the error message say which metric the expression is on.
    """
    where = f" on {metric}" if metric else ""
    if not isinstance(expr, str):
        raise ThresholdSyntaxError(f"threshold {_shown_repr(expr)}{where}: expected a string; "
                                   f"{_EXPECTED}")
    if len(expr) > MAX_EXPRESSION:
        raise ThresholdSyntaxError(f"threshold '{show(expr)}'{where}: {len(expr)} characters "
                                   f"long, more than a threshold ever is (at most "
                                   f"{MAX_EXPRESSION}); {_EXPECTED}")

    def fail(problem: str, fixed: str | None = None) -> ThresholdSyntaxError:
        hint = f" Did you mean '{fixed}'?" if fixed and fixed != expr else ""
        return ThresholdSyntaxError(f"threshold '{expr}'{where}: {problem}; {_EXPECTED}.{hint}")

    if not expr.strip():
        raise fail("the expression is empty")
    m = _AGG.match(expr)
    if m is None:
        raise fail("it does not start with an aggregation")
    word, paren, arg = m.group(1), m.group(2), m.group(3)
    rest = expr[m.end():]
    op_m = _OP.match(rest)
    tail = rest[op_m.end():].strip() if op_m else ""
    op_text = op_m.group(1) if op_m else ""

    def suggest(agg: str) -> str | None:
        if op_m and _NUMBER.fullmatch(tail):
            return f"{agg}{op_text}{tail}"
        return None

    if paren:
        n = float(arg) if re.fullmatch(_DECIMAL, arg or "") else None
        if word != "p":
            raise fail(f"unknown aggregation '{word}(...)'", suggest(f"p({arg})")
                       if word.lower() in ("p", "pct", "percentile") and n else None)
        if n is None:
            raise fail(f"percentile 'p({arg})' needs a number between 0 and 100")
        if not 0.0 <= n <= 100.0:
            raise fail(f"percentile p({arg}) is out of range: N must be >= 0 and <= 100")
        agg = format_percentile(n)
    elif word in AGGREGATIONS:
        agg = word
    else:
        bare = _BARE_PERCENTILE.fullmatch(word)
        if bare:
            fixed = f"p({bare.group(1)})"
            raise fail(f"unknown aggregation '{word}' (percentiles are written p(N))",
                       suggest(fixed))
        alias = _ALIASES.get(word.lower()) or (word.lower() if word.lower() in AGGREGATIONS
                                                else None)
        if alias is None:
            close = difflib.get_close_matches(word, AGGREGATIONS, n=1)
            alias = close[0] if close else None
        raise fail(f"unknown aggregation '{word}'", suggest(alias) if alias else None)

    if op_m is None:
        bad = re.match(r"[=<>!]+", rest.strip())
        if bad and bad.group(0) in _OP_FIXES:
            fixed_op = _OP_FIXES[bad.group(0)]
            num = rest.strip()[bad.end():].strip()
            raise fail(f"unknown operator '{bad.group(0)}'",
                       f"{agg}{fixed_op}{num}" if _NUMBER.fullmatch(num) else None)
        found = rest.strip()
        raise fail(f"expected an operator after '{agg}', found '{found}'" if found
                   else f"no operator and no number after '{agg}'")
    if not tail:
        raise fail(f"no number after '{agg}{op_text}'")
    if not _NUMBER.fullmatch(tail):
        unit_note = (" (limits are plain numbers; trend limits are milliseconds)"
                     if re.fullmatch(rf"{_DECIMAL}\s*[a-zµ]+", tail) else "")
        raise fail(f"'{tail}' after '{agg}{op_text}' is not a number{unit_note}",
                   _fix_number(agg, op_text, tail))
    limit = float(tail)
    if not math.isfinite(limit):
        raise fail(f"the number '{tail}' after '{agg}{op_text}' is out of range (the largest "
                   "limit is about 1.8e308)")
    return agg, "==" if op_text == "===" else op_text, limit


def _shown_repr(value: object) -> str:
    """``value`` for a message, quoted as repr() would when it is a string."""
    return f"'{show(value)}'" if isinstance(value, str) else show(value)


def _fix_number(agg: str, op: str, tail: str) -> str | None:
    """A corrected expression for a bad number ("<<1", "500ms"), or None."""
    bad = re.match(r"[=<>!]+", tail)
    if bad:
        num = tail[bad.end():].strip()
        return f"{agg}{op}{num}" if _NUMBER.fullmatch(num) else None
    unit = re.fullmatch(rf"({_DECIMAL})\s*(ms|s|m)", tail)
    if unit:  # trend limits are plain milliseconds
        ms = float(unit.group(1)) * {"ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit.group(2)]
        return f"{agg}{op}{int(ms) if ms.is_integer() else ms}"
    return None


def parse_thresholds(spec: Mapping[str, Any]) -> list[Threshold]:
    """The marker's ``thresholds=`` dict -> thresholds; ONE ConfigError listing every problem."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"thresholds={_shown_repr(spec)}: expected a dict mapping a metric key "
                          "to expressions, e.g. {'http_req_duration': ['p(95)<500']}")
    problems: list[str] = []
    out: list[Threshold] = []
    for raw_key, value in spec.items():
        if not isinstance(raw_key, str) or len(raw_key) > MAX_KEY:
            problems.append(f"thresholds key {_shown_repr(raw_key)}: expected a metric key: a "
                            f"string of at most {MAX_KEY} characters such as "
                            "'http_req_duration' or 'http_req_duration{name:create_vm}'")
            continue
        try:
            name, filters = parse_metric_key(raw_key)
        except ConfigError as e:
            problems.extend(e.problems)
            key = raw_key
        else:
            key = metric_key(name, filters)
        items: list[Any]
        if isinstance(value, str | Mapping):
            items = [value]
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            problems.append(f"thresholds['{raw_key}'] = {_shown_repr(value)}: expected an "
                            "expression such as 'p(95)<500', a dict {'threshold': ..., "
                            "'abort_on_fail': True}, or a list of those")
            continue
        for item in items:
            th = _parse_item(key, raw_key, item, problems)
            if th is not None:
                out.append(th)
    if problems:
        if len(problems) > MAX_PROBLEMS:
            more = len(problems) - MAX_PROBLEMS
            problems = [*problems[:MAX_PROBLEMS], f"... and {more} more problem(s) like these"]
        raise ConfigError(problems)
    return out


def _parse_item(key: str, raw_key: str, item: object, problems: list[str]) -> Threshold | None:
    """One list entry (str or dict); appends to ``problems`` and returns None when bad."""
    abort = False
    delay = 0.0
    window: float | None = None
    if isinstance(item, Mapping):
        unknown = [k for k in item if k not in _DICT_KEYS]
        if unknown:
            problems.append(f"thresholds['{raw_key}']: unknown key(s) "
                            f"{', '.join(_shown_repr(k) for k in unknown[:5])} in "
                            f"{_shown_repr(item)}; allowed: {', '.join(_DICT_KEYS)}")
        expr = item.get("threshold")
        abort_value = item.get("abort_on_fail", False)
        if isinstance(abort_value, bool):
            abort = abort_value
        else:
            problems.append(f"thresholds['{raw_key}']: abort_on_fail={_shown_repr(abort_value)} "
                            f"in {_shown_repr(item)}: expected True or False")
        if "delay_abort_eval" in item:
            try:
                delay = parse_duration(item["delay_abort_eval"],
                                       what=f"thresholds['{raw_key}'] delay_abort_eval")
            except ConfigError as e:
                problems.extend(e.problems)
        if "window" in item:
            window = _window(item["window"], raw_key, problems)
        if expr is None:
            problems.append(f"thresholds['{raw_key}']: {_shown_repr(item)} has no 'threshold' "
                            "key; write {'threshold': 'p(95)<500', 'abort_on_fail': True}")
            return None
    elif isinstance(item, str):
        expr = item
    else:
        problems.append(f"thresholds['{raw_key}']: entry {_shown_repr(item)}: expected an "
                        "expression such as 'p(95)<500' or a dict {'threshold': 'p(95)<500', "
                        "'abort_on_fail': True}")
        return None
    try:
        agg, op, limit = parse_expression(expr, metric=raw_key)
    except ThresholdSyntaxError as e:
        problems.extend(e.problems)
        return None
    return Threshold(metric=key, expression=expr.strip(), agg=agg, op=op, limit=limit,
                     abort_on_fail=abort, delay_abort_eval=delay, window=window)


def _window(value: object, raw_key: str, problems: list[str]) -> float | None:
    """A window threshold's length: a duration of at least one second."""
    try:
        seconds = parse_duration(value,  # type: ignore[arg-type]
                                 what=f"thresholds['{raw_key}'] window")
    except ConfigError as e:
        problems.extend(e.problems)
        return None
    if seconds < 1.0:
        problems.append(f"thresholds['{raw_key}'] window={_shown_repr(value)}: expected a "
                        "duration of at least 1s (windows slide over the per-second "
                        "numbers), e.g. '30s'")
        return None
    if "stage" in parse_metric_key(raw_key)[1]:
        problems.append(f"thresholds['{raw_key}'] window={_shown_repr(value)}: a window "
                        "threshold applies to the whole run; drop either the window or the "
                        "{stage:...} tag")
        return None
    return seconds
