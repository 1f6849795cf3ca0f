"""A run freezes its VUs' state as the VUs build it, and gives everything back at the end."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from pytest_novaload.engine.runner import LoadRunner
from pytest_novaload.spec import LoadSpec


def test_the_state_1000_vus_build_is_frozen_during_the_run_and_not_after() -> None:
    before = gc.get_threshold()
    held: dict[int, list[list[int]]] = {}

    async def user(vu: Any) -> None:
        if vu.iteration == 1:   # (counted as built after its first iteration)
            held[vu.id] = [[] for _ in range(400)]   # a client's buffers, built once: 400K objects
        await asyncio.sleep(0.05)

    spec = LoadSpec.parse({"vus": 1000, "duration": "2s", "graceful_stop": "0s"})
    runner = LoadRunner(spec.plan(), user, env={})
    measured = runner.run()
    assert runner.rt.warm == 1000 and len(held) == 1000
    assert measured.store.aggregate("iterations").value("count") >= 1000
    assert runner.gc is not None and runner.gc.freezes >= 1
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
