"""REST handlers for /api/v1/vms and /api/v1/zones, with the input validation rules."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from novacron_sim.core import SIM, ApiError, Sim, json_response, parse_id, read_json_object

__all__ = [
    "VM_STATES",
    "create_vm",
    "delete_vm",
    "get_vm",
    "list_vms",
    "list_zones",
    "update_vm",
    "vm_action",
    "vm_metrics",
]

VM_STATES = ("running", "stopped", "paused")
NAME_RE = re.compile(r"[a-z0-9-]{1,63}")
VM_COLUMNS = (
    "id, name, description, zone, host_id, cpu, memory_mb, disk_gb, state, tags, "
    "created_at, updated_at"
)
_ACTIONS = {"start": "running", "stop": "stopped", "restart": "running", "pause": "paused"}


def vm_json(row: Any) -> dict[str, Any]:
    vm = dict(row)
    vm.pop("total", None)
    vm["created_at"] = vm["created_at"].isoformat()
    vm["updated_at"] = vm["updated_at"].isoformat()
    vm["tags"] = list(vm["tags"])
    return vm


def _int(body: dict[str, Any], name: str, lo: int, hi: int, *, required: bool) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(422, f"{name} is required (an integer from {lo} to {hi})", name)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(422, f"{name} must be an integer from {lo} to {hi}, got {value!r}", name)
    if not lo <= value <= hi:
        raise ApiError(422, f"{name} must be from {lo} to {hi}, got {value}", name)
    return value


def _name(body: dict[str, Any], *, required: bool) -> str | None:
    value = body.get("name")
    if value is None:
        if required:
            raise ApiError(422, "name is required", "name")
        return None
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ApiError(
            422, f"name must be 1-63 characters of a-z, 0-9 and '-', got {value!r}", "name"
        )
    return value


def _zone(sim: Sim, value: Any, field: str = "zone") -> str:
    if not isinstance(value, str) or value not in sim.zones:
        raise ApiError(422, f"{field} must be one of {', '.join(sim.zones)}, got {value!r}", field)
    return value


def _description(body: dict[str, Any]) -> str | None:
    value = body.get("description")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 1024 or "\x00" in value:
        raise ApiError(
            422, "description must be a string of at most 1024 characters (no NUL)", "description"
        )
    return value


def _tags(body: dict[str, Any]) -> list[str] | None:
    value = body.get("tags")
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > 32
        or not all(isinstance(t, str) and 0 < len(t) <= 64 and "\x00" not in t for t in value)
    ):
        raise ApiError(422, "tags must be a list of at most 32 strings of 1-64 characters", "tags")
    return value


def vm_id_of(request: web.Request) -> int:
    """The id in the path: decimal ASCII digits in int64 range (``parse_id``), else 404."""
    raw = request.match_info["id"]
    vm_id = parse_id(raw)
    if vm_id is None:
        raise ApiError(404, f"vm {raw[:40]!r} not found (ids are decimal integers from 1)", "id")
    return vm_id


async def create_vm(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    body = await read_json_object(request)
    name = _name(body, required=True)
    cpu = _int(body, "cpu", 1, 64, required=True)
    memory = _int(body, "memory_mb", 128, 1_048_576, required=True)
    if "zone" not in body:
        raise ApiError(422, f"zone is required (one of {', '.join(sim.zones)})", "zone")
    zone = _zone(sim, body["zone"])
    disk = _int(body, "disk_gb", 1, 65_536, required=False) or 20
    description = _description(body) or ""
    tags = _tags(body) or []
    start = body.get("start", False)
    if not isinstance(start, bool):
        raise ApiError(422, "start must be true or false", "start")
    host = sim.rng.choice(sim.hosts[zone]) if sim.hosts.get(zone) else None
    row = await sim.pool.fetchrow(
        f"INSERT INTO vms (name, description, zone, host_id, cpu, memory_mb, disk_gb, state, "
        f"tags) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {VM_COLUMNS}",
        name,
        description,
        zone,
        host,
        cpu,
        memory,
        disk,
        "running" if start else "stopped",
        tags,
    )
    return json_response(vm_json(row), status=201, headers={"Location": f"/api/v1/vms/{row['id']}"})


def _query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise ApiError(
            400, f"query parameter {name} must be an integer from {lo} to {hi}, got {raw!r}", name
        )
    return value


async def list_vms(request: web.Request) -> web.Response:
    """GET /api/v1/vms?limit=&offset=&zone=&state=&q= (q: full-text search)."""
    sim = request.app[SIM]
    limit = _query_int(request, "limit", 50, 1, 1000)
    offset = _query_int(request, "offset", 0, 0, 10**9)
    zone = request.query.get("zone")
    if zone is not None:
        _zone(sim, zone)
    state = request.query.get("state")
    if state is not None and state not in VM_STATES:
        raise ApiError(
            400,
            f"query parameter state must be one of {', '.join(VM_STATES)}, got {state!r}",
            "state",
        )
    q = request.query.get("q") or None
    if q is not None and ("\x00" in q or len(q) > 256):
        raise ApiError(400, "query parameter q must be at most 256 characters (no NUL)", "q")
    rows = await sim.pool.fetch(
        f"SELECT {VM_COLUMNS}, count(*) OVER () AS total FROM vms "
        "WHERE ($1::text IS NULL OR zone = $1) AND ($2::text IS NULL OR state = $2) "
        "AND ($3::text IS NULL OR search @@ plainto_tsquery('english', $3)) "
        "ORDER BY id LIMIT $4 OFFSET $5",
        zone,
        state,
        q,
        limit,
        offset,
    )
    total = rows[0]["total"] if rows else 0
    return json_response(
        {"vms": [vm_json(r) for r in rows], "total": total, "limit": limit, "offset": offset}
    )


async def get_vm(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    vm_id = vm_id_of(request)
    row = await sim.pool.fetchrow(f"SELECT {VM_COLUMNS} FROM vms WHERE id = $1", vm_id)
    if row is None:
        raise ApiError(404, f"vm {vm_id} not found", "id")
    return json_response(vm_json(row))


async def update_vm(request: web.Request) -> web.Response:
    """PUT and PATCH: change any of name, description, cpu, memory_mb, disk_gb, tags."""
    sim = request.app[SIM]
    vm_id = vm_id_of(request)
    body = await read_json_object(request)
    if "zone" in body:
        raise ApiError(422, "zone cannot be updated: start a migration instead", "zone")
    if "state" in body:
        raise ApiError(
            422, "state cannot be updated: POST /api/v1/vms/{id}/start or /stop", "state"
        )
    changes: dict[str, Any] = {
        "name": _name(body, required=False),
        "description": _description(body),
        "cpu": _int(body, "cpu", 1, 64, required=False),
        "memory_mb": _int(body, "memory_mb", 128, 1_048_576, required=False),
        "disk_gb": _int(body, "disk_gb", 1, 65_536, required=False),
        "tags": _tags(body),
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise ApiError(
            422,
            "nothing to update: send one or more of name, description, cpu, "
            "memory_mb, disk_gb, tags",
        )
    sets = ", ".join(f"{col} = ${i}" for i, col in enumerate(changes, start=2))
    row = await sim.pool.fetchrow(
        f"UPDATE vms SET {sets}, updated_at = now() WHERE id = $1 RETURNING {VM_COLUMNS}",
        vm_id,
        *changes.values(),
    )
    if row is None:
        raise ApiError(404, f"vm {vm_id} not found", "id")
    return json_response(vm_json(row))


async def delete_vm(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    vm_id = vm_id_of(request)
    status = await sim.pool.execute("DELETE FROM vms WHERE id = $1", vm_id)
    if status == "DELETE 0":
        raise ApiError(404, f"vm {vm_id} not found", "id")
    return web.Response(status=204)


async def vm_action(request: web.Request) -> web.Response:
    """POST /api/v1/vms/{id}/{start|stop|restart|pause}: idempotent, returns the VM."""
    sim = request.app[SIM]
    vm_id = vm_id_of(request)
    action = request.match_info["action"]
    target = _ACTIONS.get(action)
    if target is None:
        raise ApiError(404, f"unknown action {action!r}; known: {', '.join(_ACTIONS)}", "action")
    row = await sim.pool.fetchrow(
        f"UPDATE vms SET state = $2, updated_at = now() WHERE id = $1 RETURNING {VM_COLUMNS}",
        vm_id,
        target,
    )
    if row is None:
        raise ApiError(404, f"vm {vm_id} not found", "id")
    return json_response(vm_json(row))


async def vm_metrics(request: web.Request) -> web.Response:
    """GET /api/v1/vms/{id}/metrics?limit= : the newest samples first."""
    sim = request.app[SIM]
    vm_id = vm_id_of(request)
    limit = _query_int(request, "limit", 12, 1, 1000)
    rows = await sim.pool.fetch(
        "SELECT ts, cpu_pct, mem_pct, net_rx_kbps, net_tx_kbps FROM metrics "
        "WHERE vm_id = $1 ORDER BY ts DESC LIMIT $2",
        vm_id,
        limit,
    )
    if not rows and await sim.pool.fetchval("SELECT 1 FROM vms WHERE id = $1", vm_id) is None:
        raise ApiError(404, f"vm {vm_id} not found", "id")
    samples = [dict(r) | {"ts": r["ts"].isoformat()} for r in rows]
    return json_response({"vm_id": vm_id, "samples": samples})


async def list_zones(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    rows = await sim.pool.fetch(
        "SELECT z.name, z.region, count(v.id) AS vms FROM zones z "
        "LEFT JOIN vms v ON v.zone = z.name GROUP BY z.id ORDER BY z.id"
    )
    return json_response({"zones": [dict(r) for r in rows]})
