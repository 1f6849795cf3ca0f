"""All metrics of one run (one process or one xdist shard): named, tagged series of sinks.

A metric has a name and one kind; each distinct tag set is a series with its own sink.
Thresholds and reports ask for ``aggregate(name, filters)``, a merged copy of the matching
series, so a sub-metric such as ``http_req_duration{name:create_vm}`` costs nothing to record.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics.builtins import SUM_GAUGES
from pytest_novaload.metrics.sinks import KINDS, Counter, Gauge, Rate, Sink, Trend, sink_from_dict
from pytest_novaload.metrics.tap import TapFactory, tapped_sink

__all__ = ["MAX_SERIES", "OVERFLOW", "MetricStore", "Tags", "make_tags", "metric_key",
           "new_sink", "parse_metric_key"]

Tags = tuple[tuple[str, str], ...]
"""A series' tags: (key, value) pairs sorted by key, hashable. Build with ``make_tags``."""


MAX_SERIES = 1000
"""Distinct tag sets of one metric at most. A series costs a sink (a t-digest: KBs) per
metric, in every per-second window and output; ids in URL paths make one per id (37K series
took 2 GB in 30 s). Past it, new tag sets fold into an overflow series: the tag with the most
distinct values gets the value ``OVERFLOW``, and `on_series_limit` is called once."""
OVERFLOW = "__overflow__"
_OVERFLOW_SLACK = 100  # folded series (one per combination of the other tags) at most


_NAME = re.compile(r"[^\s{},]{1,128}")
_KEY = re.compile(r"\s*([^{}\s]+)\s*(?:\{(.*)\})?\s*", re.DOTALL)
_KEY_EXAMPLE = "such as 'http_req_duration' or 'http_req_duration{name:create_vm,method:GET}'"


def series_limit_warning(name: str, tag: str) -> str:
    """What to tell the user when metric ``name`` reached MAX_SERIES distinct tag sets."""
    example = (" e.g. vu.http.get(f'/api/v1/vms/{id}', name='/api/v1/vms/{id}')"
               if tag in ("name", "url") else "")
    return (f"{name} reached {MAX_SERIES} series (distinct tag sets): later values of tag "
            f"'{tag}' are counted together as '{tag}:{OVERFLOW}'. Give such calls one name "
            f"with name=,{example}")


def make_tags(mapping: Mapping[str, object] | None = None, **kw: object) -> Tags:
    """Tags from a mapping and/or keywords: values ``str()``-ed, sorted by key."""
    items: dict[str, object] = dict(mapping) if mapping else {}
    items.update(kw)
    return tuple(sorted((str(k), str(v)) for k, v in items.items()))


def parse_metric_key(key: str) -> tuple[str, dict[str, str]]:
    """``"http_req_duration{name:create_vm,method:GET}"`` -> (name, {tag: value, ...}).

    As in k6, quotes around a tag or value are dropped (``{name:'x'}`` is ``{name:x}``), and
    a group path may be written k6's way, ``{group:::login}`` for ``{group:login}``.
    """
    if not isinstance(key, str):
        raise ConfigError(f"metric key {key!r}: expected a string {_KEY_EXAMPLE}")
    m = _KEY.fullmatch(key)
    if m is None:
        raise ConfigError(f"metric key '{key}': expected 'name' or 'name{{tag:value,...}}' "
                          f"{_KEY_EXAMPLE}")
    name, body = m.group(1), m.group(2)
    filters: dict[str, str] = {}
    if body is None:
        return name, filters
    problems: list[str] = []
    if not body.strip():
        problems.append(f"metric key '{key}': empty tag filter '{{}}'; write "
                        f"'{name}{{tag:value}}' or drop the braces")
    else:
        for item in body.split(","):
            # k6 (Metric.AddSubmetric): split on the first colon, trim spaces, then quotes.
            tag, sep, value = (part.strip().strip("\"'") for part in item.partition(":"))
            if tag == "group" and value.startswith("::"):
                value = value[2:]      # k6's group paths start with "::" ("::login")
            if not sep or not tag or not value:
                problems.append(f"metric key '{key}': tag filter '{item.strip()}' must be "
                                f"'tag:value', e.g. '{name}{{name:create_vm}}'")
            elif tag in filters:
                problems.append(f"metric key '{key}': tag '{tag}' is given twice; keep one")
            else:
                filters[tag] = value
    if problems:
        raise ConfigError(problems)
    return name, filters


