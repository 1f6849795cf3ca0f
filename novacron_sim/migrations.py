"""REST handlers for /api/v1/migrations and the per-worker cache of migration plans.

A migration's plan is written to PostgreSQL when it is created; its phase at any instant follows
from the plan and the clock (see plan.py), so every worker answers alike. The first worker to
see a migration finish writes the final state (and, when completed, the VM's new zone).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from novacron_sim import plan as planmod
from novacron_sim.core import SIM, ApiError, Sim, json_response, parse_id, read_json_object, short
from novacron_sim.plan import Plan

__all__ = ["MigrationStore", "batch_status", "create_migration", "get_migration"]

BASE_DURATION_S = 2.0  # a whole migration at time_scale 1
MAX_BATCH = 1000
_CACHE_LIMIT = 100_000
_PLAN_COLUMNS = (
    "id, vm_id, source_zone, target_zone, state, progress, duration_ms, fail_step, error, "
    "created_at"
)


def _plan_from_row(row: Any) -> Plan:
    final = row["state"] if row["state"] in ("completed", "failed") else None
    return Plan(
        id=row["id"],
        vm_id=row["vm_id"],
        source_zone=row["source_zone"],
        target_zone=row["target_zone"],
        created=row["created_at"].timestamp(),
        duration_s=row["duration_ms"] / 1000.0,
        fail_step=row["fail_step"],
        final_state=final,
        final_progress=row["progress"],
        error=row["error"],
    )


class MigrationStore:
    """Plans by id (immutable once created, so cached per worker) plus finalisation."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self._plans: dict[int, Plan] = {}
        self._finalised: set[int] = set()

    def _remember(self, p: Plan) -> None:
        if len(self._plans) >= _CACHE_LIMIT:
            self._plans.clear()
            self._finalised.clear()
        self._plans[p.id] = p

    async def create(self, vm_id: int, source: str, target: str) -> Plan:
        sim = self.sim
        scale = sim.shared.knob("time_scale")
        duration_ms = max(1, round(BASE_DURATION_S * scale * sim.rng.uniform(0.8, 1.2) * 1000))
        fail_step = None
        if sim.rng.random() < sim.shared.knob("migration_failure_rate"):
            fail_step = sim.rng.choice(planmod.FAILABLE_STEPS)
        created = time.time()
        try:
            row = await sim.pool.fetchrow(
                "INSERT INTO migrations (vm_id, source_zone, target_zone, duration_ms, fail_step, "
                "created_at) SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS "
                "(SELECT 1 FROM vms WHERE id = $1) RETURNING id",
                vm_id,
                source,
                target,
                duration_ms,
                fail_step,
                datetime.fromtimestamp(created, UTC),
            )
        except asyncpg.ForeignKeyViolationError:  # the vm was deleted meanwhile
            row = None
        if row is None:
            raise ApiError(422, f"vm_id {vm_id} does not exist", "vm_id")
        p = Plan(row["id"], vm_id, source, target, created, duration_ms / 1000.0, fail_step)
        self._remember(p)
        sim.count("migrations:created")
        return p

    async def get_many(self, ids: Iterable[int]) -> dict[int, Plan]:
        ids = list(ids)
        found = {i: self._plans[i] for i in ids if i in self._plans}
        missing = [i for i in ids if i not in found]
        if missing:
            rows = await self.sim.pool.fetch(
                f"SELECT {_PLAN_COLUMNS} FROM migrations WHERE id = ANY($1::bigint[])", missing
            )
            for row in rows:
                p = _plan_from_row(row)
                self._remember(p)
                found[p.id] = p
        return found

    async def get(self, migration_id: int) -> Plan | None:
        return (await self.get_many([migration_id])).get(migration_id)

    def view(self, p: Plan, now: float | None = None) -> dict[str, Any]:
        """The migration at `now`; writes its final state the first time it is seen finished."""
        v = planmod.view(p, time.time() if now is None else now)
        done = v["state"] in ("completed", "failed")
        if done and p.final_state is None and p.id not in self._finalised:
            self._finalised.add(p.id)
            self.sim.spawn(self._finalise(p, v))
        return v

    async def _finalise(self, p: Plan, v: dict[str, Any]) -> None:
        finished = datetime.fromtimestamp(p.created + v["duration_ms"] / 1000.0, UTC)
        async with self.sim.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "UPDATE migrations SET state = $2, phase = $3, progress = $4, error = $5, "
                "finished_at = $6, bytes_transferred = (SELECT memory_mb::bigint * 1048576 "
                "FROM vms WHERE id = $7) WHERE id = $1 AND state NOT IN ('completed', 'failed')",
                p.id,
                v["state"],
                v["phase"],
                v["progress"],
                v.get("error"),
                finished,
                p.vm_id,
            )
            if status == "UPDATE 1" and v["state"] == "completed":
                hosts: list[int | None] = [*self.sim.hosts.get(p.target_zone, [])] or [None]
                await conn.execute(
                    "UPDATE vms SET zone = $2, host_id = $3, updated_at = now() WHERE id = $1",
                    p.vm_id,
                    p.target_zone,
                    self.sim.rng.choice(hosts),
                )


