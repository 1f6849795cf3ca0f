"""VUs started together begin their first iteration spread out, not in one burst."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import pytest

from pytest_novaload.engine.executors.base import START_STEP, StartPacer
from pytest_novaload.engine.runner import LoadRunner
from pytest_novaload.spec import LoadSpec
from tests.timing import scaled


@pytest.mark.parametrize(("count", "batch"), [(0, 1), (1, 1), (10, 10), (1000, 10),
                                              (10_000, 10), (100_000, 100)])
def test_the_pacer_releases_batches_a_tick_apart_over_at_most_a_second(
        count: int, batch: int) -> None:
    pacer = StartPacer(count)
    assert pacer.batch == batch
    # the first batch starts at once, the next one waits for the pacer's first tick
    assert all(pacer.gate(k) is None for k in range(min(count, batch)))
    if count > batch:
        assert pacer.gate(batch) is not None and pacer.gate(count - 1) is not None


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.parametrize("marker", [
    {"vus": 1000, "duration": "2s"},
    {"executor": "ramping-vus", "start_vus": 0, "stages": [("0s", 1000), ("2s", 1000)]},
])
def test_a_busy_loop_slows_the_starts_instead_of_catching_up_in_one_burst(
        marker: dict[str, Any]) -> None:
    """Each first iteration holds the loop 2 ms (opening a connection costs like that): the
    pacer's next tick comes late and the rest wait, so the loop stays responsive; starting
    them on a fixed schedule ran every overdue start in one go (lag ~1.7 s measured)."""

    async def user(vu: Any) -> None:
        if vu.iteration == 0:
            _busy(0.002)
        await vu.sleep(0.5)

    spec = LoadSpec.parse({**marker, "graceful_stop": "0s"})
    measured = LoadRunner(spec.plan(), user, env={}).run()
    assert measured.store.aggregate("iterations").value("count") >= 1000
    assert measured.generator["loop_lag_max_ms"] < scaled(0.4) * 1000, measured.generator


@pytest.mark.parametrize("marker", [
    {"vus": 1000, "duration": "1s"},
    {"executor": "ramping-vus", "start_vus": 1000, "stages": [("1s", 1000)]},
])
def test_a_thousand_vus_do_not_start_their_first_iteration_at_once(marker: dict[str, Any]) -> None:
    first: dict[int, float] = {}

    async def user(vu: Any) -> None:
        if vu.iteration == 0:
            first[vu.id] = time.perf_counter()
        await asyncio.sleep(scaled(2.0))  # one iteration each

    spec = LoadSpec.parse({**marker, "graceful_stop": "0s"})
    LoadRunner(spec.plan(), user, env={}).run()
    assert len(first) == 1000
    starts = [first[k] for k in sorted(first)]
    # planned: 0.1 s from the first VU to the last (1000 x 100 us); sleeps never end early
    # by more than the loop clock's millisecond, so the span is at least most of it
    assert starts[-1] - starts[0] >= 999 * START_STEP - 0.002
    # in VU order (within the loop's timer granularity): the later half starts later
    assert statistics.mean(starts[:500]) + 0.02 < statistics.mean(starts[500:])
