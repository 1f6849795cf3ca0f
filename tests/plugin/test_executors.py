"""Executors on a real event loop, with scenarios that only sleep (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

from pytest_novaload.engine.runner import LoadRunner
from pytest_novaload.spec import LoadSpec


def run(scenario: Any, **marker: Any) -> Any:
    spec = LoadSpec.parse(marker)
    out = LoadRunner(spec.plan(), scenario, env={}).run()
    return out


def count(out: Any, name: str = "iterations") -> float:
    return float(out.store.aggregate(name).value("count"))


def test_graceful_stop_lets_running_iterations_finish() -> None:
    async def user(vu: Any) -> None:
        await asyncio.sleep(0.3)

    # Iterations start at 0 and 0.3 s; the second ends after the 0.45 s duration.
    out = run(user, vus=3, duration="450ms", graceful_stop="2s")
    assert count(out) == 6
    out = run(user, vus=3, duration="450ms", graceful_stop="0s")
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

    out = run(user, stages=[("300ms", 6), ("300ms", 6), ("200ms", 0)], start_vus=0)
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
        await asyncio.sleep(0.5)

    # 4 VUs, then down to 0 with a 50 ms grace (the 500 ms iterations are cut), then back up.
    out = run(user, stages=[("0s", 4), ("200ms", 4), ("0s", 0), ("300ms", 0), ("0s", 4),
                            ("200ms", 4)], start_vus=0, graceful_ramp_down="50ms",
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
