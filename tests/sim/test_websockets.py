"""WebSocket endpoints of the stand-in: the /ws hub and DWCP v3 migration progress."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from novacron_sim.launch import StandIn
from tests.sim.conftest import TOKEN

TIMEOUT = 5.0


@contextmanager
def ws(url: str, **kw: Any) -> Iterator[ClientConnection]:
    with connect(url, compression=None, open_timeout=TIMEOUT, proxy=None, **kw) as conn:
        yield conn


def send(conn: ClientConnection, msg: dict[str, Any]) -> None:
    conn.send(json.dumps(msg))


def recv(conn: ClientConnection) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(conn.recv(timeout=TIMEOUT))
    return msg


def recv_until(conn: ClientConnection, kind: str, limit: int = 200) -> dict[str, Any]:
    for _ in range(limit):
        msg = recv(conn)
        if msg["type"] == kind:
            return msg
    raise AssertionError(f"no {kind!r} message in {limit}")


def start_migration(sim: StandIn, vm_id: int = 7) -> dict[str, Any]:
    r = httpx.post(
        sim.api_url + "/api/v1/migrations",
        json={"vm_id": vm_id, "source_zone": "us-east-1", "target_zone": "ap-northeast-1"},
        trust_env=False,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def watch(sim: StandIn, migration_id: int) -> list[dict[str, Any]]:
    """Every DWCP message about `migration_id` up to and including the final one."""
    events = []
    with ws(sim.dwcp_ws_url) as conn:
        send(conn, {"type": "subscribe", "migration_id": migration_id})
        while True:
            msg = recv(conn)
            events.append(msg)
            if msg["type"] != "progress":
                return events


def test_migration_runs_through_its_phases_over_dwcp(sim: StandIn) -> None:
    created = start_migration(sim)
    assert created["state"] == "pending" and isinstance(created["id"], int)
    events = watch(sim, created["id"])

    final = events[-1]
    assert final["type"] == "completed" and final["progress"] == 100, events
    assert final["migration_id"] == created["id"] and final["duration_ms"] > 0
    progress = [e for e in events if e["type"] == "progress"]
    phases = [e["phase"] for e in progress]
    assert {"pre-copy", "iterative-copy", "stop-and-copy"} <= set(phases)
    assert phases.index("pre-copy") < phases.index("iterative-copy") < phases.index("stop-and-copy")
    values = [e["progress"] for e in progress]
    assert values == sorted(values) and len(set(values)) >= 5
    assert all(isinstance(e["ts"], float) for e in events)

    got = httpx.get(f"{sim.api_url}/api/v1/migrations/{created['id']}", trust_env=False).json()
    assert (got["state"], got["phase"], got["progress"]) == ("completed", "completed", 100)


def test_a_failing_migration_ends_with_failed(knobs: StandIn) -> None:
    knobs.configure(migration_failure_rate=1.0)
    created = start_migration(knobs)
    final = watch(knobs, created["id"])[-1]
    assert final["type"] == "failed" and final["phase"] == "failed"
    assert "dirty page rate" in final["error"]
    assert 0 <= final["progress"] < 100  # stops during iterative copy


def test_batch_status(sim: StandIn) -> None:
    ids = [start_migration(sim, vm_id)["id"] for vm_id in (11, 12, 13)]
    r = httpx.post(
        sim.api_url + "/api/v1/migrations/status", json={"ids": [*ids, 987654321]}, trust_env=False
    )
    assert r.status_code == 200
    body = r.json()
    assert [m["id"] for m in body["migrations"]] == ids
    assert body["not_found"] == [987654321]
    assert all(m["state"] in ("pending", "running", "completed") for m in body["migrations"])
    bad = httpx.post(
        sim.api_url + "/api/v1/migrations/status", json={"ids": "all"}, trust_env=False
    )
    assert bad.status_code == 422 and bad.json()["field"] == "ids"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"vm_id": 987654321, "source_zone": "us-east-1", "target_zone": "eu-west-1"}, "vm_id"),
        ({"vm_id": 1, "source_zone": "us-east-1", "target_zone": "us-east-1"}, "target_zone"),
        ({"vm_id": 1, "source_zone": "nowhere", "target_zone": "us-east-1"}, "source_zone"),
    ],
)
def test_invalid_migration_is_422(sim: StandIn, body: dict[str, Any], field: str) -> None:
    r = httpx.post(sim.api_url + "/api/v1/migrations", json=body, trust_env=False)
    assert r.status_code == 422 and r.json()["field"] == field


def test_dwcp_ping_and_unknown_migration(sim: StandIn) -> None:
    with ws(sim.dwcp_ws_url) as conn:
        send(conn, {"type": "ping", "id": 41})
        pong = recv(conn)
        assert (pong["type"], pong["id"]) == ("pong", 41)
        send(conn, {"type": "watch", "migration_id": 987654321})
        err = recv(conn)
        assert err["type"] == "error" and "not found" in err["error"]


def test_hub_pushes_events_on_subscribed_channels_only(sim: StandIn) -> None:
    with ws(sim.ws_url + "/ws") as conn:
        send(conn, {"type": "subscribe", "channels": ["metrics", "alerts"]})
        assert recv(conn) == {"type": "subscribed", "id": None, "channels": ["metrics", "alerts"]}
        events = [recv_until(conn, "event") for _ in range(6)]
        assert {e["channel"] for e in events} <= {"metrics", "alerts"}
        assert "cpu_pct" in next(e for e in events if e["channel"] == "metrics")["data"]
        send(conn, {"type": "unsubscribe", "channel": "metrics"})
        recv_until(conn, "unsubscribed")
        later = [recv_until(conn, "event") for _ in range(4)]
        assert {e["channel"] for e in later} == {"alerts"}
        send(conn, {"type": "subscribe", "channel": "gossip"})
        assert "unknown channel" in recv_until(conn, "error")["error"]


def test_hub_ping_pong_and_query_correlation(sim: StandIn) -> None:
    with ws(sim.ws_url + "/ws") as conn:
        send(conn, {"type": "ping", "id": 7, "ts": 123.0})
        pong = recv(conn)
        assert (pong["type"], pong["id"], pong["client_ts"]) == ("pong", 7, 123.0)
        assert pong["ts"] > 0
        send(conn, {"type": "query", "id": "a", "query": "vm_count"})
        send(conn, {"type": "query", "id": "b", "query": "vm_status", "params": {"vm_id": 5}})
        send(conn, {"type": "query", "id": "c", "query": "zones"})
        send(conn, {"type": "query", "id": "d", "query": "weather"})
        replies = {m["id"]: m for m in (recv(conn) for _ in range(4))}
        assert replies["a"]["type"] == "response" and replies["a"]["result"]["count"] > 0
        assert replies["b"]["result"]["vm_id"] == 5
        assert "us-east-1" in replies["c"]["result"]["zones"]
        assert replies["d"]["type"] == "error" and "unknown query" in replies["d"]["error"]
        conn.send("{not json")
        assert "malformed JSON" in recv(conn)["error"]


def test_websocket_counters(sim: StandIn) -> None:
    before = sim.stats()["websocket"]["hub"]
    with ws(sim.ws_url + "/ws") as conn:
        for i in range(3):
            send(conn, {"type": "ping", "id": i})
            recv(conn)
    after = sim.stats()["websocket"]["hub"]
    assert after["opened"] - before["opened"] == 1
    assert after["received"] - before["received"] == 3
    assert after["sent"] - before["sent"] >= 3


def test_websockets_need_the_token_when_configured(token_sim: StandIn) -> None:
    with pytest.raises(InvalidStatus) as info, ws(token_sim.ws_url + "/ws"):
        pass
    assert info.value.response.status_code == 401
    with ws(token_sim.dwcp_ws_url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as conn:
        send(conn, {"type": "ping", "id": 1})
        assert recv(conn)["type"] == "pong"
