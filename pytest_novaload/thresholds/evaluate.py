"""Judging thresholds against a MetricStore: never vacuously, always with a printable line."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_novaload.metrics import MetricStore, parse_metric_key, supports, unsupported_reason
from pytest_novaload.thresholds.parser import Threshold

__all__ = ["Outcome", "evaluate", "evaluate_all"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
NO_SAMPLES = "no samples"


@dataclass
class Outcome:
    """The verdict on one threshold: the observed value, ok or not, and why when not."""

    threshold: Threshold
    observed: float | None
    ok: bool
    unit: str
    """"ms" for trend timings, "/s" for a counter's rate, "" otherwise."""
    reason: str | None = None
    """Why there is no verdict on a value ("no samples", "metric 'x' was never recorded...")."""
    kind: str = ""
    """The metric's kind ("" when the metric is missing); rates print as a fraction and %."""
    interval: tuple[float, float] | None = None
    """The observed value's 95% confidence interval, when the run measured its noise."""
    marginal: bool = False
    """The interval straddles the limit: the point verdict could go either way."""
    detail: str | None = None
    """What else the line says (a window threshold's worst window)."""
    window_start: float | None = None
    """A window threshold: the worst window's start, seconds from the load's first second."""

    @property
    def metric(self) -> str:
        """The metric key the threshold is on, e.g. ``http_req_duration{name:create_vm}``."""
        return self.threshold.metric

    @property
    def expression(self) -> str:
        """The expression as written, e.g. ``p(95)<500``."""
        return self.threshold.expression

    def __str__(self) -> str:
        return self.line()

    def line(self) -> str:
        """``http_req_duration p(95)<500 -> 612.4 ms  FAILED`` (reason appended if any)."""
        th = self.threshold
        observed = self.format_observed()
        if self.interval is not None:
            observed += " " + _format_interval(self.interval, self.unit, self.kind)
        window = f" in every {th.window:g}s window" if th.window is not None else ""
        text = (f"{th.metric} {th.expression}{window} -> {observed}  "
                f"{'ok' if self.ok else 'FAILED'}")
        if self.marginal:
            text += " (marginal: the 95% interval straddles the limit)"
        if self.detail:
            text += f" ({self.detail})"
        return f"{text} ({self.reason})" if self.reason else text

    def format_observed(self) -> str:
        """The observed value with its unit: "612.4 ms", "0.0123 (1.23%)", "35.17/s", "n/a"."""
        v = self.observed
        if v is None:
            return "n/a"
        if self.unit == "ms":
            return f"{v:.1f} ms"
        if self.unit == "/s":
            return f"{_trim(v, 2)}/s"
        if self.kind == "rate":
            return f"{_trim(v, 4)} ({_trim(v * 100, 2)}%)"
        return _trim(v, 4)

    def to_dict(self) -> dict[str, Any]:
        """The one serialized form (summary.json's ``thresholds`` entries, the xdist wire):
        metric, expression, observed, ok, unit, the observed value as printed (``display``),
        kind and the parsed threshold; ``abort_on_fail``/``delay_abort_eval`` and ``reason``
        only when set."""
        th = self.threshold
        d: dict[str, Any] = {"metric": th.metric, "expression": th.expression,
                             "observed": self.observed, "ok": self.ok, "unit": self.unit,
                             "display": self.format_observed(), "kind": self.kind,
                             "agg": th.agg, "op": th.op, "limit": th.limit}
        if th.abort_on_fail:
            d.update(abort_on_fail=True, delay_abort_eval=th.delay_abort_eval)
        if self.reason:
            d["reason"] = self.reason
        if th.window is not None:
            d["window"] = th.window
            d["worst_window"] = {"start_s": self.window_start, "value": self.observed}
        if self.interval is not None:
            d["interval"] = list(self.interval)
            d["marginal"] = self.marginal
        if self.detail:
            d["detail"] = self.detail
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Outcome:
        """Inverse of ``to_dict``."""
        observed = d.get("observed")
        return cls(threshold=Threshold.from_dict(d),
                   observed=None if observed is None else float(observed), ok=bool(d["ok"]),
                   unit=d.get("unit", ""), reason=d.get("reason"), kind=d.get("kind", ""),
                   interval=(float(d["interval"][0]), float(d["interval"][1]))
                   if d.get("interval") else None, marginal=bool(d.get("marginal")),
                   detail=d.get("detail"),
                   window_start=(d.get("worst_window") or {}).get("start_s"))


def _trim(x: float, decimals: int) -> str:
    """``x`` with at most ``decimals`` decimals, no trailing zeros ("1000", "0.0123")."""
    if not math.isfinite(x):
        return str(x)
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _format_interval(iv: tuple[float, float], unit: str, kind: str) -> str:
    lo, hi = iv
    if unit == "ms":
        return f"[{lo:.1f}, {hi:.1f}]"
    if kind == "rate":
        return f"[{_trim(lo * 100, 2)}%, {_trim(hi * 100, 2)}%]"
    return f"[{_trim(lo, 2)}, {_trim(hi, 2)}]"


def _unit(kind: str, agg: str) -> str:
    if kind == "trend" and agg != "count":
        return "ms"
    if kind == "counter" and agg == "rate":
        return "/s"
    return ""


def evaluate(threshold: Threshold, store: MetricStore, duration_s: float) -> Outcome:
    """Judge ``threshold`` on the merged series of its metric key in ``store``.

    A metric that does not exist fails (naming the metrics that do); a trend or rate without
    samples fails with reason "no samples"; counters and gauges are judged on their zeros.
    A counter's ``rate`` is its total divided by ``duration_s``.
    """
    name, filters = parse_metric_key(threshold.metric)
    if name not in store:
        known = ", ".join(store.names()) or "none"
        return Outcome(threshold, None, False, "",
                       reason=f"metric '{name}' was never recorded; metrics that exist: {known}")
    kind = store.kind(name)
    unit = _unit(kind, threshold.agg)
    if not supports(kind, threshold.agg):
        return Outcome(threshold, None, False, unit, reason=unsupported_reason(kind, threshold.agg),
                       kind=kind)
    sink = store.aggregate(name, filters)
    if kind in ("trend", "rate") and sink.empty:
        return Outcome(threshold, None, False, unit, reason=_no_samples(store, name, filters),
                       kind=kind)
    try:
        observed = sink.value(threshold.agg, duration_s)
    except KeyError as e:
        return Outcome(threshold, None, False, unit, reason=str(e.args[0]), kind=kind)
    ok = not math.isnan(observed) and _OPS[threshold.op](observed, threshold.limit)
    return Outcome(threshold, observed, ok, unit, kind=kind)


def evaluate_all(thresholds: Iterable[Threshold], store: MetricStore,
                 duration_s: float) -> list[Outcome]:
    """``evaluate`` for each threshold, in order."""
    return [evaluate(th, store, duration_s) for th in thresholds]


def _no_samples(store: MetricStore, name: str, filters: Mapping[str, str]) -> str:
    """"no samples", plus the tag values that do exist when the filters match no series."""
    series = [dict(tags) for tags in store.series(name)]
    if not filters or any(all(tags.get(k) == v for k, v in filters.items()) for tags in series):
        return NO_SAMPLES
    for key, wanted in filters.items():
        seen = sorted({tags[key] for tags in series if key in tags})
        if wanted not in seen:
            values = ", ".join(seen) if seen else "none"
            return (f"{NO_SAMPLES}: no series of '{name}' has {key}:{wanted}; "
                    f"{key} values recorded: {values}")
    return f"{NO_SAMPLES}: no series of '{name}' has all of these tags"
