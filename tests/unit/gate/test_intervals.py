"""Confidence intervals from per-interval digests: coverage, correlation, edge cases."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_novaload.gate.intervals import (
    MIN_BATCHES,
    MIN_TAIL,
    block_length,
    ci95_fields,
    fraction_interval,
    percentile_interval,
    stat_interval,
    t_quantile,
    throughput_interval,
)
from pytest_novaload.metrics import Counter, Rate, Trend


def _run(seed: int, *, seconds: int = 60, rate: int = 100, rho: float = 0.0,
         spread: float = 0.3) -> tuple[list[Trend], Trend]:
    """Per-second digests of exponential latencies whose scale follows an AR(1) server state."""
    rnd = random.Random(seed)
    whole = Trend()
    wins: list[Trend] = []
    level = 0.0
    for _ in range(seconds):
        level = rho * level + math.sqrt(1 - rho * rho) * rnd.gauss(0, 1)
        t = Trend()
        scale = 10 * math.exp(spread * level)
        for _ in range(rate):
            v = rnd.expovariate(1 / scale)
            t.add(v)
            whole.add(v)
        wins.append(t)
    return wins, whole


def test_t_quantile_matches_tables() -> None:
    for df, want in [(1, 12.706), (2, 4.303), (4, 2.776), (5, 2.571), (10, 2.228),
                     (30, 2.042)]:
        assert t_quantile(0.975, df) == pytest.approx(want, abs=2e-3)
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)


def test_interval_contains_estimate_and_is_ordered() -> None:
    wins, whole = _run(1)
    for n in (50.0, 95.0, 99.0, 99.9, 100.0):
        iv = percentile_interval(wins, whole, n)
        assert iv.known and iv.lo is not None and iv.hi is not None
        assert iv.lo <= iv.estimate <= iv.hi
        assert iv.estimate == pytest.approx(whole.quantile(n / 100))
    assert percentile_interval(wins, whole, 99).hi > percentile_interval(wins, whole, 95).hi


def test_coverage_of_independent_seconds_is_near_95_percent() -> None:
    truth = _run(999, seconds=2000)[1].quantile(0.95)
    hits = 0
    for seed in range(60):
        wins, whole = _run(seed)
        iv = percentile_interval(wins, whole, 95)
        assert iv.lo is not None and iv.hi is not None
        hits += iv.lo <= truth <= iv.hi
    assert hits >= 51  # 95% of 60 is 57; a naive iid interval on this data covers ~75%


def test_correlated_seconds_give_wider_intervals_than_the_iid_formula() -> None:
    wins, whole = _run(3, rho=0.8, spread=0.5)
    iv = percentile_interval(wins, whole, 95)
    assert iv.deff > 2.0           # seconds share the server's state: far from iid
    iid_h = 1.96 * math.sqrt(0.95 * 0.05 / whole.count)
    assert iv.se > 1.4 * iid_h / 1.96


def test_block_length_grows_with_correlation() -> None:
    rnd = random.Random(5)
    white = [rnd.gauss(0, 1) for _ in range(300)]
    ar: list[float] = []
    x = 0.0
    for _ in range(300):
        x = 0.9 * x + rnd.gauss(0, 1)
        ar.append(x)
    assert block_length(white)[0] <= 2
    assert block_length(ar)[0] >= 10
    assert block_length(ar[:20]) == (20 // MIN_BATCHES, True)


def test_tail_percentiles_get_batches_holding_enough_tail_samples() -> None:
    wins, whole = _run(8, seconds=60, spread=0.0)
    p99 = percentile_interval(wins, whole, 99)
    assert p99.block * 100 * 0.01 >= MIN_TAIL and p99.batches >= MIN_BATCHES
    assert percentile_interval(wins, whole, 95).block < p99.block
    short = percentile_interval(wins[:20], whole, 99.9)   # as long as the run allows
    assert short.batches == MIN_BATCHES and "capped" in short.reason


def test_too_few_intervals_is_unknown_not_narrow() -> None:
    wins, whole = _run(1, seconds=MIN_BATCHES - 1)
    iv = percentile_interval(wins, whole, 95)
    assert not iv.known and iv.to_list() is None
    assert "at least" in iv.reason and iv.estimate == pytest.approx(whole.quantile(0.95))
    one = percentile_interval([whole], whole, 99)
    assert not one.known


def test_empty_digests() -> None:
    iv = percentile_interval([], Trend(), 95)
    assert not iv.known and iv.estimate == 0.0 and iv.reason == "no samples"
    assert not percentile_interval([Trend()] * 10, Trend(), 95).known
    assert not fraction_interval([Rate()] * 10).known
    assert not throughput_interval([]).known


def test_empty_windows_are_skipped_for_trends() -> None:
    wins, whole = _run(2, seconds=30)
    gappy = [w for pair in zip(wins, [Trend()] * len(wins), strict=True) for w in pair]
    a = percentile_interval(wins, whole, 95)
    b = percentile_interval(gappy, whole, 95)
    assert b.windows == a.windows == 30


def test_constant_values_collapse_to_a_point() -> None:
    wins = []
    whole = Trend()
    for _ in range(20):
        t = Trend()
        t.add_many([2.0] * 50)
        whole.add_many([2.0] * 50)
        wins.append(t)
    iv = percentile_interval(wins, whole, 95)
    assert iv.to_list() == [2.0, 2.0]


def test_error_rate_interval_is_sound_at_zero_errors() -> None:
    wins = [Rate(0, 100) for _ in range(30)]
    iv = fraction_interval(wins)
    assert iv.lo == 0.0 and iv.hi is not None and 0.0 < iv.hi < 3.5 / 3000 * 1.5
    bursty = [Rate(30, 70) if i % 10 == 0 else Rate(0, 100) for i in range(60)]
    smooth = [Rate(3, 97) for _ in range(60)]
    b, s = fraction_interval(bursty), fraction_interval(smooth)
    assert b.estimate == pytest.approx(s.estimate)
    assert b.hi is not None and s.hi is not None and b.hi - b.estimate > s.hi - s.estimate


def test_throughput_interval() -> None:
    rnd = random.Random(4)
    wins = [Counter(100 + rnd.randint(-10, 10)) for _ in range(60)]
    total = sum(w.total for w in wins)
    iv = throughput_interval(wins, total=total, duration=60.0)
    assert iv.lo is not None and iv.hi is not None
    assert iv.lo < total / 60 < iv.hi and iv.hi - iv.lo < 10
    steady = throughput_interval([Counter(100)] * 10)
    assert steady.to_list() == [100.0, 100.0]
    with pytest.raises(ValueError, match="lengths"):
        throughput_interval([Counter(1)], [1.0, 1.0])


def test_stat_interval_dispatch_and_ci95_fields() -> None:
    wins, whole = _run(6, seconds=20)
    assert stat_interval("med", wins, whole).estimate == pytest.approx(whole.quantile(0.5))
    avg = stat_interval("avg", wins, whole)
    assert avg.lo is not None and avg.lo < whole.mean < (avg.hi or 0)
    with pytest.raises(ValueError, match="no confidence interval for 'max'"):
        stat_interval("max", wins, whole)
    fields = ci95_fields(wins, whole, ["p(95)", "p(99)", "max"])
    assert set(fields["ci95"]) == {"p(95)", "p(99)"}
    assert fields["ci95_basis"]["p(95)"]["windows"] == 20
    assert ci95_fields(wins, whole, ["max"]) == {}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.floats(0.0, 1e4, allow_nan=False), max_size=30), max_size=15),
       st.floats(0.1, 100.0))
def test_never_crashes_and_brackets_the_estimate(values: list[list[float]], n: float) -> None:
    wins = []
    whole = Trend()
    for vs in values:
        t = Trend()
        t.add_many(vs)
        whole.add_many(vs)
        wins.append(t)
    iv = percentile_interval(wins, whole, n)
    if iv.known:
        assert iv.lo is not None and iv.hi is not None
        assert iv.lo <= iv.estimate <= iv.hi
        assert math.isfinite(iv.lo) and math.isfinite(iv.hi)


def test_throughput_interval_weighs_partial_seconds_by_their_length() -> None:
    # A steady 100 req/s over 5.4 s: the first second covered 0.6 s, the last 0.2 s and 0.4 s
    # of it were cut at the end; counted as whole seconds they look like a ramp.
    lengths = [0.6, 1.0, 1.0, 1.0, 1.0, 0.4]
    wins = [Counter(round(100 * s)) for s in lengths]
    total = sum(w.total for w in wins)
    naive = throughput_interval(wins, total=total, duration=sum(lengths))
    weighed = throughput_interval(wins, lengths, total=total, duration=sum(lengths))
    assert naive.lo is not None and naive.hi is not None and naive.hi - naive.lo > 20
    assert weighed.to_list() == [100.0, 100.0]
    via_stat = stat_interval("rate", wins, Counter(total), duration=sum(lengths),
                             lengths=lengths)
    assert via_stat.to_list() == [100.0, 100.0]
