"""The stand-in holds thousands of WebSocket connections per process with bounded memory.

One stand-in process (its own instance, so its memory is this test's alone), 2,000 loopback
connections to the /ws hub and 2,000 to /dwcp/v3, bounded in time. It measures the resident
memory per held connection and checks that rounds of messages over every connection (pings,
channel pushes, DWCP watches of finished migrations) do not grow it: what a connection keeps
is bounded, nothing is kept per message.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from novacron_sim.launch import StandIn, start_sim
from tests.timing import scaled

CONNECTIONS = 2000
ROUNDS = 8
#: resident memory one idle connection may cost the stand-in (aiohttp handler, transport,
#: buffers; websockets measured 12.6 KB per side, permessage-deflate 46 KB)
MAX_PER_CONNECTION = 64 * 1024
#: growth allowed from the second round of messages to the last over all connections. Measured:
#: 0.1 MiB (hub) and 0.8 MiB (dwcp); when each connection kept its finished DWCP watches, the
#: same 6 rounds grew the stand-in by 10.3 MiB
MAX_GROWTH = 3 * 1024 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.fixture
def lone_sim(sim_dsn: str) -> Iterator[StandIn]:
    """A one-process stand-in of this test's own: fast migrations, one push a second."""
    with start_sim(sim_dsn, workers=1, time_scale=0.05, push_interval_ms=1000) as handle:
        yield handle


async def open_all(url: str, n: int) -> list[ClientConnection]:
    gate = asyncio.Semaphore(64)

    async def one() -> ClientConnection:
        async with gate:
            return await connect(url, compression=None, open_timeout=scaled(30), proxy=None,
                                 max_queue=None)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def until(conn: ClientConnection, kind: str) -> dict[str, Any]:
    """Read (and drop channel pushes) until a message of ``kind``."""
    while True:
        msg: dict[str, Any] = json.loads(await conn.recv())
        if msg["type"] == kind:
            return msg
        assert msg["type"] in ("event", "progress"), msg


def migrations(sim: StandIn, count: int) -> list[int]:
    """``count`` finished migrations."""
    ids = []
    for vm in range(1, count + 1):
        r = httpx.post(sim.api_url + "/api/v1/migrations", trust_env=False, timeout=10,
                       json={"vm_id": vm, "source_zone": "us-east-1",
                             "target_zone": "ap-northeast-1"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    deadline = time.monotonic() + scaled(20)
    while time.monotonic() < deadline:
        r = httpx.post(sim.api_url + "/api/v1/migrations/status", json={"ids": ids},
                       trust_env=False, timeout=10)
        states = {m["state"] for m in r.json()["migrations"]}
        if states <= {"completed", "failed"}:
            return ids
        time.sleep(0.1)
    raise AssertionError(f"migrations {ids} did not finish: {r.text[:300]}")


def test_two_thousand_connections_per_process_with_bounded_memory(lone_sim: StandIn) -> None:
    pid = lone_sim.process.pid if lone_sim.process is not None else 0
    finished = migrations(lone_sim, ROUNDS)

    async def main() -> dict[str, float]:
        idle = rss(pid)
        t0 = time.perf_counter()
        hub = await open_all(lone_sim.ws_url + "/ws", CONNECTIONS)
        opened_s = time.perf_counter() - t0
        held = rss(pid)
        await asyncio.gather(*(c.send(json.dumps(
            {"type": "subscribe", "id": "s", "channels": ["alerts"]})) for c in hub))
        await asyncio.gather(*(until(c, "subscribed") for c in hub))
        hub_rss = []
        for r in range(ROUNDS):
            async def ping(c: ClientConnection, r: int = r) -> None:
                await c.send(json.dumps({"type": "ping", "id": r}))
                assert (await until(c, "pong"))["id"] == r
            await asyncio.gather(*(ping(c) for c in hub))
            hub_rss.append(rss(pid))
        dwcp = await open_all(lone_sim.dwcp_ws_url, CONNECTIONS)
        dwcp_rss = []
        for mid in finished:   # a new watch each round: a table that kept them would grow
            async def watch(c: ClientConnection, mid: int = mid) -> None:
                await c.send(json.dumps({"type": "subscribe", "migration_id": mid}))
                final = await until(c, "completed")
                assert final["migration_id"] == mid
            await asyncio.gather(*(watch(c) for c in dwcp))
            dwcp_rss.append(rss(pid))
        stats = lone_sim.stats()["websocket"]
        await asyncio.gather(*(c.close() for c in hub + dwcp))
        assert stats["hub"]["open"] == CONNECTIONS and stats["dwcp"]["open"] == CONNECTIONS
        return {"per_connection": (held - idle) / CONNECTIONS, "open_rate": CONNECTIONS / opened_s,
                "hub_growth": hub_rss[-1] - hub_rss[1], "dwcp_growth": dwcp_rss[-1] - dwcp_rss[1],
                "total": dwcp_rss[-1] - idle}

    async def bounded() -> dict[str, float]:
        return await asyncio.wait_for(main(), scaled(120))

    got = asyncio.run(bounded())
    print(f"stand-in: {got['per_connection'] / 1024:.1f} KiB per held /ws connection, "
          f"{got['open_rate']:.0f} opens/s, growth over {ROUNDS - 2} rounds: hub "
          f"{got['hub_growth'] / 1024:.0f} KiB, dwcp {got['dwcp_growth'] / 1024:.0f} KiB; "
          f"{2 * CONNECTIONS} connections: {got['total'] / 2**20:.1f} MiB")
    assert got["per_connection"] < MAX_PER_CONNECTION, got
    assert got["hub_growth"] < MAX_GROWTH, got
    assert got["dwcp_growth"] < MAX_GROWTH, got
