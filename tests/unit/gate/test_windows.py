"""The runner's per-second windows to summary.json's ci95 fields."""

from __future__ import annotations

import random

from pytest_novaload.gate.rules import parse_regressions
from pytest_novaload.gate.windows import interval_fields, metric_windows, wanted_stats
from pytest_novaload.metrics import MetricStore, make_tags


def _store_with_windows(seconds: int = 30) -> tuple[MetricStore, list[MetricStore]]:
    rnd = random.Random(7)
    store = MetricStore()
    windows = []
    for _ in range(seconds):
        for _ in range(50):
            name = rnd.choice(["a", "b"])
            store.trend("http_req_duration", make_tags(name=name)).add(rnd.expovariate(0.1))
            store.counter("http_reqs", make_tags(name=name)).add(1)
            store.rate("http_req_failed").add(rnd.random() < 0.01)
        windows.append(store.roll())
    return store, windows


def test_wanted_stats() -> None:
    kinds = {"http_req_duration": "trend", "http_req_failed": "rate", "http_reqs": "counter",
             "vus": "gauge", "http_req_duration{name:a}": "trend"}
    rules = parse_regressions({"http_req_duration": ["p(99.9) +5%", "max +1ms"],
                               "http_reqs": "rate -5%"})
    got = wanted_stats(kinds, [("http_req_duration", "p(90)"), ("http_req_failed", "rate"),
                               ("vus", "max"), ("http_req_duration{name:a}", "max")], rules)
    assert got == {"http_req_duration": ["p(95)", "p(99)", "p(90)", "p(99.9)"],
                   "http_req_failed": ["rate"], "http_reqs": ["rate"],
                   "http_req_duration{name:a}": ["p(95)", "p(99)"]}


def test_interval_fields_from_windows() -> None:
    store, windows = _store_with_windows()
    wanted = {"http_req_duration": ["p(95)", "p(99)"], "http_req_duration{name:a}": ["p(95)"],
              "http_reqs": ["rate"], "http_req_failed": ["rate"], "missing": ["p(95)"]}
    fields = interval_fields(windows, store, wanted, duration=30.0)
    assert set(fields) == {"http_req_duration", "http_req_duration{name:a}", "http_reqs",
                           "http_req_failed"}
    p95 = store.aggregate("http_req_duration").value("p(95)")
    lo, hi = fields["http_req_duration"]["ci95"]["p(95)"]
    assert lo < p95 < hi
    lo, hi = fields["http_reqs"]["ci95"]["rate"]
    assert lo <= 50.0 <= hi
    assert fields["http_req_duration{name:a}"]["ci95_basis"]["p(95)"]["n"] < \
        fields["http_req_duration"]["ci95_basis"]["p(95)"]["n"]


def test_metric_windows_fill_gaps_with_empty_sinks() -> None:
    store = MetricStore()
    early = store.roll()                     # a second before the counter existed
    store.counter("http_reqs").add(5)
    late = store.roll()
    sinks = metric_windows([early, late], "http_reqs", "counter")
    assert [s.value("count") for s in sinks] == [0.0, 5.0]
