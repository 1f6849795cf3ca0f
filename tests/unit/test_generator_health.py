"""Generator health: a CPU-bound generator is saturated, a stalled loop is stalled, not both;
lag while the plan starts many VUs at once is a planned burst, lag that outlasts it is not."""

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


def samples(*runs: tuple[int, float, int]) -> GeneratorHealth:
    """A health fed ``count`` probes of (lag ms, plan starts) for each (count, lag, starts)."""
    h = GeneratorHealth()
    for count, lag_ms, started in runs:
        for _ in range(count):
            h.lag(lag_ms, started)
    return h


def test_lag_while_the_plan_starts_many_vus_at_once_is_a_planned_burst() -> None:
    # 2 s of a quiet generator, a 0.3 s burst while 2,000 VUs start, then 10 s quiet again
    h = samples((20, 0.5, 0), (3, 300.0, 700), (100, 0.8, 1))
    s = h.summary(cpu_s=1.0, wall_s=12.0)
    assert s["planned_burst"] and not s["stalled"] and not s["saturated"]
    assert s["verdict"].startswith("planned burst: the plan started 2,100 VUs or iterations "
                                   "at once"), s["verdict"]
    assert "not a generator that cannot keep up" in s["verdict"]
    assert s["burst_starts"] == 2100 and s["burst_lag_p99_ms"] == 300.0
    assert s["steady_lag_p99_ms"] <= 1.0
    assert s["burst_peak_starts_per_s"] == round(700 / 0.4)


def test_lag_that_outlasts_the_burst_is_a_generator_that_cannot_keep_up() -> None:
    h = samples((3, 300.0, 700), (100, 90.0, 1))
    s = h.summary(cpu_s=3.0, wall_s=10.0)
    assert s["stalled"] and not s["planned_burst"]
    assert s["verdict"].startswith("loop stalls: event-loop lag p99 300 ms at 30% CPU, and 90 "
                                   "ms outside the plan's bursts of starts (2,100 VUs or "
                                   "iterations at once): the generator does not keep up"), \
        s["verdict"]


def test_a_steady_arrival_rate_is_the_load_not_a_burst() -> None:
    # 5,000 iterations a second all along: the generator lags under the load itself
    s = samples((100, 80.0, 500)).summary(cpu_s=4.0, wall_s=10.0)
    assert s["stalled"] and not s["planned_burst"] and "burst_starts" not in s


def test_a_burst_the_loop_absorbs_is_ok() -> None:
    s = samples((20, 0.5, 0), (3, 20.0, 700), (100, 0.8, 1)).summary(cpu_s=1.0, wall_s=12.0)
    assert s["verdict"] == "ok" and not s["planned_burst"]
    assert s["burst_starts"] == 2100   # the figures are kept all the same


def test_few_starts_never_make_a_burst() -> None:
    s = samples((3, 300.0, 40), (100, 0.8, 0)).summary(cpu_s=1.0, wall_s=10.0)
    assert s["stalled"] and not s["planned_burst"]
    assert "not explained by the plan's starts" in s["verdict"]


def test_merged_health_names_a_shards_planned_burst() -> None:
    def part(rank: int, gen: dict[str, object]) -> ShardPart:
        return ShardPart(f"gw{rank}", rank, Measurements(MetricStore(), ErrorLog(), 0.0, 1.0,
                                                         1.0, generator=gen))
    burst = samples((20, 0.5, 0), (3, 300.0, 700), (100, 0.8, 1)).summary(1.0, 12.0)
    ok = health(1.0).summary(cpu_s=1.0, wall_s=10.0)
    g = merge_generators([part(0, ok), part(1, burst)])
    assert g["planned_burst"] is True and g["stalled"] is False
    assert g["verdict"] == burst["verdict"]
    stalled = health(80.0, gc_ms=70.0).summary(cpu_s=2.0, wall_s=10.0)
    g = merge_generators([part(0, burst), part(1, stalled)])
    assert g["verdict"] == stalled["verdict"] and g["planned_burst"] and g["stalled"]


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
