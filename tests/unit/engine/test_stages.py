"""Stage plans are pure functions of time: checked with plain numbers, no clock."""

from __future__ import annotations

import pytest

from pytest_novaload.engine.stages import Ramp, Stage, arrival_times, share, vus_at


def test_ramp_is_linear_between_targets_and_holds_the_last() -> None:
    r = Ramp(0, (Stage(10, 100), Stage(10, 100), Stage(10, 0)))
    assert [vus_at(r, t) for t in (0, 5, 10, 15, 20, 25, 30, 99)] == [0, 50, 100, 100, 100, 50,
                                                                      0, 0]
    assert r.total == 30
    assert r.peak() == 100


def test_ramp_from_start_value() -> None:
    r = Ramp(10, (Stage(2, 20),))
    assert r.value(0) == 10 and r.value(1) == 15 and r.value(2) == 20


def test_zero_length_stage_jumps() -> None:
    r = Ramp(0, (Stage(0, 50), Stage(1, 50)))
    assert vus_at(r, 0) == 50


@pytest.mark.parametrize(("total", "world", "parts"), [
    (3, 2, [2, 1]), (4, 2, [2, 2]), (1, 4, [1, 0, 0, 0]), (10, 3, [4, 3, 3]), (0, 2, [0, 0])])
def test_share_splits_with_remainders(total: int, world: int, parts: list[int]) -> None:
    assert [share(total, k, world) for k in range(world)] == parts
    assert sum(parts) == total


def test_constant_arrival_times_are_evenly_spaced() -> None:
    r = Ramp(10, (Stage(2, 10),))
    starts = list(arrival_times(r, 1.0))
    assert len(starts) == 20
    assert starts[:3] == pytest.approx([0.0, 0.1, 0.2])


def test_ramping_arrival_count_is_the_integral() -> None:
    # 0 -> 100/s over 10 s is 500 iterations; then 100/s for 5 s is 500 more.
    r = Ramp(0, (Stage(10, 100), Stage(5, 100)))
    starts = list(arrival_times(r, 1.0))
    assert len(starts) == pytest.approx(1000, abs=1)
    assert starts == sorted(starts)
    # Early starts are sparse, late ones dense: the open model follows the rate.
    assert sum(1 for s in starts if s < 5) == pytest.approx(125, abs=1)
    assert r.integral(0, 10) == pytest.approx(500)


def test_time_unit_scales_the_rate() -> None:
    r = Ramp(30, (Stage(60, 30),))
    assert len(list(arrival_times(r, 60.0))) == 30  # 30 per minute for a minute


def test_zero_rate_stage_starts_nothing() -> None:
    r = Ramp(0, (Stage(5, 0), Stage(1, 10)))
    starts = list(arrival_times(r, 1.0))
    assert all(s >= 5 for s in starts)
    assert len(starts) == 5  # ramp 0 -> 10 over 1 s
