"""Executors on a real event loop, with scenarios that only sleep (no sockets)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pytest_novaload.engine.runner import LoadRunner
from pytest_novaload.spec import LoadSpec
from tests.timing import scaled

TIME_FACTOR = float(os.environ.get("NOVALOAD_TIME_FACTOR", "1") or 1)


def run(scenario: Any, **marker: Any) -> Any:
    spec = LoadSpec.parse(marker)
    out = LoadRunner(spec.plan(), scenario, env={}).run()
    return out


def count(out: Any, name: str = "iterations") -> float:
    return float(out.store.aggregate(name).value("count"))


def test_graceful_stop_lets_running_iterations_finish() -> None:
    async def user(vu: Any) -> None:
        # A quick first iteration, then one that outlasts the duration: when the duration
        # ends every VU is inside its second iteration, whatever the machine's speed.
        if vu.iteration > 0:
            await asyncio.sleep(scaled(1.0))

    out = run(user, vus=3, duration=scaled(0.45), graceful_stop=scaled(3.0))
    assert count(out) == 6          # the grace outlasts the second iteration: it counts
    out = run(user, vus=3, duration=scaled(0.45), graceful_stop="0s")
    assert count(out) == 3          # the second iteration was interrupted, not counted


def test_per_vu_and_shared_iterations_are_exact() -> None:
    seen: list[int] = []

    async def user(vu: Any) -> None:
        seen.append(vu.id)
        await asyncio.sleep(0)

    out = run(user, executor="per-vu-iterations", vus=4, iterations=5)
    assert count(out) == 20 and sorted(set(seen)) == [1, 2, 3, 4]
    assert all(seen.count(i) == 5 for i in range(1, 5))
    out = run(user, executor="shared-iterations", vus=4, iterations=7)
    assert count(out) == 7


def test_ramping_vus_follows_the_stages() -> None:
    peak = [0]
    active = [0]

    async def user(vu: Any) -> None:
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await asyncio.sleep(0.02)
        active[0] -= 1

    out = run(user, stages=[(scaled(0.3), 6), (scaled(0.3), 6), (scaled(0.2), 0)], start_vus=0)
    vus = out.store.aggregate("vus")
    assert vus.value("max") == 6 and peak[0] == 6
    assert out.store.aggregate("vus_max").value("max") == 6
    assert count(out) > 0


def test_iteration_that_never_awaits_does_not_hang_the_run() -> None:
    def user(vu: Any) -> None:   # a plain function that never yields to the loop
        pass

    out = run(user, vus=2, duration="200ms")
    assert count(out) > 10


def test_vu_ids_are_unique_and_iteration_counts_per_vu() -> None:
    iterations: dict[int, list[int]] = {}

    async def user(vu: Any) -> None:
        iterations.setdefault(vu.id, []).append(vu.iteration)

    run(user, executor="per-vu-iterations", vus=3, iterations=3)
    assert iterations == {1: [0, 1, 2], 2: [0, 1, 2], 3: [0, 1, 2]}


def test_ramp_down_grace_interrupts_long_iterations_and_ramp_up_restarts() -> None:
    ids_seen: list[int] = []

    async def user(vu: Any) -> None:
        ids_seen.append(vu.id)
        await asyncio.sleep(scaled(0.5))   # ends before the plan does, unless cut

    # 4 VUs, then down to 0 with a short grace (the long iterations are cut), then back up.
    out = run(user, stages=[(0, 4), (scaled(0.2), 4), (0, 0), (scaled(0.3), 0), (0, 4),
                            (scaled(0.2), 4)], start_vus=0, graceful_ramp_down=scaled(0.05),
              graceful_stop="0s")
    assert out.store.aggregate("vus").value("max") == 4
    assert count(out) == 0                    # every iteration was interrupted
    assert ids_seen.count(1) == 2             # VU 1 ran again after the ramp back up


def test_a_crash_inside_the_run_keeps_what_was_measured(monkeypatch: Any) -> None:
    from pytest_novaload.engine.executors.constant_vus import ConstantVusConfig

    async def broken(plan: Any, rt: Any) -> None:
        vu = rt.new_vu()
        for _ in range(3):
            await rt.iterate(vu)
        raise RuntimeError("executor bug")

    monkeypatch.setattr(ConstantVusConfig, "run", broken)

    async def user(vu: Any) -> None:
        pass

    out = run(user, vus=1, duration="1s")
    assert isinstance(out.crashed, RuntimeError)
    assert count(out) == 3


def _starts(scenario_time: float, first: float, **marker: Any
            ) -> tuple[Any, dict[int, list[float]]]:
    """Run a sleeping scenario; each VU's iteration starts in seconds from the plan's start,
    taking the first iteration to start at ``first`` (when the plan starts its first VU)."""
    starts: dict[int, list[float]] = {}
    t0: list[float] = []

    async def user(vu: Any) -> None:
        now = asyncio.get_running_loop().time()
        if not t0:
            t0.append(now - first)
        starts.setdefault(vu.id, []).append(now - t0[0])
        await asyncio.sleep(scenario_time)

    return run(user, **marker), starts


def test_ramping_vus_ramps_down_like_k6() -> None:
    """k6 stops a VU only when the ramp has fallen a whole VU below it: 4 VUs until 1.2 s
    for this plan and the last VU until 1.8 s (the old plan removed each a whole VU early,
    0.2 s sooner here: 3 VUs from the plateau's end at 1.0 s on)."""
    out, starts = _starts(0.01, 0.2, start_vus=0, stages=[("800ms", 4), ("200ms", 4),
                                                           ("800ms", 0)],
                          graceful_ramp_down="0s")
    late = TIME_FACTOR * 0.05
    assert sorted(starts) == [1, 2, 3, 4]
    # VU v is planned from 0.2 * v s: the least late first start places the plan's start.
    t0 = min(min(s) - 0.2 * vu for vu, s in starts.items())
    ends = {vu: max(s) - t0 for vu, s in starts.items()}
    for vu, planned_end in {1: 1.8, 2: 1.6, 3: 1.4, 4: 1.2}.items():
        assert planned_end - 0.07 <= ends[vu] < planned_end + late, (vu, ends)
    assert out.store.aggregate("vus").value("max") == 4


def test_ramping_vus_spike_reaches_its_peak() -> None:
    """[(200ms, 4), (200ms, 0)] plans 4 VUs from 0.2 s to 0.25 s: the 4th VU starts."""
    out, starts = _starts(0.5, 0.05, start_vus=0, stages=[("200ms", 4), ("200ms", 0)],
                          graceful_ramp_down="1s", graceful_stop="1s")
    assert sorted(starts) == [1, 2, 3, 4]
    assert [len(s) for s in starts.values()] == [1, 1, 1, 1]
    assert out.store.aggregate("vus").value("max") == 4
    assert count(out) == 4          # each finished within its grace


def test_ramping_vus_shards_walk_their_part_of_the_k6_plan() -> None:
    """Shard 1 of 2 owns the plan's VU numbers 2 and 4 (k6's striping). Ramping 0 -> 4 -> 0
    over 0.4 + 0.4 s, number 2 runs from 0.2 s to 0.7 s and number 4 from 0.4 s to 0.5 s."""
    spec = LoadSpec.parse({"start_vus": 0, "stages": [("400ms", 4), ("400ms", 0)],
                           "graceful_ramp_down": "0s"})
    seen: dict[int, list[float]] = {}

    async def user(vu: Any) -> None:
        seen.setdefault(vu.id, []).append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.01)

    out = LoadRunner(spec.plan(), user, env={}, rank=1, world=2).run()
    assert sorted(seen) == [2, 4]       # VU ids interleave by rank: shard 1 has 2, 4
    t0 = min(min(seen[2]) - 0.2, min(seen[4]) - 0.4)   # the least late start places t = 0
    late = TIME_FACTOR * 0.03
    assert 0.66 <= max(seen[2]) - t0 < 0.7 + late
    assert min(seen[4]) - t0 < 0.4 + late
    assert 0.46 <= max(seen[4]) - t0 < 0.5 + late
    assert out.store.aggregate("vus").value("max") == 2
