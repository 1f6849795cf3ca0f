"""Trend, Counter, Rate, Gauge: stats shapes, threshold values, merge, roll, transport."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

from pytest_novaload.metrics import Counter, Gauge, Rate, Sink, Trend, sink_from_dict

# -- Trend ----------------------------------------------------------------------------------------


def test_trend_stats_shape_and_values() -> None:
    t = Trend()
    for ms in range(1, 1001):
        t.add(float(ms))
    stats = t.stats(10.0)
    assert list(stats) == ["type", "count", "avg", "min", "med", "max",
                           "p(90)", "p(95)", "p(99)", "p(99.9)"]
    assert stats["type"] == "trend"
    assert stats["count"] == 1000
    assert (stats["avg"], stats["min"], stats["max"]) == (500.5, 1.0, 1000.0)
    assert stats["med"] == pytest.approx(500.5, rel=0.01)
    assert stats["p(95)"] == pytest.approx(950.0, rel=0.01)
    assert stats["p(99.9)"] == pytest.approx(999.0, rel=0.01)


def test_empty_trend_stats_are_zeros() -> None:
    t = Trend()
    assert t.empty
    assert t.stats(1.0) == {"type": "trend", "count": 0, "avg": 0.0, "min": 0.0, "med": 0.0,
                            "max": 0.0, "p(90)": 0.0, "p(95)": 0.0, "p(99)": 0.0,
                            "p(99.9)": 0.0}
    assert t.value("p(95)") == 0.0


def test_trend_value_answers_every_trend_aggregation() -> None:
    t = Trend()
    t.add_many([10.0, 20.0, 30.0, 40.0])
    assert t.value("avg") == 25.0
    assert t.value("min") == 10.0
    assert t.value("max") == 40.0
    assert t.value("count") == 4.0
    assert 10.0 <= t.value("med") <= 40.0
    assert t.value("p(100)") == 40.0
    assert t.value("p(0)") == 10.0          # k6: p(0) is the minimum
    assert t.value("p(97.5)") == t.quantile(0.975)
    assert t.value("p(50)") == t.value("med")


@pytest.mark.parametrize(("sink", "agg", "supported"), [
    (Trend(), "rate", "avg, min, max, med, count, p(N)"),
    (Trend(), "value", "avg, min, max, med, count, p(N)"),
    (Trend(), "p(101)", "avg, min, max, med, count, p(N)"),
    (Counter(), "p(95)", "count, rate"),
    (Counter(), "avg", "count, rate"),
    (Rate(), "count", "rate"),
    (Gauge(), "avg", "value, min, max"),
])
def test_value_names_what_the_kind_supports(sink: Sink, agg: str, supported: str) -> None:
    with pytest.raises(KeyError) as info:
        sink.value(agg)
    message = info.value.args[0]
    assert f"'{agg}'" in message
    assert sink.kind in message
    assert message.endswith(f"supports: {supported}")


# -- Counter, Rate, Gauge -------------------------------------------------------------------------


def test_counter_totals_and_rate_per_second() -> None:
    c = Counter()
    assert c.empty
    c.add()
    c.add(4)
    assert c.total == 5
    assert isinstance(c.stats(1.0)["count"], int)  # an int while only ints are added
    assert c.stats(2.0) == {"type": "counter", "count": 5, "rate": 2.5}
    assert c.value("count") == 5.0
    assert c.value("rate", 10.0) == 0.5
    assert c.value("rate") == 0.0  # no duration, no rate
    c.add(0.5)
    assert c.total == 5.5


def test_rate_counts_truthy_as_passes() -> None:
    r = Rate()
    assert r.empty
    assert r.stats() == {"type": "rate", "rate": 0.0, "passes": 0, "fails": 0}
    for v in (True, False, 1, 0, 2.5, 0.0, True, True):
        r.add(v)
    assert (r.passes, r.fails) == (5, 3)
    assert r.stats() == {"type": "rate", "rate": 5 / 8, "passes": 5, "fails": 3}
    assert r.value("rate") == 5 / 8


def test_gauge_keeps_last_min_max() -> None:
    g = Gauge()
    assert g.empty
    assert g.stats() == {"type": "gauge", "value": 0.0, "min": 0.0, "max": 0.0}
    for v in (5, 9, 2, 4):
        g.set(v)
    g.add(3)  # add is set
    assert g.stats() == {"type": "gauge", "value": 3, "min": 2, "max": 9}
    assert (g.value("value"), g.value("min"), g.value("max")) == (3.0, 2.0, 9.0)


def test_gauge_merge_max_and_sum() -> None:
    def gauge(combine: str, *values: float) -> Gauge:
        g = Gauge(combine)
        for v in values:
            g.set(v)
        return g

    m = gauge("max", 3, 10, 4)
    m.merge(gauge("max", 1, 6))
    assert m.stats() == {"type": "gauge", "value": 6, "min": 1, "max": 10}
    s = gauge("sum", 0, 10, 4)   # shard 1: 4 VUs now, 10 at most
    s.merge(gauge("sum", 0, 5, 5))
    assert s.stats() == {"type": "gauge", "value": 9, "min": 0, "max": 15}


def test_gauge_rejects_unknown_combine() -> None:
    with pytest.raises(ValueError, match="'avg'"):
        Gauge("avg")


# -- properties shared by every kind --------------------------------------------------------------

Feed = Callable[[Sink, random.Random], None]


def feed_trend(s: Sink, rng: random.Random) -> None:
    for _ in range(rng.randrange(1, 3000)):
        s.add(rng.expovariate(0.1))


def feed_counter(s: Sink, rng: random.Random) -> None:
    for _ in range(rng.randrange(1, 50)):
        s.add(rng.randrange(1, 1000))


def feed_rate(s: Sink, rng: random.Random) -> None:
    for _ in range(rng.randrange(1, 500)):
        s.add(rng.random() < 0.3)


def feed_gauge(s: Sink, rng: random.Random) -> None:
    for _ in range(rng.randrange(1, 20)):
        s.add(rng.randrange(0, 100))


KINDS: list[tuple[Callable[[], Sink], Feed]] = [
    (Trend, feed_trend),
    (Counter, feed_counter),
    (Rate, feed_rate),
    (Gauge, feed_gauge),
    (lambda: Gauge("sum"), feed_gauge),
]
IDS = ["trend", "counter", "rate", "gauge-max", "gauge-sum"]


def filled(make: Callable[[], Sink], feed: Feed, seed: int) -> Sink:
    sink = make()
    feed(sink, random.Random(seed))
    return sink


def merged(a: Sink, b: Sink) -> Sink:
    out = a.copy()
    out.merge(b)  # type: ignore[arg-type]
    return out


def assert_same_stats(a: Sink, b: Sink) -> None:
    sa, sb = a.stats(10.0), b.stats(10.0)
    assert sa.keys() == sb.keys()
    for key in sa:
        if isinstance(sa[key], str):
            assert sa[key] == sb[key]
        elif key in ("count", "min", "max", "passes", "fails", "value", "rate"):
            assert sa[key] == pytest.approx(sb[key], rel=1e-12), key
        else:  # digest estimates
            assert sa[key] == pytest.approx(sb[key], rel=0.01), key


@pytest.mark.parametrize(("make", "feed"), KINDS, ids=IDS)
def test_merge_is_associative(make: Callable[[], Sink], feed: Feed) -> None:
    a, b, c = (filled(make, feed, seed) for seed in (1, 2, 3))
    assert_same_stats(merged(merged(a, b), c), merged(a, merged(b, c)))


@pytest.mark.parametrize(("make", "feed"), KINDS, ids=IDS)
def test_empty_is_neutral_for_merge(make: Callable[[], Sink], feed: Feed) -> None:
    a = filled(make, feed, 4)
    assert_same_stats(merged(a, make()), a)
    assert_same_stats(merged(make(), a), a)


@pytest.mark.parametrize(("make", "feed"), KINDS, ids=IDS)
def test_to_dict_round_trip(make: Callable[[], Sink], feed: Feed) -> None:
    for sink in (make(), filled(make, feed, 5)):
        data = sink.to_dict()
        restored = sink_from_dict(json.loads(json.dumps(data)))
        assert type(restored) is type(sink)
        assert restored.to_dict() == data
        assert restored.stats(3.0) == sink.stats(3.0)
        assert restored.empty == sink.empty


@pytest.mark.parametrize(("make", "feed"), KINDS, ids=IDS)
def test_copy_is_independent(make: Callable[[], Sink], feed: Feed) -> None:
    sink = filled(make, feed, 6)
    before = sink.stats(1.0)
    copy = sink.copy()
    feed(copy, random.Random(99))
    assert sink.stats(1.0) == before


@pytest.mark.parametrize(("make", "feed"), KINDS, ids=IDS)
def test_roll_leaves_cumulative_identical(make: Callable[[], Sink], feed: Feed) -> None:
    rolled, plain = make(), make()
    for seed in range(4):
        feed(rolled, random.Random(seed))
        feed(plain, random.Random(seed))
        rolled.roll()
    assert rolled.to_dict() == plain.to_dict()


def test_counter_and_rate_windows_add_up_to_the_total() -> None:
    c, r = Counter(), Rate()
    windows_c, windows_r = [], []
    rng = random.Random(8)
    for _ in range(5):
        feed_counter(c, rng)
        feed_rate(r, rng)
        windows_c.append(c.roll())
        windows_r.append(r.roll())
    assert sum(w.total for w in windows_c) == c.total
    assert sum(w.passes for w in windows_r) == r.passes
    assert sum(w.fails for w in windows_r) == r.fails
    assert c.roll().empty and r.roll().empty


def test_trend_window_is_a_trend() -> None:
    t = Trend()
    t.add(1.0)
    first = t.roll()
    t.add(2.0)
    second = t.roll()
    assert isinstance(first, Trend) and isinstance(second, Trend)
    assert (first.count, second.count, second.min) == (1, 1, 2.0)


def test_gauge_window_min_max_and_carried_value() -> None:
    g = Gauge()
    assert g.roll().empty
    for v in (5, 1, 8, 3):
        g.set(v)
    assert g.roll().stats() == {"type": "gauge", "value": 3, "min": 1, "max": 8}
    g.set(4)
    assert g.roll().stats() == {"type": "gauge", "value": 4, "min": 4, "max": 4}
    # nothing set in this second: the level is still 4
    assert g.roll().stats() == {"type": "gauge", "value": 4, "min": 4, "max": 4}
    assert (g.min, g.max) == (1, 8)