def metric_key(name: str, filters: Mapping[str, object] | None = None) -> str:
    """Inverse of ``parse_metric_key``: ``name{tag:value,...}`` with filters in given order."""
    if not filters:
        return name
    return name + "{" + ",".join(f"{k}:{v}" for k, v in filters.items()) + "}"


def new_sink(kind: str, combine: str = "max") -> Sink:
    """An empty sink of ``kind`` (a gauge merging shards by ``combine``): a new series, or
    what a metric or a second without samples aggregates to."""
    if kind == "trend":
        return Trend()
    if kind == "counter":
        return Counter()
    if kind == "rate":
        return Rate()
    return Gauge(combine)


def _merge_sink(dst: Sink, src: Sink) -> None:
    """``dst.merge(src)`` for two sinks of the same kind."""
    if dst.kind != src.kind:
        raise ConfigError(f"cannot merge a {src.kind} metric into a {dst.kind} metric")
    dst.merge(src)  # type: ignore[arg-type]  # same class, checked above


class MetricStore:
    """Named metrics, each of one kind, each with one sink per distinct tag set."""

    __slots__ = ("_combine", "_flat", "_folded", "_kinds", "_series", "_tap", "on_series_limit")

    def __init__(self) -> None:
        self._tap: TapFactory | None = None
        #: Called once per metric when it reaches MAX_SERIES, with the warning to show.
        self.on_series_limit: Callable[[str], None] | None = None
        self._folded: dict[str, str] = {}  # metric -> the tag its overflow folds
        self._kinds: dict[str, str] = {}
        self._combine: dict[str, str] = {}  # gauges only
        self._series: dict[str, dict[Tags, Sink]] = {}
        # (name, tags as passed) -> sink: the one dict lookup of the hot path.
        self._flat: dict[tuple[str, Tags], Sink] = {}

    # -- get-or-create (hot path: one dict lookup) -------------------------------------

    def trend(self, name: str, tags: Tags = ()) -> Trend:
        """The trend series ``name`` with ``tags`` (created on first use)."""
        sink = self._flat.get((name, tags))
        if not isinstance(sink, Trend):
            sink = self._create(name, tags, "trend", None)
            assert isinstance(sink, Trend)
        return sink

    def counter(self, name: str, tags: Tags = ()) -> Counter:
        """The counter series ``name`` with ``tags`` (created on first use)."""
        sink = self._flat.get((name, tags))
        if not isinstance(sink, Counter):
            sink = self._create(name, tags, "counter", None)
            assert isinstance(sink, Counter)
        return sink

    def rate(self, name: str, tags: Tags = ()) -> Rate:
        """The rate series ``name`` with ``tags`` (created on first use)."""
        sink = self._flat.get((name, tags))
        if not isinstance(sink, Rate):
            sink = self._create(name, tags, "rate", None)
            assert isinstance(sink, Rate)
        return sink

    def gauge(self, name: str, tags: Tags = (), *, combine: str | None = None) -> Gauge:
        """The gauge series ``name`` with ``tags`` (created on first use).

        ``combine`` ("max" or "sum") says how shards merge; it is fixed when the metric is
        first defined (default "sum" for vus and vus_max, else "max").
        """
        sink = self._flat.get((name, tags))
        if not isinstance(sink, Gauge) or (combine is not None and combine != sink.combine):
            sink = self._create(name, tags, "gauge", combine)
            assert isinstance(sink, Gauge)
        return sink

    def _create(self, name: str, tags: Tags, kind: str, combine: str | None) -> Sink:
        self.define(name, kind, combine=combine)
        if not isinstance(tags, tuple) or not all(
                isinstance(t, tuple) and len(t) == 2 for t in tags):
            raise ConfigError(f"tags {tags!r} of metric '{name}': expected a tuple of "
                              "(key, value) pairs; build them with make_tags(key=value)")
        norm = tuple(sorted((str(k), str(v)) for k, v in tags))
        series = self._series[name]
        sink = series.get(norm)
        if sink is None:
            if len(series) >= MAX_SERIES:
                return self._overflow(name, norm, kind)
            sink = series[norm] = self._new_series_sink(name, kind, norm)
            self._flat[(name, norm)] = sink
        self._flat[(name, tags)] = sink
        return sink

    def tap(self, factory: TapFactory | None) -> None:
        """Series created from now on tell ``factory(name, kind, tags)``'s recorder every
        sample (the ``json=`` output); None stops tapping new series. Windows, copies and
        merges are never tapped."""
        self._tap = factory

    def _overflow(self, name: str, norm: Tags, kind: str) -> Sink:
        """The overflow series ``norm`` folds into (never cached by the tags as passed: they
        are unbounded). The first time, pick the tag with the most distinct values and warn."""
        series = self._series[name]
        tag = self._folded.get(name)
        if tag is None:
            values: dict[str, set[str]] = {}
            for tags in series:
                for k, v in tags:
                    values.setdefault(k, set()).add(v)
            tag = max(values, key=lambda k: len(values[k])) if values else ""
            self._folded[name] = tag
            if self.on_series_limit is not None:
                self.on_series_limit(series_limit_warning(name, tag))
        folded = tuple((k, OVERFLOW if k == tag else v) for k, v in norm)
        sink = series.get(folded)
        if sink is None and len(series) >= MAX_SERIES + _OVERFLOW_SLACK:
            folded = tuple((k, OVERFLOW) for k, _ in norm)  # one series for all the rest
            sink = series.get(folded)
        if sink is None:
            sink = series[folded] = self._new_series_sink(name, kind, folded)
            self._flat[(name, folded)] = sink
        return sink

    def _new_series_sink(self, name: str, kind: str, norm: Tags) -> Sink:
        combine_ = self._combine.get(name, "max")
        rec = self._tap(name, kind, norm) if self._tap is not None else None
        return new_sink(kind, combine_) if rec is None else tapped_sink(kind, combine_, rec)

    def define(self, name: str, kind: str, *, combine: str | None = None) -> None:
        """Make metric ``name`` of ``kind`` exist (zero values, no series needed)."""
        if kind not in KINDS:
            raise ConfigError(f"metric kind '{kind}' of '{name}': expected one of "
                              f"{', '.join(KINDS)}")
        if combine is not None and (kind != "gauge" or combine not in ("max", "sum")):
            raise ConfigError(f"combine={combine!r} for metric '{name}': only gauges take "
                              "combine, and it is 'max' or 'sum'")
        existing = self._kinds.get(name)
        if existing is None:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise ConfigError(f"metric name {name!r}: expected 1-128 characters without "
                                  "spaces, braces or commas, such as 'vm_creation_time'")
            self._kinds[name] = kind
            self._series[name] = {}
            if kind == "gauge":
                self._combine[name] = combine or ("sum" if name in SUM_GAUGES else "max")
            return
        if existing != kind:
            raise ConfigError(f"metric '{name}' is a {existing}; it cannot also be used as a "
                              f"{kind}: give the {kind} another name")
        if combine is not None and combine != self._combine[name]:
            raise ConfigError(f"gauge '{name}' combines with '{self._combine[name]}'; it "
                              f"cannot also combine with '{combine}'")

    # -- queries ------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every metric name, sorted."""
        return sorted(self._kinds)

    def kind(self, name: str) -> str:
        """The kind of metric ``name``; KeyError naming the existing metrics if unknown."""
        kind = self._kinds.get(name)
        if kind is None:
            raise KeyError(self._unknown(name))
        return kind

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._kinds)

    def _unknown(self, name: str) -> str:
        known = ", ".join(self.names()) or "none"
        return f"metric '{name}' does not exist; metrics that do: {known}"

    def series(self, name: str) -> dict[Tags, Sink]:
        """The live sinks of ``name`` by tag set (a new dict; the sinks are not copies)."""
        self.kind(name)
        return dict(self._series[name])

    def aggregate(self, name: str, filters: Mapping[str, object] | None = None) -> Sink:
        """A merged copy of every series of ``name`` whose tags include all ``filters``.

        An empty sink of the metric's kind when nothing matches.
        """
        kind = self.kind(name)
        wanted = {(str(k), str(v)) for k, v in filters.items()} if filters else set()
        matches = [sink for tags, sink in self._series[name].items() if wanted <= set(tags)]
        if len(matches) == 1:
            return matches[0].copy()
        out = new_sink(kind, self._combine.get(name, "max"))
        for sink in matches:
            _merge_sink(out, sink)
        return out

    # -- windows, merging, transport -----------------------------------------------------

    def roll(self) -> MetricStore:
        """The samples recorded since the previous roll(), as a new store; opens a new window.

        Cumulative values are unaffected; the returned store shares nothing with this one.
        """
        out = self._empty_like()
        for name, series in self._series.items():
            window = out._series[name]
            for tags, sink in series.items():
                window[tags] = sink.roll()
        out._reindex()
        return out

    def merge(self, other: MetricStore, *, later: bool = False) -> None:
        """Add every series of ``other`` into this store (in place; associative). ``later``:
        ``other`` is this process's own store measured right after this one (the pieces of a
        second cut at a stage's end), so a gauge takes its level (``Gauge.follow``) instead of
        adding the levels up as shards' VUs do."""
        for name, kind in other._kinds.items():
            self.define(name, kind, combine=None if name in self._kinds
                        else other._combine.get(name))
        for name, series in other._series.items():
            mine = self._series[name]
            for tags, sink in series.items():
                dst = mine.get(tags)
                if dst is None:
                    copy = sink.copy()
                    if isinstance(copy, Gauge):
                        copy.combine = self._combine[name]
                    mine[tags] = copy
                    self._flat[(name, tags)] = copy
                elif later and isinstance(dst, Gauge) and isinstance(sink, Gauge):
                    dst.follow(sink)
                else:
                    _merge_sink(dst, sink)

    def copy(self) -> MetricStore:
        """An independent snapshot."""
        out = MetricStore()
        out.merge(self)
        return out

    def _empty_like(self) -> MetricStore:
        out = MetricStore()
        out._kinds = dict(self._kinds)
        out._combine = dict(self._combine)
        out._series = {name: {} for name in self._kinds}
        return out

    def _reindex(self) -> None:
        self._flat = {(name, tags): sink for name, series in self._series.items()
                      for tags, sink in series.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON builtins only: ``{"metrics": {name: {"kind", "series": [...]}, ...}}``."""
        metrics: dict[str, Any] = {}
        for name, kind in self._kinds.items():
            entry: dict[str, Any] = {"kind": kind}
            if kind == "gauge":
                entry["combine"] = self._combine[name]
            entry["series"] = [{"tags": [list(t) for t in tags], "sink": sink.to_dict()}
                               for tags, sink in self._series[name].items()]
            metrics[name] = entry
        return {"metrics": metrics}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricStore:
        """Inverse of ``to_dict``."""
        out = cls()
        for name, entry in d["metrics"].items():
            out.define(name, entry["kind"], combine=entry.get("combine"))
            series = out._series[name]
            for item in entry["series"]:
                tags: Tags = tuple((str(k), str(v)) for k, v in item["tags"])
                series[tags] = sink_from_dict(item["sink"])
        out._reindex()
        return out

    def __repr__(self) -> str:
        n = sum(len(s) for s in self._series.values())
        return f"MetricStore({len(self._kinds)} metrics, {n} series)"
