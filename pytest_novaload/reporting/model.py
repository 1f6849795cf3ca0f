"""The result of one load test: queryable stats, threshold outcomes, and the summary.json shape."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pytest_novaload.gate.compare import TestComparison
from pytest_novaload.metrics import MetricStore, metric_key, parse_metric_key
from pytest_novaload.metrics.store import OVERFLOW, series_limit_warning
from pytest_novaload.metrics.timeline import StageStores
from pytest_novaload.thresholds import Outcome, Threshold, Verdict

# Tags of built-in metrics worth a per-value breakdown in summary.json; custom metrics are broken
# down by every tag they carry. Bounded, so an id in a URL cannot explode the summary.
BREAKDOWN_TAGS = ("name", "scenario", "kind", "group")
BUILTIN_PREFIXES = ("http_", "ws_", "db_", "iteration", "vus", "checks", "data_", "group_",
                    "dropped_")
BREAKDOWN_LIMIT = 50
NAME_CARDINALITY_WARNING = 200
_PCT = re.compile(r"^p\((\d+(?:\.\d+)?)\)$")


class MetricStats:
    """Stats of one metric (optionally filtered by tags): ``count``, ``rate``, ``avg``, ``min``,
    ``max``, ``med``, ``value``, ``passes``, ``fails`` and ``p(q)``."""

    def __init__(self, key: str, sink: Any, duration: float) -> None:
        self.key = key
        self.kind: str = sink.kind
        self._sink = sink
        self._duration = duration
        self._stats: dict[str, Any] = sink.stats(duration)

    def p(self, q: float) -> float:
        """The q-th percentile in milliseconds (trends only), e.g. ``p(95)`` or ``p(99.9)``."""
        return float(self._sink.value(f"p({_fmt_q(q)})"))

    def _get(self, field_: str) -> Any:
        if field_ in self._stats:
            return self._stats[field_]
        try:
            return self._sink.value(field_)
        except KeyError:
            raise AttributeError(
                f"{self.key} is a {self.kind}: it has no '{field_}'; "
                f"it has {', '.join(k for k in self._stats if k != 'type')}") from None

    @property
    def count(self) -> float:
        if self.kind == "rate":
            return int(self._stats["passes"]) + int(self._stats["fails"])
        return self._get("count")  # type: ignore[no-any-return]

    @property
    def rate(self) -> float:
        if self.kind == "trend":
            return self._stats["count"] / self._duration if self._duration > 0 else 0.0
        return float(self._get("rate"))

    @property
    def avg(self) -> float:
        return float(self._get("avg"))

    @property
    def min(self) -> float:
        return float(self._get("min"))

    @property
    def max(self) -> float:
        return float(self._get("max"))

    @property
    def med(self) -> float:
        return float(self._get("med"))

    @property
    def value(self) -> float:
        return float(self._get("value"))

    @property
    def passes(self) -> int:
        return int(self._get("passes"))

    @property
    def fails(self) -> int:
        return int(self._get("fails"))

    def to_dict(self) -> dict[str, Any]:
        return dict(self._stats)

    def __getitem__(self, key: str) -> Any:
        if key in self._stats:
            return self._stats[key]
        m = _PCT.match(key)
        if m:
            return self.p(float(m.group(1)))
        return self._get(key)

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={_short(v)}" for k, v in self._stats.items() if k != "type")
        return f"<{self.key} {self.kind}: {body}>"


def _fmt_q(q: float) -> str:
    return str(int(q)) if float(q).is_integer() else repr(float(q))


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@dataclass
class RunResult:
    """One load test's result: its measurements and the verdict ``judge`` gave them (the
    result never judges itself). ``metric(name, **tags)`` queries it; ``to_dict()`` is the
    object written to summary.json."""

    nodeid: str
    store: MetricStore
    duration: float
    executor: dict[str, Any]
    verdict: Verdict = field(default_factory=Verdict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    shards: int = 1
    outcome: str = ""
    """"passed", "failed" or "interrupted" from the verdict unless given; pytest's final
    outcome replaces it ("error" when the run itself crashed)."""
    started: float = 0.0
    finished: float = 0.0
    generator: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """What summary.json adds: xdist's start spread, the gate's ``comparison``, and
    ``ci95`` (by metric key, merged into that metric's entry)."""
    stages: StageStores | None = None
    """Every sample of each stage: ``metric(name, stage="peak")``, ``{stage:peak}`` keys."""

    def __post_init__(self) -> None:
        if not self.outcome:
            self.outcome = self.verdict.outcome

    @property
    def thresholds(self) -> list[Outcome]:
        """Each threshold's outcome (``ok``, ``observed``), in the marker's order."""
        return list(self.verdict.outcomes)

    @property
    def aborted(self) -> str | None:
        """Why the run stopped early (abort_on_fail, a lost shard, Ctrl-C), if it did."""
        return self.verdict.aborted

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    @property
    def failed_thresholds(self) -> list[Outcome]:
        return self.verdict.failed

    def metric(self, name: str, /, **tags: Any) -> MetricStats:
        """Stats of ``name`` over the series whose tags match ``tags``.

        ``name`` may carry tags itself, k6 style: ``"http_req_duration{name:create_vm}"``.
        Raises KeyError naming the metrics that exist when ``name`` does not.
        """
        base, filters = parse_metric_key(name)
        filters.update({k: str(v) for k, v in tags.items()})
        stage = filters.pop("stage", None)
        store, duration = (self.store, self.duration) if stage is None else self._stage(stage)
        series = store.series(base) if base in store else {}
        known = {k for t in series for k, _ in t}
        unknown = sorted(set(filters) - known)
        if series and unknown:
            # A tag key no sample carries is a typo, not "zero requests": say so.
            raise KeyError(f"metric '{base}' has no tag {', '.join(map(repr, unknown))}; its "
                           f"tags are {', '.join(sorted(known)) or '(none)'}")
        sink = store.aggregate(base, filters or None)  # KeyError naming what exists
        key = metric_key(base, {**filters, **({"stage": stage} if stage else {})})
        return MetricStats(key, sink, duration)

    def _stage(self, ref: str) -> tuple[MetricStore, float]:
        """The store and duration of stage ``ref`` (a name or a 1-based number)."""
        span = self.stages.find(ref) if self.stages is not None else None
        if span is None or self.stages is None:
            spans = self.stages.spans if self.stages is not None else ()
            known = ", ".join(s.label for s in spans) or "none (the executor has no stages)"
            raise KeyError(f"stage '{ref}' is not a stage of this run; stages: {known}")
        return self.stages.store(span.index, like=self.store), self.stages.duration(span.index)

    def checks(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        if "checks" not in self.store:
            return out
        for tags, sink in self.store.series("checks").items():
            name = dict(tags).get("check")
            if name is None:
                continue
            st = sink.stats(self.duration)
            entry = out.setdefault(name, {"passes": 0, "fails": 0})
            entry["passes"] += int(st["passes"])
            entry["fails"] += int(st["fails"])
        return out

    def metrics_dict(self) -> dict[str, dict[str, Any]]:
        """Every metric, every sub-metric a threshold names, and bounded per-tag breakdowns."""
        out: dict[str, dict[str, Any]] = {}
        for name in sorted(self.store.names()):
            out[name] = self.store.aggregate(name).stats(self.duration)
        for o in self.thresholds:
            base, filters = parse_metric_key(o.threshold.metric)
            if "stage" in filters:
                try:
                    store, duration = self._stage(filters.pop("stage"))
                except KeyError:
                    continue
                if base in store:
                    out[o.threshold.metric] = store.aggregate(base, filters or None).stats(
                        duration)
            elif filters and base in self.store:
                out[o.threshold.metric] = self.store.aggregate(base, filters).stats(self.duration)
        for name in sorted(self.store.names()):
            series = self.store.series(name)
            if len(series) < 2:
                continue
            tags = BREAKDOWN_TAGS if name.startswith(BUILTIN_PREFIXES) else sorted(
                {k for t in series for k, _ in t})
            for tag in tags:
                values = sorted({dict(t)[tag] for t in series if tag in dict(t)})
                if len(values) < 1 or len(values) > BREAKDOWN_LIMIT:
                    continue
                if len(values) == 1 and len(series) == 1:
                    continue
                for v in values:
                    key = metric_key(name, {tag: v})
                    if key not in out:
                        out[key] = self.store.aggregate(name, {tag: v}).stats(self.duration)
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "duration_s": round(self.duration, 3),
            "executor": self.executor,
            "shards": self.shards,
            "metrics": self._metrics_with_intervals(),
            "thresholds": [o.to_dict() for o in self.thresholds],
            "checks": self.checks(),
            "errors": self.errors,
            "generator": self.generator,
        }
        if self.aborted:
            d["aborted"] = self.aborted
        warnings = self.warnings()
        if warnings:
            d["warnings"] = warnings
        d.update({k: v for k, v in self.extra.items() if k != "ci95"})
        return d

    def _metrics_with_intervals(self) -> dict[str, dict[str, Any]]:
        metrics = self.metrics_dict()
        for key, fields in (self.extra.get("ci95") or {}).items():
            if key in metrics:
                metrics[key] = {**metrics[key], **fields}
        return metrics

    def warnings(self) -> list[str]:
        """Things the user should fix in the test itself (high tag cardinality, ...)."""
        out = []
        for name in sorted(self.store.names()):
            series = self.store.series(name)
            folded = sorted({k for t in series for k, v in t if v == OVERFLOW})
            if folded:
                out.append(series_limit_warning(name, folded[0]))
                continue
            values = {dict(t).get("name") for t in series} - {None}
            if len(values) > NAME_CARDINALITY_WARNING:
                out.append(
                    f"{name} has {len(values)} distinct 'name' tags (the default name is the URL "
                    "path, so ids in paths make one series each): pass name= for such calls, "
                    "e.g. vu.http.get(f'/api/v1/vms/{id}', name='/api/v1/vms/{id}')")
        return out

    def failure_message(self) -> str:
        """Every threshold with its observed value and limit; the failed ones marked."""
        return self.verdict.message(self.nodeid)

    def comparison(self) -> TestComparison | None:
        """The comparison with the baseline (``--load-baseline``), when there was one."""
        d = self.extra.get("comparison")
        return TestComparison.from_dict(self.nodeid, d) if isinstance(d, dict) else None

    def regression_message(self) -> str | None:
        """For RegressionFailed: every regressed statistic, or None when none regressed."""
        c = self.comparison()
        return c.failure_message() if c is not None and c.verdict == "regressed" else None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds") if ts else ""


def threshold_keys(thresholds: tuple[Threshold, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.metric for t in thresholds))

