"""The ``load`` fixture's object: custom metrics and ``run``, with no pytest in sight."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pytest_novaload.errors import ConfigError, UsageError
from pytest_novaload.metrics import MetricStore, make_tags
from pytest_novaload.reporting.model import RunResult

if TYPE_CHECKING:
    from pytest_novaload.thresholds import Threshold

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CustomMetric:
    """A user metric: ``add(value, tags=None, **tags)`` records one sample (trends in ms)."""

    __slots__ = ("_cache", "_store", "kind", "name")

    def __init__(self, store: MetricStore, name: str, kind: str) -> None:
        self._store = store
        self.name = name
        self.kind = kind
        self._cache: dict[Any, Any] = {}

    def add(self, value: float | bool = 1, tags: dict[str, Any] | None = None,
            **kw: Any) -> None:
        key = (tuple(sorted(tags.items())) if tags else (), tuple(sorted(kw.items())) if kw
               else ())
        sink = self._cache.get(key)
        if sink is None:
            all_tags = make_tags({**(tags or {}), **kw})
            getter = getattr(self._store, self.kind)
            sink = self._cache[key] = getter(self.name, all_tags)
        if self.kind == "gauge":
            sink.set(float(value))
        else:
            sink.add(value)

    def set(self, value: float, tags: dict[str, Any] | None = None, **kw: Any) -> None:
        """Gauges: set the current value (``add`` does the same)."""
        self.add(value, tags, **kw)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}>"


class Load:
    """What a load test receives as ``load``: ``trend/counter/rate/gauge`` and ``run``."""

    def __init__(self, nodeid: str, run: Callable[[Any, MetricStore], RunResult],
                 thresholds: Iterable[Threshold] = ()) -> None:
        self.nodeid = nodeid
        self.thresholds = tuple(thresholds)
        self.store = MetricStore()
        self._run = run
        self._metrics: dict[str, CustomMetric] = {}
        self.result: RunResult | None = None
        self.called = False

    def _metric(self, name: str, kind: str) -> CustomMetric:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"metric name {name!r}: expected letters, digits and underscores, "
                              "starting with a letter, e.g. 'vm_creation_time'")
        existing = self._metrics.get(name)
        if existing is not None:
            if existing.kind != kind:
                raise ConfigError(f"metric '{name}' is already a {existing.kind}; "
                                  f"it cannot also be a {kind}: pick another name")
            return existing
        from pytest_novaload.thresholds.kinds import check_kind
        problems = [p for th in self.thresholds if th.name == name
                    if (p := check_kind(th, kind)) is not None]
        if problems:
            # k6 refuses these before the test starts; the declaration is the first moment
            # the type is known, and it comes before load.run: no load is sent.
            raise ConfigError([f"{self.nodeid}: load.{kind}({name!r}): {p}" for p in problems])
        self.store.define(name, kind)
        metric = self._metrics[name] = CustomMetric(self.store, name, kind)
        return metric

    def trend(self, name: str) -> CustomMetric:
        """A latency-like metric (values in milliseconds): avg, min, med, max, p(N)."""
        return self._metric(name, "trend")

    def counter(self, name: str) -> CustomMetric:
        """A running total: count and rate per second."""
        return self._metric(name, "counter")

    def rate(self, name: str) -> CustomMetric:
        """The fraction of true samples: add(True) / add(False)."""
        return self._metric(name, "rate")

    def gauge(self, name: str) -> CustomMetric:
        """The latest value, with its min and max."""
        return self._metric(name, "gauge")

    def run(self, scenario: Any) -> RunResult:
        """Run the marker's executor with ``scenario`` (an async callable taking the vu, or a
        dict of name to callable or (callable, weight)); block until it ends; fail the test when
        a threshold breaks. Call it once per test."""
        __tracebackhide__ = True  # a failed threshold reads as the test's failure, not ours
        if self.called:
            raise UsageError(
                f"load.run was already called in {self.nodeid}: a load test runs one load. "
                "Combine scenarios in one call: load.run({'read': (read, 80), "
                "'write': (write, 20)})")
        self.called = True
        result = self._run(scenario, self.store)
        self.result = result
        return result
