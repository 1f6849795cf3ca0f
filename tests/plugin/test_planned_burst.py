"""The generator line tells a burst the plan asked for from a generator that cannot keep up.

Both runs block the loop with `time.sleep` (no CPU: never "saturated"), at a small scale:
- 500 VUs start together and each blocks 1 ms in its first iteration only: about 0.5 s of lag
  while the plan starts them, then a quiet loop: "planned burst";
- 5 VUs block 80 ms in every iteration: lag all along with no burst of starts: "loop stalls".
"""

from __future__ import annotations

import json

import pytest

from tests.timing import scaled

BURST = '''
import asyncio, time
import pytest

@pytest.mark.load(vus=500, duration="3s", graceful_stop="0s")
def test_burst(load):
    async def user(vu):
        if vu.iteration == 0:
            time.sleep(0.001)   # the first iteration's work, done by 500 VUs at once
        await asyncio.sleep(10)
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
