"""REST API of the stand-in: CRUD, validation, 404s, auth, knobs and request counters."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from novacron_sim.launch import StandIn, start_sim
from tests.sim.conftest import TOKEN

ROOT = Path(__file__).resolve().parents[2]
NEW_VM = {"name": "sim-test-vm", "cpu": 2, "memory_mb": 2048, "zone": "eu-west-1"}


def test_health_needs_no_token(token_sim: StandIn) -> None:
    for path in ("/health", "/api/v1/health"):
        r = httpx.get(token_sim.api_url + path, trust_env=False)
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}


def test_vm_crud_round_trip(http: httpx.Client) -> None:
    r = http.post("/api/v1/vms", json=NEW_VM | {"description": "crud round trip", "tags": ["t"]})
    assert r.status_code == 201, r.text
    vm = r.json()
    assert {k: vm[k] for k in NEW_VM} == NEW_VM
    assert vm["state"] == "stopped"
    assert r.headers["Location"] == f"/api/v1/vms/{vm['id']}"
    url = f"/api/v1/vms/{vm['id']}"

    assert http.get(url).json() == vm
    r = http.patch(url, json={"cpu": 4})
    assert r.status_code == 200 and r.json()["cpu"] == 4 and r.json()["name"] == NEW_VM["name"]
    r = http.put(url, json={"name": "sim-test-renamed", "memory_mb": 4096})
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["memory_mb"], r.json()["cpu"]) == (
        "sim-test-renamed",
        4096,
        4,
    )
    assert http.post(url + "/start").json()["state"] == "running"
    assert http.get(url).json()["state"] == "running"
    assert http.post(url + "/stop").json()["state"] == "stopped"

    params = {"zone": "eu-west-1", "q": "crud round trip", "limit": 1000}
    listed = http.get("/api/v1/vms", params=params).json()
    assert vm["id"] in [v["id"] for v in listed["vms"]]
    assert {v["zone"] for v in listed["vms"]} == {"eu-west-1"}

    r = http.delete(url)
    assert r.status_code == 204 and r.content == b""
    r = http.get(url)
    assert r.status_code == 404
    assert str(vm["id"]) in r.json()["error"]


def test_list_paging_and_search(http: httpx.Client) -> None:
    first = http.get("/api/v1/vms", params={"limit": 5}).json()
    second = http.get("/api/v1/vms", params={"limit": 5, "offset": 5}).json()
    assert len(first["vms"]) == len(second["vms"]) == 5
    assert first["total"] == second["total"] >= 10
    assert max(v["id"] for v in first["vms"]) < min(v["id"] for v in second["vms"])
    running = http.get("/api/v1/vms", params={"state": "running", "limit": 50}).json()["vms"]
    assert running and {v["state"] for v in running} == {"running"}
    found = http.get("/api/v1/vms", params={"q": "redis checkout"}).json()["vms"]
    assert found
    assert all("redis" in v["description"] and "checkout" in v["description"] for v in found)
    r = http.get("/api/v1/vms", params={"limit": "lots"})
    assert r.status_code == 400 and r.json()["field"] == "limit"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (NEW_VM | {"name": "Bad_Name"}, "name"),
        (NEW_VM | {"name": "x" * 64}, "name"),
        (NEW_VM | {"name": ""}, "name"),
        (NEW_VM | {"cpu": 0}, "cpu"),
        (NEW_VM | {"cpu": 65}, "cpu"),
        (NEW_VM | {"cpu": "2"}, "cpu"),
        (NEW_VM | {"memory_mb": 127}, "memory_mb"),
        (NEW_VM | {"zone": "mars-1"}, "zone"),
        (NEW_VM | {"description": "nul \x00 byte"}, "description"),
        ({k: v for k, v in NEW_VM.items() if k != "zone"}, "zone"),
    ],
)
def test_invalid_vm_is_rejected_with_a_reason(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    r = http.post("/api/v1/vms", json=body)
    assert r.status_code in (400, 422), r.text
    assert r.json()["field"] == field
    assert field in r.json()["error"]


@pytest.mark.parametrize("raw", [b'{"name": ', b"[1, 2]", b"", b"\xff\xfe"])
def test_malformed_body_is_400(http: httpx.Client, raw: bytes) -> None:
    r = http.post("/api/v1/vms", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]


def test_unknown_ids_are_404_with_a_reason(http: httpx.Client) -> None:
    for method, path in [
        ("GET", "/api/v1/vms/987654321"),
        ("GET", "/api/v1/vms/not-a-number"),
        ("PATCH", "/api/v1/vms/987654321"),
        ("DELETE", "/api/v1/vms/987654321"),
        ("POST", "/api/v1/vms/987654321/start"),
        ("GET", "/api/v1/migrations/987654321"),
        ("GET", "/api/v1/no-such-thing"),
    ]:
        r = http.request(method, path, json={"cpu": 2} if method == "PATCH" else None)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"], (method, path)


def test_bearer_token_is_required_when_configured(token_sim: StandIn) -> None:
    url = token_sim.api_url + "/api/v1/vms/1"
    missing = httpx.get(url, trust_env=False)
    wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, trust_env=False)
    right = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False)
    assert missing.status_code == wrong.status_code == 401
    assert "missing bearer token" in missing.json()["error"]
    assert wrong.json()["error"] == "invalid bearer token"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert right.status_code == 200 and right.json()["id"] == 1


def test_latency_knob_slows_requests(knobs: StandIn, http: httpx.Client) -> None:
    assert knobs.configure(latency_ms=200)["latency_ms"] == 200
    start = time.perf_counter()
    r = http.get("/api/v1/vms/1")
    assert r.status_code == 200
    assert time.perf_counter() - start >= 0.2
    knobs.configure(latency_ms=0)
    assert knobs.config()["latency_ms"] == 0


def test_error_knob_injects_500s(knobs: StandIn, http: httpx.Client) -> None:
    before = knobs.stats()["injected_errors"]
    knobs.configure(error_rate=1.0)
    statuses = [http.get("/api/v1/vms/1").status_code for _ in range(5)]
    r = http.get("/api/v1/vms/1")
    assert statuses == [500] * 5 and r.json() == {"error": "injected"}
    assert http.get("/health").status_code == 200  # health is never injected
    assert knobs.stats()["injected_errors"] - before == 6
    knobs.configure(error_rate=0.0, error_status=503)
    assert http.get("/api/v1/vms/1").status_code == 200


def test_invalid_knobs_are_rejected(sim: StandIn, http: httpx.Client) -> None:
    for body in ({"error_rate": 2}, {"latency_ms": -1}, {"warp": 9}, {"latency_ms": "10"}):
        r = http.post("/_sim/config", json=body)
        assert r.status_code == 422, body
        assert r.json()["field"] == next(iter(body))
    assert sim.config()["error_rate"] == 0


def test_stats_count_requests_per_route(sim: StandIn, http: httpx.Client) -> None:
    sim.reset_stats()
    for _ in range(7):
        http.get("/api/v1/vms/2")
    http.get("/api/v1/vms/987654321")
    http.get("/health")
    http.get("/_sim/config")  # the control plane is not counted
    reqs = sim.stats()["requests"]
    assert reqs["by_route"] == {"GET /api/v1/vms/{id}": 8, "GET /health": 1}
    assert reqs["total"] == 9
    assert reqs["by_status"] == {"200": 8, "404": 1}
    assert reqs["errors_by_route"] == {"GET /api/v1/vms/{id}": 1}


def test_rows_written_through_the_api_are_in_postgres(http: httpx.Client, sim_dsn: str) -> None:
    vm = http.post("/api/v1/vms", json=NEW_VM | {"description": "quantum flux capacitor"}).json()

    async def query() -> list[Any]:
        conn = await asyncpg.connect(sim_dsn)
        try:
            return list(
                await conn.fetch(
                    "SELECT id, name FROM vms WHERE search @@ plainto_tsquery('english', $1)",
                    "flux capacitor",
                )
            )
        finally:
            await conn.close()

    rows = asyncio.run(query())
    assert [(r["id"], r["name"]) for r in rows] == [(vm["id"], NEW_VM["name"])]
    http.delete(f"/api/v1/vms/{vm['id']}")


def test_workers_share_port_counters_and_knobs(sim_dsn: str) -> None:
    with start_sim(sim_dsn, workers=2) as multi:
        pids = set()
        for _ in range(24):  # a new connection each time, so the kernel spreads them
            r = httpx.get(multi.api_url + "/api/v1/vms/3", trust_env=False)
            assert r.status_code == 200
            pids.add(r.headers.get("X-Sim-Worker"))
        stats = multi.stats()
        assert stats["workers"] == 2
        assert stats["requests"]["by_route"] == {"GET /api/v1/vms/{id}": 24}
        multi.configure(error_rate=1.0)
        codes = {
            httpx.get(multi.api_url + "/api/v1/vms/3", trust_env=False).status_code
            for _ in range(8)
        }
        assert codes == {500}
        assert len(pids) == 2, "both workers should have answered"


def test_non_loopback_host_is_refused() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "novacron_sim", "--host", "0.0.0.0", "--database-url", "x"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode != 0
    assert "not a loopback address" in proc.stderr
