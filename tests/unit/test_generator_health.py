"""Generator health: a CPU-bound generator is saturated, a stalled loop is stalled, not both."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest
import uvloop

from pytest_novaload.engine.runner import GeneratorHealth, LoadRunner, Measurements
from pytest_novaload.metrics import MetricStore
from pytest_novaload.metrics.errors import ErrorLog
from pytest_novaload.xdist.merge import ShardPart, merge_generators


def health(lag_ms: float, gc_ms: float = 0.0) -> GeneratorHealth:
    h = GeneratorHealth()
    for _ in range(100):
        h.lag(lag_ms)
    h.gc_max_ms = gc_ms
    return h


def test_idle_generator_is_ok() -> None:
    s = health(1.0).summary(cpu_s=1.0, wall_s=10.0)
    assert (s["verdict"], s["saturated"], s["stalled"]) == ("ok", False, False)


def test_all_cpu_used_is_saturated() -> None:
    s = health(80.0).summary(cpu_s=9.9, wall_s=10.0)
    assert s["verdict"].startswith("saturated") and s["saturated"] and not s["stalled"]


def test_a_gc_stall_is_a_stall_not_saturation() -> None:
    s = health(80.0, gc_ms=70.0).summary(cpu_s=2.0, wall_s=10.0)
    assert s["verdict"].startswith("loop stalls: garbage collection")
    assert s["stalled"] and not s["saturated"]


def test_a_sub_three_second_run_is_never_called_saturated() -> None:
    s = health(1.0).summary(cpu_s=1.0, wall_s=1.0)
    assert not s["saturated"]


def test_merged_health_keeps_both_flags_and_the_worst_shard() -> None:
    def part(rank: int, gen: dict[str, object]) -> ShardPart:
        return ShardPart(f"gw{rank}", rank, Measurements(MetricStore(), ErrorLog(), 0.0, 1.0,
                                                         1.0, generator=gen))
    stalled = health(80.0, gc_ms=70.0).summary(cpu_s=2.0, wall_s=10.0)
    ok = health(1.0).summary(cpu_s=1.0, wall_s=10.0)
    g = merge_generators([part(0, ok), part(1, stalled)])
    assert g["stalled"] is True and g["saturated"] is False
    assert g["verdict"] == stalled["verdict"]


def _probe_lags(loop_factory: Callable[[], asyncio.AbstractEventLoop],
                block_s: float) -> list[float]:
    """Run LoadRunner._sample for a few probes (one callback blocking the loop) on a stand-in."""
    holder = SimpleNamespace(health=GeneratorHealth())
    holder._ready_probe = functools.partial(LoadRunner._ready_probe, holder)

    async def main() -> None:
        blocked = not block_s
        task = asyncio.create_task(LoadRunner._sample(holder))  # type: ignore[arg-type]
        while len(holder.health.lags) < 3:
            await asyncio.sleep(0.05)
            if not blocked and len(holder.health.lags) == 1:
                time.sleep(block_s)  # a burst of work that holds the loop
                blocked = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
    return holder.health.lags


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_loop_lag_probe_resolves_below_a_millisecond(loop: str) -> None:
    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    lags = _probe_lags(factory, 0.0)
    # perf_counter, not uvloop's whole-millisecond loop.time(): fractions of a ms show
    assert lags and all(lag > 0 for lag in lags)
    assert any(lag != round(lag) for lag in lags)


def test_loop_lag_probe_sees_a_blocked_loop() -> None:
    lags = _probe_lags(uvloop.new_event_loop, 0.3)
    # the 300 ms block, less the part of the 0.1 s probe sleep it overlapped (and the 50 ms
    # step of main before it started): far above the sub-ms lags of an idle loop
    assert max(lags) >= 150.0
