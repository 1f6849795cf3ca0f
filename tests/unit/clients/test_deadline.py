"""Deadline (the per-connection timeout of vu.ws): expiry, reuse, foreign cancels, no leaks."""

from __future__ import annotations

import asyncio
import json

import pytest

from pytest_novaload.clients.deadline import Deadline
from pytest_novaload.clients.ws_messages import decode


async def _step(deadline: Deadline, timeout: float, wait: float) -> str:
    deadline.start(timeout)
    try:
        await asyncio.sleep(wait)
    except asyncio.CancelledError:
        if deadline.stop():
            return "timeout"
        raise
    finally:
        deadline.stop()
    return "done"


def test_expires_and_then_serves_the_next_step() -> None:
    async def main() -> None:
        deadline = Deadline()
        assert await _step(deadline, 0.02, 5) == "timeout"
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        assert await _step(deadline, 5, 0) == "done"
        assert await _step(deadline, 0.02, 5) == "timeout"  # a shorter deadline re-arms

    asyncio.run(main())


def test_a_moved_deadline_rearms_once_and_does_not_fire_early() -> None:
    async def main() -> None:
        deadline = Deadline()
        for _ in range(100):  # many quick steps: at most a handle or two in flight
            assert await _step(deadline, 0.05, 0) == "done"
        assert await _step(deadline, 0.2, 0.1) == "done"  # outlives the first handle
        deadline.close()
        assert deadline._handle is None

    asyncio.run(main())


def test_a_cancel_from_elsewhere_still_propagates() -> None:
    async def main() -> None:
        deadline = Deadline()
        task = asyncio.create_task(_step(deadline, 5, 5))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_a_step_that_finished_leaves_no_cancel_behind() -> None:
    async def main() -> None:
        deadline = Deadline()
        assert await _step(deadline, 0.01, 0) == "done"
        await asyncio.sleep(0.05)  # the old handle fires with no step running: a no-op
        assert await _step(deadline, 5, 0.01) == "done"

    asyncio.run(main())


@pytest.mark.parametrize("raw", [
    '{"a": 1}', "[1, 2]", '"s"', "-1", "0", "7.5", "true", "false", "null", "NaN",
    "Infinity", " {\"a\": 1}", "\n[]", b'{"a": 1}', b"[1]", '{"a": 1}'.encode("utf-16"),
    '{"a": 1}'.encode("utf-8-sig"),
])
def test_decode_keeps_json_decoding_for_every_json_start(raw: str | bytes) -> None:
    expected = json.loads(raw)
    got = decode(raw)
    assert got == expected or (got != got and expected != expected)  # NaN


@pytest.mark.parametrize("raw", ["hello", "", b"", b"\x00\x01", "nope", "{broken", "ping-1",
                                 b"binary\xff"])
def test_decode_returns_non_json_unchanged(raw: str | bytes) -> None:
    assert decode(raw) is raw
