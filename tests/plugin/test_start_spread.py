"""VUs started together begin their first iteration spread out, not in one burst."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import pytest

from pytest_novaload.engine.executors.base import START_SPREAD_MAX, START_STEP, start_delays
from pytest_novaload.engine.runner import LoadRunner
from pytest_novaload.spec import LoadSpec
from tests.timing import scaled


def test_start_delays_are_even_bounded_and_start_at_zero() -> None:
    assert start_delays(0) == [] and start_delays(1) == [0.0]
    small = start_delays(10)
    assert small[0] == 0.0 and small == sorted(small)
    assert small[-1] == pytest.approx(9 * START_STEP)
    big = start_delays(100_000)
    assert big[-1] < START_SPREAD_MAX and big[-1] == pytest.approx(START_SPREAD_MAX, rel=1e-3)


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
