"""The hub's broadcast skips a subscriber that does not read, and never waits for it."""

from __future__ import annotations

import asyncio
from typing import Any

from novacron_sim.hub import SLOW_CONSUMER_BYTES, Hub


class FakeTransport:
    def __init__(self, unsent: int) -> None:
        self.unsent = unsent

    def get_write_buffer_size(self) -> int:
        return self.unsent


class FakeWs:
    """Records what it was sent; a send to a stuck one would wait forever (as a drain does)."""

    def __init__(self, *, closed: bool = False, stuck: bool = False) -> None:
        self.closed = closed
        self.stuck = stuck
        self.got: list[str] = []

    async def send_str(self, data: str) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        self.got.append(data)


def test_a_subscriber_that_does_not_read_is_skipped_not_awaited() -> None:
    fast, slow, gone, unknown = FakeWs(), FakeWs(stuck=True), FakeWs(closed=True), FakeWs()
    subs: dict[Any, Any] = {
        slow: FakeTransport(SLOW_CONSUMER_BYTES + 1),   # first: it would hold up the others
        fast: FakeTransport(0),
        gone: FakeTransport(0),
        unknown: None,
    }

    async def main() -> tuple[int, int]:
        return await asyncio.wait_for(Hub.broadcast(subs, "event"), 5.0)

    sent, skipped = asyncio.run(main())
    assert (sent, skipped) == (2, 1)
    assert fast.got == ["event"] and unknown.got == ["event"] and slow.got == []
    assert gone not in subs and slow in subs   # a slow reader stays subscribed


def test_a_drained_subscriber_gets_events_again() -> None:
    ws, transport = FakeWs(), FakeTransport(SLOW_CONSUMER_BYTES + 1)
    subs: dict[Any, Any] = {ws: transport}
    assert asyncio.run(Hub.broadcast(subs, "a")) == (0, 1)
    transport.unsent = SLOW_CONSUMER_BYTES
    assert asyncio.run(Hub.broadcast(subs, "b")) == (1, 0)
    assert ws.got == ["b"]
