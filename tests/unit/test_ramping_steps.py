"""ramping-vus plans as k6 builds them: the step tables of k6 v1.1.0's ramping_vus_test.go.

k6's segment ``i/3:(i+1)/3`` of the sequence ``0,1/3,2/3,1`` is our shard ``i`` of 3, and
``0:1/2`` is shard 0 of 2: k6 stripes VU numbers over equal segments as ``share`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pytest_novaload.engine.stages import (
    Ramp,
    Stage,
    ramping_vus_allowed,
    ramping_vus_steps,
    share,
)

Plan = list[tuple[float, int]]


def steps(start: int, stages: Sequence[tuple[float, int]], *, rank: int = 0,
          world: int = 1) -> Plan:
    ramp = Ramp(start, tuple(Stage(d, t) for d, t in stages))
    return ramping_vus_steps(ramp, rank=rank, world=world)


EXAMPLE = [(2, 6), (5, 1), (4, 5), (4, 1), (3, 4), (2, 4), (0, 1), (3, 1)]
EXAMPLE_STEPS: Plan = [(0, 4), (1, 5), (2, 6), (3, 5), (4, 4), (5, 3), (6, 2), (7, 1), (8, 2),
                       (9, 3), (10, 4), (11, 5), (12, 4), (13, 3), (14, 2), (15, 1), (16, 2),
                       (17, 3), (18, 4), (20, 1)]
TUPLE = [*EXAMPLE, (0, 5), (3, 5), (0, 0), (2, 2), (2, 0), (4, 4)]
TUPLE_STEPS: Plan = [*EXAMPLE_STEPS, (23, 5), (26, 0), (27, 1), (28, 2), (29, 1), (30, 0),
                     (31, 1), (32, 2), (33, 3), (34, 4)]


def test_execution_plan_example() -> None:
    assert steps(4, EXAMPLE) == EXAMPLE_STEPS


def test_execution_tuple_whole() -> None:
    assert steps(4, TUPLE) == TUPLE_STEPS


@pytest.mark.parametrize(("rank", "expected"), [
    (0, [(0, 2), (5, 1), (10, 2), (13, 1), (18, 2), (20, 1), (23, 2), (26, 0), (27, 1),
         (30, 0), (31, 1), (34, 2)]),
    (1, [(0, 1), (1, 2), (4, 1), (7, 0), (8, 1), (11, 2), (12, 1), (15, 0), (16, 1),
         (20, 0), (23, 2), (26, 0), (28, 1), (29, 0), (32, 1)]),
    (2, [(0, 1), (2, 2), (3, 1), (6, 0), (9, 1), (14, 0), (17, 1), (20, 0), (23, 1),
         (26, 0), (33, 1)]),
])
def test_execution_tuple_thirds(rank: int, expected: Plan) -> None:
    assert steps(4, TUPLE, rank=rank, world=3) == expected


UP_DOWN = [(2, 2), (2, 0), (2, 2), (2, 0)]


@pytest.mark.parametrize(("start", "stages", "rank", "world", "expected"), [
    (2, [(0, 5), (2, 3)], 0, 1, [(0, 2), (0, 5), (1, 4), (2, 3)]),  # up, then down at once
    (3, [(2, 5)], 0, 1, [(0, 3), (1, 4), (2, 5)]),                  # from start_vus upwards
    (0, UP_DOWN, 0, 1, [(0, 0), (1, 1), (2, 2), (3, 1), (4, 0), (5, 1), (6, 2), (7, 1),
                        (8, 0)]),
    (0, UP_DOWN, 0, 2, [(0, 0), (1, 1), (4, 0), (5, 1), (8, 0)]),   # 0:1/2
    (0, UP_DOWN, 1, 2, [(0, 0), (2, 1), (3, 0), (6, 1), (7, 0)]),   # 1/2:1
    (0, UP_DOWN, 2, 3, [(0, 0)]),                                   # 2/3:1 of thirds
    (0, [(5, 5), (5, 0)], 0, 1, [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 4),
                                 (7, 3), (8, 2), (9, 1), (10, 0)]),
])
def test_corner_cases(start: int, stages: list[tuple[float, int]], rank: int, world: int,
                      expected: Plan) -> None:
    assert steps(start, stages, rank=rank, world=world) == expected


@pytest.mark.parametrize(("graceful_stop", "expected"), [
    (30, [(0, 4), (1, 5), (2, 6), (33, 5), (42, 4), (50, 1), (53, 0)]),
    (80, [(0, 4), (1, 5), (2, 6), (33, 5), (42, 4), (50, 1), (103, 0)]),
    (3, [(0, 4), (1, 5), (2, 6), (26, 0)]),
    (0, [(0, 4), (1, 5), (2, 6), (23, 0)]),
])
def test_allowed_with_graceful_ramp_down_30s(graceful_stop: float, expected: Plan) -> None:
    end = sum(d for d, _ in EXAMPLE) + graceful_stop
    assert ramping_vus_allowed(steps(4, EXAMPLE), 30, end) == expected


def test_allowed_without_grace_is_the_plan_ending_at_zero() -> None:
    plan = steps(4, EXAMPLE)
    assert ramping_vus_allowed(plan, 0, 23) == [*plan, (23, 0)]


def test_issue_9_shapes() -> None:
    # k6: 4 -> 3 at t=6, the last VU stops at 9 (the old plan went to 3 at 5, stopped at 8)
    assert steps(0, [(4, 4), (1, 4), (4, 0)]) == [
        (0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (6, 3), (7, 2), (8, 1), (9, 0)]
    # the spike reaches 4 VUs at t=1 and holds them until 1.25
    assert steps(0, [(1, 4), (1, 0)]) == [
        (0, 0), (0.25, 1), (0.5, 2), (0.75, 3), (1, 4), (1.25, 3), (1.5, 2), (1.75, 1),
        (2, 0)]
    # start_vus=1 ramping to 0 keeps its VU for the whole second
    assert steps(1, [(1, 0)]) == [(0, 1), (1, 0)]


@pytest.mark.parametrize("world", [2, 3, 4, 7])
def test_shards_sum_to_the_whole_plan_at_every_instant(world: int) -> None:
    stages = [(3, 17), (2, 5), (0, 9), (4, 0), (1, 3), (5, 11)]
    whole = steps(2, stages)
    shards = [steps(2, stages, rank=r, world=world) for r in range(world)]

    def at(plan: Plan, t: float) -> int:
        return [v for s, v in plan if s <= t][-1]
    instants = sorted({s for s, _ in whole} | {s + 0.001 for s, _ in whole})
    for t in instants:
        assert sum(at(s, t) for s in shards) == at(whole, t)
    assert any(at(s, t) != at(shards[0], t) for s in shards for t in instants)


def test_share_matches_k6_striping() -> None:
    assert [share(3, r, 2) for r in range(2)] == [2, 1]
    assert [share(4, r, 3) for r in range(3)] == [2, 1, 1]
