"""The generator line tells a burst the plan asked for from a generator that cannot keep up.

Both runs block the loop with `time.sleep` (no CPU: never "saturated"), at a small scale:
- the arrival rate jumps from 10/s to 3,000/s for 0.4 s and each iteration blocks 0.5 ms:
  lag while the plan's burst runs, then a quiet loop: "planned burst" (VUs started together
  no longer make one: executors.base.StartPacer spreads their first iterations);
- 5 VUs block 80 ms in every iteration: lag all along with no burst of starts: "loop stalls".
"""

from __future__ import annotations

import json

import pytest

from tests.timing import scaled

BURST = '''
import time
import pytest

@pytest.mark.load(executor="ramping-arrival-rate", start_rate=10, preallocated_vus=50,
                  max_vus=200, graceful_stop="0s",
                  stages=[("1s", 10), ("0s", 3000), ("400ms", 3000), ("0s", 10), ("1600ms", 10)])
def test_burst(load):
    async def user(vu):
        time.sleep(0.0005)   # each iteration's work: 1,200 of them due in 0.4 s
    load.run(user)
'''

SLOW = '''
import asyncio, time
import pytest

@pytest.mark.load(vus=5, duration="3s", graceful_stop="0s")
def test_slow(load):
    async def user(vu):
        time.sleep(0.08)        # every iteration holds the loop
        await asyncio.sleep(0.01)
    load.run(user)
'''


def _generator(pytester: pytest.Pytester, source: str) -> tuple[dict[str, object], str]:
    pytester.makepyfile(test_it=source)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--load-results",
                                           str(pytester.path / "results"),
                                           timeout=scaled(120))
    result.assert_outcomes(passed=1)
    summary = next((pytester.path / "results").rglob("summary.json"))
    tests = json.loads(summary.read_text())["tests"]
    return tests[0]["generator"], result.stdout.str()


def test_a_burst_of_starts_the_plan_asked_for_is_named_a_planned_burst(
        pytester: pytest.Pytester) -> None:
    gen, out = _generator(pytester, BURST)
    assert gen["planned_burst"] is True and gen["stalled"] is False, gen
    assert "GENERATOR  planned burst: the plan started" in out
    assert "not a generator that cannot keep up" in out
    assert int(gen["burst_starts"]) >= 100 and float(gen["burst_lag_p99_ms"]) > 50
    assert float(gen["steady_lag_p99_ms"]) <= 50


def test_lag_without_a_burst_of_starts_is_a_generator_that_cannot_keep_up(
        pytester: pytest.Pytester) -> None:
    gen, out = _generator(pytester, SLOW)
    assert gen["stalled"] is True and gen["planned_burst"] is False, gen
    assert "GENERATOR  loop stalls: event-loop lag p99" in out
    assert "not explained by the plan's starts" in out
