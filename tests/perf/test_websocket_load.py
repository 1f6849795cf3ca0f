"""Plan item 3, WebSocket load test (k6 `websocket_load_test.js`): real-time connections to the
NovaCron hub, 100 -> 1K -> 10K -> 100K connections.

Each virtual user is one real-time client. It opens its connection once and holds it for the
whole run (`keep=True`), subscribes to the vm_status, metrics and alerts channels, and then, as
in the plan, sends a heartbeat every 5 s and a query every 10 s while reading what the server
pushes. One iteration is one heartbeat period.

Full plan: `pytest -n 6 tests/perf/test_websocket_load.py --load-scale 1 --load-duration-scale 1`
(100K connections need several generator processes, `-n N`, each holding its share within its
open-file limit; loopback source addresses and the stand-in's processes follow by themselves).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from novacron_sim.launch import StandIn

STAGES = [
    ("2m", 100),       # 100 concurrent connections
    ("5m", 1000),      # ramp to 1K connections
    ("5m", 1000),      # sustain 1K
    ("2m", 10000),     # spike to 10K
    ("5m", 10000),     # sustain 10K
    ("2m", 100000),    # extreme stress: 100K connections
    ("3m", 100000),    # sustain the stress
    ("2m", 0),         # ramp-down
]

THRESHOLDS = {
    "ws_msg_latency": ["p(95)<500"],     # message latency < 500 ms (P95)
    "ws_connecting": ["p(95)<2000"],     # connection time < 2 s (P95)
    "ws_failed": ["rate<0.05"],          # error rate < 5 %
}

CHANNELS = ["vm_status", "metrics", "alerts"]
HEARTBEAT = 5.0        # seconds between heartbeats (one iteration)
QUERY_EVERY = 2        # iterations between queries: one every 10 s
# Users ramped down keep their connection, unread, until the run ends; websockets stops
# reading at max_queue (default 16) messages and then cannot see the server's close frame.
WS_OPTIONS = {"max_queue": 1024}
PUSH_INTERVAL_MS = 1000   # stand-in only: one event per channel per second per connection


@pytest.fixture
def push_rate(novacron: StandIn) -> Iterator[None]:
    """On the stand-in, push each channel once a second (its default, four times a second,
    is 12K messages/s at the PR gate's 1K connections: the generator would measure itself).
    A real target pushes at its own rate and is left alone."""
    try:
        before = novacron.config()["push_interval_ms"]
    except RuntimeError:   # not the stand-in
        yield
        return
    novacron.configure(push_interval_ms=PUSH_INTERVAL_MS)
    try:
        yield
    finally:
        novacron.configure(push_interval_ms=before)


@pytest.mark.load(stages=STAGES, thresholds=THRESHOLDS, ws=WS_OPTIONS)
def test_websocket_connections(load: Any, vm_ids: range, push_rate: None) -> None:
    """Plan 3 (WebSocket): held connections subscribed to vm_status/metrics/alerts, heartbeats,
    query/response round trips, 100 -> 1K -> 10K -> 100K connections; message latency P95
    < 500 ms, connection time P95 < 2 s, errors < 5 %."""
    events = load.counter("ws_events")
    subscribed: dict[int, object] = {}   # vu.id -> the connection its subscriptions are on

    async def realtime_client(vu: Any) -> None:
        ws = await vu.ws("/ws", name="realtime", keep=True)
        if subscribed.get(vu.id) is not ws:   # a new (or reopened) connection
            reply = await ws.request(
                {"type": "subscribe", "id": f"sub-{vu.id}", "channels": CHANNELS},
                match={"id": f"sub-{vu.id}"})
            vu.check(reply, {"subscribed to vm_status, metrics, alerts":
                             lambda m: m["type"] == "subscribed" and m["channels"] == CHANNELS})
            subscribed[vu.id] = ws
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + HEARTBEAT

        # Heartbeat, answered by a pong carrying the same id.
        beat = f"hb-{vu.id}-{vu.iteration}"
        pong = await ws.request({"type": "ping", "id": beat, "ts": time.time() * 1000},
                                match={"id": beat})
        vu.check(pong, {"heartbeat answered": lambda m: m["type"] == "pong"})

        # Query/response, matched on the correlation id.
        if vu.iteration % QUERY_EVERY == 0:
            vm_id = random.choice(vm_ids)
            corr = f"q-{vu.id}-{vu.iteration}"
            reply = await ws.request(
                {"type": "query", "id": corr, "query": "vm_status", "params": {"vm_id": vm_id}},
                match={"id": corr})
            vu.check(reply, {"query answered": lambda m: m["type"] == "response"
                             and m["result"]["vm_id"] == vm_id})

        # Read what the subscribed channels push until the next heartbeat.
        pushed: list[dict[str, Any]] = []
        while (left := next_beat - loop.time()) > 0:
            try:
                pushed.append(await ws.recv_json(timeout=left))
            except TimeoutError:
                break
        for event in pushed:
            events.add(1, channel=event.get("channel", "none"))
        vu.check(pushed, {"pushed events are channel events": lambda evs: all(
            e["type"] == "event" and e["channel"] in CHANNELS and e["ts"] > 0 for e in evs)})

    result = load.run(realtime_client)
    assert result.metric("ws_msgs_received").count > 0
    assert result.metric("ws_events").count > 0
