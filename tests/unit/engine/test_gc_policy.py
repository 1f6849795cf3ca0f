"""The run's collector policy: freeze what lived before, freeze the VUs' state as it grows,
never keep freezing in a steady run, and restore everything after."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_novaload.engine.gc_policy import (
    FREEZE_MIN_VUS,
    MIDDLE_THRESHOLD,
    YOUNG_THRESHOLD,
    RunGc,
)


class Node:
    """An object in a reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def events() -> Iterator[list[tuple[str, int]]]:
    seen: list[tuple[str, int]] = []
    before = gc.get_threshold()
    yield seen
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def _policy(warm: list[int], seen: list[tuple[str, int]]) -> RunGc:
    def on_event(phase: str, info: dict[str, Any]) -> None:
        seen.append((phase, info["generation"]))
    return RunGc(lambda: warm[0], on_event)


def test_start_freezes_what_lived_before_and_stop_restores(
        events: list[tuple[str, int]]) -> None:
    before = gc.get_threshold()
    policy = _policy([0], events)
    policy.start()
    try:
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (max(before[0], YOUNG_THRESHOLD), MIDDLE_THRESHOLD,
                                      max(before[2], 100))
        gc.collect(1)
        assert ("start", 1) in events and ("stop", 1) in events
    finally:
        policy.stop()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_survivors_are_frozen_only_while_the_built_vus_grow(
        events: list[tuple[str, int]]) -> None:
    warm = [0]
    policy = _policy(warm, events)
    policy.start()
    try:
        kept = [Node() for _ in range(1000)]       # the VUs' state, built
        warm[0] = FREEZE_MIN_VUS
        gc.collect(1)
        assert policy.freezes == 1
        frozen = gc.get_freeze_count()
        gc.collect(0)                               # a young collection never freezes
        warm[0] = int(FREEZE_MIN_VUS * 1.1)         # less than a quarter more
        gc.collect(1)
        assert policy.freezes == 1
        warm[0] = FREEZE_MIN_VUS * 2
        more = [Node() for _ in range(1000)]
        gc.collect(2)
        assert policy.freezes == 2 and gc.get_freeze_count() >= frozen + 1000
        # a steady run: the same VUs, churning cyclic garbage, freezes nothing more
        for _ in range(5):
            churn = [Node() for _ in range(1000)]
            del churn
            gc.collect(1)
        assert policy.freezes == 2
        del kept, more
    finally:
        policy.stop()


def test_a_small_run_never_freezes(events: list[tuple[str, int]]) -> None:
    warm = [0]
    policy = _policy(warm, events)
    policy.start()
    try:
        warm[0] = FREEZE_MIN_VUS - 1
        gc.collect(1)
        gc.collect(2)
        assert policy.freezes == 0
    finally:
        policy.stop()


def test_a_muted_policy_passes_no_more_events(events: list[tuple[str, int]]) -> None:
    policy = _policy([0], events)
    policy.start()
    try:
        gc.collect(0)
        seen = len(events)
        assert seen >= 2
        policy.mute()
        gc.collect(0)
        assert len(events) == seen
    finally:
        policy.stop()
