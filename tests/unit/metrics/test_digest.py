"""Digest: accuracy against exact quantiles, shard merging, windows, transport."""

from __future__ import annotations

import json
import math
import random

import pytest

from pytest_novaload.metrics import Digest
from tests.unit.metrics.merging import both_groupings

N_SAMPLES = 200_000


def latency_samples(n: int, seed: int) -> list[float]:
    """Lognormal latencies (median 20 ms) with a 1% tail ten times slower."""
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(20.0), 0.5) * (10.0 if rng.random() < 0.01 else 1.0)
            for _ in range(n)]


def exact_quantile(sorted_xs: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    h = q * (len(sorted_xs) - 1)
    i = int(h)
    j = min(i + 1, len(sorted_xs) - 1)
    return sorted_xs[i] + (h - i) * (sorted_xs[j] - sorted_xs[i])


def fed(xs: list[float]) -> Digest:
    d = Digest()
    for x in xs:
        d.add(x)
    return d


@pytest.fixture(scope="module")
def samples() -> list[float]:
    return latency_samples(N_SAMPLES, seed=7)


@pytest.fixture(scope="module")
def sorted_samples(samples: list[float]) -> list[float]:
    return sorted(samples)


def test_empty_digest_reads_zero() -> None:
    d = Digest()
    assert d.count == 0
    assert (d.sum, d.min, d.max, d.mean) == (0.0, 0.0, 0.0, 0.0)
    assert d.quantile(0.5) == 0.0
    assert d.quantiles([0.0, 0.99, 1.0]) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("q", [-0.1, 1.5, math.nan])
def test_quantile_outside_0_1_is_an_error(q: float) -> None:
    d = Digest()
    d.add(1.0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        d.quantile(q)


def test_exact_statistics_and_extremes() -> None:
    d = Digest()
    d.add_many(float(i) for i in range(1, 101))
    assert d.count == 100
    assert d.sum == 5050.0
    assert (d.min, d.max) == (1.0, 100.0)
    assert d.mean == 50.5
    assert d.quantile(0.0) == 1.0
    assert d.quantile(1.0) == 100.0
    assert d.quantile(0.5) == pytest.approx(50.5, abs=1.0)


def test_accuracy_against_exact_quantiles(samples: list[float],
                                          sorted_samples: list[float]) -> None:
    d = fed(samples)
    assert d.count == N_SAMPLES
    assert d.min == sorted_samples[0]
    assert d.max == sorted_samples[-1]
    assert d.sum == pytest.approx(math.fsum(samples), rel=1e-12)
    for q in (0.5, 0.95, 0.99):
        assert d.quantile(q) == pytest.approx(exact_quantile(sorted_samples, q), rel=0.01), q


def test_known_answer_mix_of_two_latencies() -> None:
    d = Digest()
    for i in range(10_000):
        d.add(60.0 if i % 10 == 9 else 5.0)
    assert 5.0 <= d.quantile(0.5) <= 9.0
    assert 60.0 <= d.quantile(0.95) <= 70.0


def test_merge_of_shards_equals_single_digest(samples: list[float],
                                              sorted_samples: list[float]) -> None:
    """xdist: the controller's merge of 8 shard digests matches one digest fed everything."""
    rng = random.Random(3)
    shards = [Digest() for _ in range(8)]
    for x in samples:
        shards[rng.randrange(8)].add(x)
    merged = Digest()
    for shard in shards:
        merged.merge(shard)
    single = fed(samples)

    assert merged.count == single.count == N_SAMPLES
    assert (merged.min, merged.max) == (single.min, single.max)
    assert merged.sum == pytest.approx(single.sum, rel=1e-12)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        assert merged.quantile(q) == pytest.approx(single.quantile(q), rel=0.01), q
    for q in (0.5, 0.95, 0.99):
        assert merged.quantile(q) == pytest.approx(exact_quantile(sorted_samples, q),
                                                   rel=0.01), q


def test_many_merges_stay_accurate(sorted_samples: list[float]) -> None:
    """More merges than are kept aside: they get combined along the way, nothing is lost."""
    parts = [sorted_samples[i::50] for i in range(50)]
    merged = Digest()
    for part in parts:
        merged.merge(fed(part))
    assert merged.count == N_SAMPLES
    assert merged.quantile(0.95) == pytest.approx(exact_quantile(sorted_samples, 0.95),
                                                  rel=0.01)


def test_merge_is_associative() -> None:
    a, b, c = (fed(latency_samples(20_000, seed)) for seed in (1, 2, 3))
    left, right = both_groupings(a, b, c)
    assert left.count == right.count == 60_000
    assert (left.min, left.max) == (right.min, right.max)
    assert left.sum == pytest.approx(right.sum, rel=1e-12)
    for q in (0.5, 0.95, 0.99):
        assert left.quantile(q) == pytest.approx(right.quantile(q), rel=0.01)


def test_merge_leaves_the_other_unchanged_and_empty_is_neutral() -> None:
    a = fed([1.0, 2.0, 3.0])
    b = fed([10.0, 20.0])
    before = b.to_dict()
    a.merge(b)
    assert b.to_dict() == before
    assert (a.count, a.min, a.max) == (5, 1.0, 20.0)
    a.merge(Digest())
    assert a.count == 5
    empty = Digest()
    empty.merge(b)
    assert (empty.count, empty.sum, empty.min, empty.max) == (2, 30.0, 10.0, 20.0)
    b.add(100.0)  # a later add to b does not reach what was merged from it
    assert a.max == 20.0


def test_reads_do_not_change_results() -> None:
    """Reading between adds must not move later quantiles (reads never flush)."""
    xs = latency_samples(5_000, seed=11)
    read = Digest()
    for i, x in enumerate(xs):
        read.add(x)
        if i % 333 == 0:
            read.quantile(0.99)
            read.to_dict()
    assert read.to_dict() == fed(xs).to_dict()


def test_copy_is_independent() -> None:
    d = fed([1.0, 2.0])
    c = d.copy()
    d.add(50.0)
    c.add(-1.0)
    assert (d.count, d.min, d.max) == (3, 1.0, 50.0)
    assert (c.count, c.min, c.max) == (3, -1.0, 2.0)


def test_to_dict_round_trip_is_exact_and_json() -> None:
    d = fed(latency_samples(3_000, seed=5))
    data = d.to_dict()
    restored = Digest.from_dict(json.loads(json.dumps(data)))
    assert restored.to_dict() == data
    assert restored.count == d.count
    assert restored.quantiles([0.5, 0.99]) == d.quantiles([0.5, 0.99])
    empty = Digest.from_dict(json.loads(json.dumps(Digest().to_dict())))
    assert (empty.count, empty.min, empty.max, empty.quantile(0.5)) == (0, 0.0, 0.0, 0.0)
    empty.add(-3.0)
    assert empty.max == -3.0  # an empty restored digest has no made-up extremes


def test_compact_is_small_and_close() -> None:
    d = fed(latency_samples(50_000, seed=9))
    small = d.compact(100)
    assert len(small.to_dict()["tdigest"]) < len(d.to_dict()["tdigest"]) / 5
    assert (small.count, small.min, small.max, small.sum) == (d.count, d.min, d.max, d.sum)
    assert small.quantile(0.5) == pytest.approx(d.quantile(0.5), rel=0.05)


def test_roll_returns_the_window_and_leaves_the_total_alone() -> None:
    xs = latency_samples(3_000, seed=13)
    rolled = Digest()
    plain = Digest()
    windows = []
    for i, x in enumerate(xs):
        rolled.add(x)
        plain.add(x)
        if i in (99, 100, 1_499, 2_999):
            windows.append(rolled.roll())
    # the cumulative digest is identical whether roll() was called or not
    assert rolled.to_dict() == plain.to_dict()
    # each window holds exactly the samples of its interval
    bounds = [(0, 100), (100, 101), (101, 1_500), (1_500, 3_000)]
    for window, (lo, hi) in zip(windows, bounds, strict=True):
        part = xs[lo:hi]
        assert window.count == len(part)
        assert (window.min, window.max) == (min(part), max(part))
        assert window.sum == pytest.approx(math.fsum(part), rel=1e-12)
    assert rolled.roll().count == 0


def test_rolled_window_is_independent_of_later_adds() -> None:
    d = Digest()
    d.add_many([1.0, 2.0, 3.0])
    first = d.roll()
    d.add(4.0)
    second = d.roll()
    d.add_many([5.0] * 1_000)  # flushes: must not reach windows already handed out
    assert (first.count, first.max) == (3, 3.0)
    assert (second.count, second.min, second.max) == (1, 4.0, 4.0)
    assert d.count == 1_004


def test_roll_window_includes_merged_values() -> None:
    d = Digest()
    d.roll()
    d.merge(fed([7.0, 8.0]))
    window = d.roll()
    assert (window.count, window.min, window.max) == (2, 7.0, 8.0)
