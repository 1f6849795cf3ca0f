"""ScenarioMix (the weighted smooth round robin of load.run) and ExecutionState's bookkeeping."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from pytest_novaload.engine.runtime import ExecutionState, ScenarioMix
from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import MetricStore


async def read(vu: Any) -> None:
    return None


async def write(vu: Any) -> None:
    return None


async def admin(vu: Any) -> None:
    return None


def names(mix: ScenarioMix, n: int) -> list[str]:
    return [mix.next()[0] for _ in range(n)]


def test_a_single_callable_is_the_default_scenario() -> None:
    mix = ScenarioMix(read)
    assert mix.names == ["default"]
    assert [mix.next() for _ in range(3)] == [("default", read)] * 3


def test_a_mapping_of_callables_alternates_evenly() -> None:
    mix = ScenarioMix({"read": read, "write": write})
    assert mix.names == ["read", "write"]
    assert names(mix, 6) == ["read", "write"] * 3


def test_weights_are_exact_in_every_window() -> None:
    mix = ScenarioMix({"read": (read, 80), "write": (write, 20)})
    assert mix.entries[0][2] == 4 and mix.entries[1][2] == 1   # reduced by their gcd
    seq = names(mix, 500)
    for start in range(0, 500, 5):
        assert Counter(seq[start:start + 5]) == {"read": 4, "write": 1}


def test_the_order_is_smooth_not_bursty() -> None:
    # nginx's smooth weighted round robin: the heavy scenario is spread out, not run 5 in a row.
    mix = ScenarioMix({"a": (read, 5), "b": (write, 1), "c": (admin, 1)})
    assert names(mix, 14) == ["a", "a", "b", "a", "c", "a", "a"] * 2


def test_plain_and_weighted_entries_mix_and_weight_zero_is_left_out() -> None:
    mix = ScenarioMix({"read": read, "write": (write, 2), "off": (admin, 0)})
    assert mix.names == ["read", "write"]
    assert Counter(names(mix, 30)) == {"read": 10, "write": 20}


@pytest.mark.parametrize(("scenario", "expected"), [
    ({}, "load.run({}): expected at least one scenario"),
    (42, "load.run(42): expected an async callable taking the vu, or a dict"),
    ({"a": 42}, "scenario 'a': 42: expected an async callable"),
    ({"a": (read, -1)}, "a whole weight >= 0"),
    ({"a": (read, True)}, "a whole weight >= 0"),
    ({"a": (read, 1.5)}, "a whole weight >= 0"),
    ({"a": (read, 1, 2)}, "or (callable, weight)"),
    ({"a": (read, 0), "b": (write, 0)}, "every scenario has weight 0: give at least one"),
])
def test_bad_input_names_the_value_and_the_fix(scenario: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        ScenarioMix(scenario)
    assert expected in str(exc.value)


def test_every_bad_entry_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as exc:
        ScenarioMix({"a": 3, "b": (write, "x"), "c": read})
    assert [p.split(":")[0] for p in exc.value.problems] == ["scenario 'a'", "scenario 'b'"]


def context(scenario: Any = read, *, rank: int = 0, world: int = 1) -> ExecutionState:
    return ExecutionState(MetricStore(), ScenarioMix(scenario), {}, rank=rank, world=world)


def test_vu_ids_interleave_by_rank_so_shards_never_collide() -> None:
    assert [context(rank=rank, world=3).new_vu().id for rank in range(3)] == [1, 2, 3]
    rt = context(rank=1, world=3)
    assert [rt.new_vu().id for _ in range(3)] == [2, 5, 8]
    assert rt.store.aggregate("vus_max").value("value") == 3


def test_active_vus_feed_the_vus_gauge() -> None:
    rt = context()
    rt.vu_started()
    rt.vu_started()
    rt.vu_stopped()
    vus = rt.store.aggregate("vus")
    assert (vus.value("value"), vus.value("max")) == (1, 2)


def test_iterate_records_duration_count_and_failure_per_scenario() -> None:
    async def boom(vu: Any) -> None:
        raise RuntimeError("broken")

    def plain(vu: Any) -> None:   # a plain function is a scenario too
        return None

    rt = context({"ok": plain, "bad": boom})
    vu = rt.new_vu()

    async def go() -> None:
        for _ in range(4):
            await rt.iterate(vu)

    asyncio.run(go())
    assert vu.iteration == 4
    for name, failed in (("ok", 0), ("bad", 2)):
        assert rt.store.aggregate("iterations", {"scenario": name}).value("count") == 2
        assert rt.store.aggregate("iteration_duration", {"scenario": name}).value("count") == 2
        stats = rt.store.aggregate("iteration_failed", {"scenario": name}).stats(1.0)
        assert stats["passes"] == failed


def test_a_usage_error_in_the_scenario_asks_to_stop_the_run() -> None:
    async def misuse(vu: Any) -> None:
        raise ConfigError("vu.http.get('/x'): no base URL")

    reasons: list[str] = []
    rt = context(misuse)
    rt.on_fatal = reasons.append
    asyncio.run(rt.iterate(rt.new_vu()))
    assert reasons == ["the scenario raised a usage error: vu.http.get('/x'): no base URL"]


def test_a_cancelled_iteration_is_not_counted() -> None:
    async def slow(vu: Any) -> None:
        await asyncio.sleep(3600)

    rt = context(slow)

    async def go() -> None:
        task = asyncio.ensure_future(rt.iterate(rt.new_vu()))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert rt.store.aggregate("iterations").value("count") == 0


def test_check_sinks_are_one_per_check_name() -> None:
    rt = context()
    assert rt.check_sink("status is 200") is rt.check_sink("status is 200")
    rt.check_sink("status is 200").add(True)
    rt.check_sink("body ok").add(False)
    assert set(rt.store.series("checks")) == {(("check", "status is 200"),),
                                              (("check", "body ok"),)}


def test_the_former_name_still_imports() -> None:
    from pytest_novaload.engine.runtime import RunContext
    assert RunContext is ExecutionState