def _store(request: web.Request) -> MigrationStore:
    return request.app[STORE]


STORE = web.AppKey("migrations", MigrationStore)


def _migration_id(raw: str) -> int:
    value = parse_id(raw)
    if value is None:
        raise ApiError(
            404, f"migration {raw[:40]!r} not found (ids are decimal integers from 1)", "id"
        )
    return value


async def create_migration(request: web.Request) -> web.Response:
    """POST /api/v1/migrations {vm_id, source_zone, target_zone} -> 201 {id, state: pending}."""
    sim = request.app[SIM]
    body = await read_json_object(request)
    raw_vm_id = body.get("vm_id")
    vm_id = parse_id(raw_vm_id)
    if vm_id is None:
        raise ApiError(
            422,
            f"vm_id must be the integer id of an existing vm, got {short(raw_vm_id)}",
            "vm_id",
        )
    zones = ", ".join(sim.zones)
    for field in ("source_zone", "target_zone"):
        if body.get(field) not in sim.zones:
            raise ApiError(422, f"{field} must be one of {zones}, got {body.get(field)!r}", field)
    source, target = body["source_zone"], body["target_zone"]
    if source == target:
        raise ApiError(422, "target_zone must differ from source_zone", "target_zone")
    p = await _store(request).create(vm_id, source, target)
    out = _store(request).view(p, p.created)
    out["estimated_duration_ms"] = round(p.duration_s * 1000)
    return json_response(out, status=201, headers={"Location": f"/api/v1/migrations/{p.id}"})


async def get_migration(request: web.Request) -> web.Response:
    migration_id = _migration_id(request.match_info["id"])
    store = _store(request)
    p = await store.get(migration_id)
    if p is None:
        raise ApiError(404, f"migration {migration_id} not found", "id")
    return json_response(store.view(p))


async def batch_status(request: web.Request) -> web.Response:
    """POST /api/v1/migrations/status {"ids": [...]} -> {"migrations": [...], "not_found": []}."""
    body = await read_json_object(request)
    ids = body.get("ids")
    if (
        not isinstance(ids, list)
        or not ids
        or len(ids) > MAX_BATCH
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    ):
        raise ApiError(422, f"ids must be a list of 1 to {MAX_BATCH} integer migration ids", "ids")
    store = _store(request)
    valid = [i for i in ids if 0 < i < 2**63]
    plans = await store.get_many(set(valid))
    now = time.time()
    return json_response(
        {
            "migrations": [store.view(plans[i], now) for i in ids if i in plans],
            "not_found": [i for i in ids if i not in plans],
        }
    )
