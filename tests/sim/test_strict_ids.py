"""Strict ids: decimal ASCII in int64 range or not found; every WebSocket request answered."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from novacron_sim.core import parse_id
from novacron_sim.launch import StandIn
from tests.sim.test_websockets import TIMEOUT, recv, send, start_migration, ws

LOOSE = ["+2", "%20%202", "2%20", "1_0", "02", "٢", "²", "１", "-1", "0", "0x2", "1e1", "2.0",
         "9223372036854775808", "99999999999999999999", "%2B2", "2%0A"]


@pytest.mark.parametrize(("value", "parsed"), [
    ("1", 1), ("9223372036854775807", 2**63 - 1), (7, 7), (2**63 - 1, 2**63 - 1),
    ("+2", None), (" 2", None), ("2 ", None), ("1_0", None), ("02", None), ("٢", None),
    ("²", None), ("2\n", None), ("9223372036854775808", None), ("9" * 5000, None), ("", None),
    (0, None), (-1, None), (2**63, None), (True, None), (2.0, None), (None, None), ([2], None),
])
def test_parse_id(value: object, parsed: int | None) -> None:
    assert parse_id(value) == parsed


@pytest.mark.parametrize("raw", LOOSE)
def test_loose_rest_ids_do_not_resolve(http: httpx.Client, raw: str) -> None:
    assert http.get("/api/v1/vms/2").status_code == 200  # the strict spelling does
    for method, path in [("GET", f"/api/v1/vms/{raw}"), ("GET", f"/api/v1/vms/{raw}/metrics"),
                         ("DELETE", f"/api/v1/vms/{raw}"), ("POST", f"/api/v1/vms/{raw}/start"),
                         ("GET", f"/api/v1/migrations/{raw}")]:
        r = http.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
        assert "ids are decimal integers from 1" in r.json()["error"]


def test_largest_id_is_a_plain_not_found(http: httpx.Client) -> None:
    r = http.get("/api/v1/vms/9223372036854775807")
    assert r.status_code == 404 and "not found" in r.json()["error"]


@pytest.mark.parametrize("vm_id", ["+7", "٧", " 7", "07", 2**63, 0, True, [7], 7.0])
def test_migration_vm_id_is_strict(http: httpx.Client, vm_id: Any) -> None:
    r = http.post("/api/v1/migrations", json={"vm_id": vm_id, "source_zone": "us-east-1",
                                               "target_zone": "ap-northeast-1"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "vm_id"


def test_migration_vm_id_as_decimal_text_still_works(http: httpx.Client) -> None:
    r = http.post("/api/v1/migrations", json={"vm_id": "7", "source_zone": "us-east-1",
                                               "target_zone": "ap-northeast-1"})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("query", ["vm_status", "migration_status"])
def test_every_hub_query_gets_an_answer(sim: StandIn, query: str) -> None:
    key = "vm_id" if query == "vm_status" else "migration_id"
    bad = [2**63, 2**64 - 1, -1, 0, 1e30, -(2**63) - 1, "7", True, None, [1], 10**30]
    with ws(sim.ws_url + "/ws") as conn:
        for i, value in enumerate(bad):
            send(conn, {"type": "query", "id": i, "query": query, "params": {key: value}})
        send(conn, {"type": "query", "id": "ok", "query": "vm_status", "params": {"vm_id": 2}})
        replies = {}
        for _ in range(len(bad) + 1):
            msg = recv(conn)
            replies[msg["id"]] = msg
    assert replies["ok"]["type"] == "response" and replies["ok"]["result"]["vm_id"] == 2
    for i, value in enumerate(bad):
        assert replies[i]["type"] == "error", (value, replies[i])
        assert key in replies[i]["error"] or "ids are integers" in replies[i]["error"], replies[i]
    assert "never retrieved" not in sim.log_tail(200_000)


def test_every_dwcp_subscribe_gets_an_answer(sim: StandIn) -> None:
    real = start_migration(sim)["id"]
    bad: list[Any] = ["+1", "٢", " 1", "1_0", 2**63, 2**64 - 1, 0, -5, 1.5, None, {"a": 1},
                      "9" * 100, str(real) + " "]
    with ws(sim.dwcp_ws_url) as conn:
        for value in bad:
            send(conn, {"type": "subscribe", "migration_id": value})
            msg = recv(conn)
            assert msg["type"] == "error" and "not found" in msg["error"], (value, msg)
        send(conn, {"type": "subscribe", "migration_id": str(real)})
        msg = recv(conn)
        assert msg["type"] in ("progress", "completed") and msg["migration_id"] == real


def test_hostile_messages_leave_no_unhandled_task_errors(sim: StandIn) -> None:
    hostile = [
        "{" * 100_00, '{"type": "query", "id": ' + "9" * 5000 + ', "query": "vm_count"}',
        '{"type": 5}', "[]", '"x"', '{"type": "query", "query": "vm_status", "params": 5}',
        '{"type": "' + "x" * 60_000 + '"}', '{"type": "query", "id": 1e400}',
    ]
    with ws(sim.ws_url + "/ws") as conn:
        for text in hostile:
            conn.send(text)
            reply = json.loads(conn.recv(timeout=TIMEOUT))
            assert reply["type"] == "error", (text[:80], reply)
            assert len(reply["error"]) < 500
        send(conn, {"type": "ping", "id": "alive"})
        assert recv(conn)["type"] == "pong"
    time.sleep(0.2)
    log = sim.log_tail(200_000)
    assert "never retrieved" not in log and "Traceback" not in log, log[-3000:]
