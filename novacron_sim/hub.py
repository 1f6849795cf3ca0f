"""The /ws hub's channel subscriptions and their broadcasters (one task per channel per worker,
running while the channel has subscribers).

A subscriber that does not read has events skipped (counted as `ws:hub:skipped`) once
SLOW_CONSUMER_BYTES wait unsent in its transport: its buffer stays bounded and it never holds up
the broadcast to the others (awaiting its drain would).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from novacron_sim.core import Sim, dumps, now_ms

__all__ = ["CHANNELS", "SLOW_CONSUMER_BYTES", "Hub"]

CHANNELS = ("vm_status", "metrics", "alerts")
#: a subscriber with this much unsent is not reading: its events are skipped until it drains
SLOW_CONSUMER_BYTES = 16 * 1024


class Hub:
    """Channel subscriptions of one worker and the broadcaster task of each channel."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        #: channel -> {connection: its transport (None: unknown), to see what it has unsent}
        self.subscribers: dict[str, dict[web.WebSocketResponse, Any]] = {
            c: {} for c in CHANNELS}
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._seq = 0

    def subscribe(self, ws: web.WebSocketResponse, channel: str, transport: Any = None) -> None:
        self.subscribers[channel][ws] = transport
        pump = self._pumps.get(channel)
        if pump is None or pump.done():
            self._pumps[channel] = self.sim.spawn(self._pump(channel))

    def unsubscribe(self, ws: web.WebSocketResponse, channel: str) -> None:
        self.subscribers[channel].pop(ws, None)

    def drop(self, ws: web.WebSocketResponse) -> None:
        for subs in self.subscribers.values():
            subs.pop(ws, None)

    def _event(self, channel: str) -> dict[str, Any]:
        rng, sim = self.sim.rng, self.sim
        self._seq += 1
        if channel == "vm_status":
            vm_id = rng.randint(1, max(1, sim.vm_max))
            data: dict[str, Any] = {
                "vm_id": vm_id,
                "state": rng.choice(("running", "running", "running", "stopped", "paused")),
                "zone": sim.zones[vm_id % len(sim.zones)],
            }
        elif channel == "metrics":
            data = {
                "host": rng.choice(sim.host_names) if sim.host_names else "host-0",
                "cpu_pct": round(rng.uniform(0, 100), 1),
                "mem_pct": round(rng.uniform(20, 95), 1),
                "net_rx_kbps": round(rng.uniform(0, 10_000), 1),
                "net_tx_kbps": round(rng.uniform(0, 10_000), 1),
            }
        else:
            vm_id = rng.randint(1, max(1, sim.vm_max))
            data = {
                "vm_id": vm_id,
                "severity": rng.choice(("info", "warning", "warning", "critical")),
                "message": rng.choice(
                    ("cpu above 90%", "memory above 85%", "disk latency high", "host degraded")
                ),
            }
        return {"type": "event", "channel": channel, "seq": self._seq, "ts": now_ms(), "data": data}

    async def _pump(self, channel: str) -> None:
        subs = self.subscribers[channel]
        sent = self.sim.shared.index["ws:hub:sent"]
        skipped = self.sim.shared.index["ws:hub:skipped"]
        while subs:
            await asyncio.sleep(self.sim.shared.knob("push_interval_ms") / 1000.0)
            n, slow = await self.broadcast(subs, dumps(self._event(channel)).decode())
            self.sim.shared.inc(sent, n)
            if slow:
                self.sim.shared.inc(skipped, slow)

    @staticmethod
    async def broadcast(subs: dict[web.WebSocketResponse, Any], payload: str) -> tuple[int, int]:
        """Send ``payload`` to every subscriber that reads; (sent, skipped as not reading).
        A subscriber past SLOW_CONSUMER_BYTES unsent is skipped, never awaited: awaiting its
        drain would hold up every subscriber behind it."""
        n = slow = 0
        for ws, transport in list(subs.items()):
            if ws.closed:
                subs.pop(ws, None)
                continue
            if ws not in subs:  # unsubscribed while this round was sending
                continue
            if transport is not None and \
                    transport.get_write_buffer_size() > SLOW_CONSUMER_BYTES:
                slow += 1
                continue
            try:
                await ws.send_str(payload)
                n += 1
            except (ConnectionError, RuntimeError):
                subs.pop(ws, None)
        return n, slow
