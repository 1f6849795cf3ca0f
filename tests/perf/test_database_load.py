"""Plan item 4, database load test (k6 `database_load_test.js`): NovaCron's PostgreSQL queries,
200 -> 500 -> 2K -> 5K concurrent queries, 80 % reads and 20 % writes.

The queries go straight to DATABASE_URL (the NovaCron schema: zones, hosts, vms, migrations,
metrics, events) through one shared connection pool, as the service's own would.

Full plan: `pytest tests/perf/test_database_load.py --load-scale 1 --load-duration-scale 1`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

STAGES = [
    ("2m", 200),     # warm up the database
    ("5m", 500),     # baseline load
    ("2m", 2000),    # ramp to 2K concurrent queries
    ("5m", 2000),    # sustain 2K
    ("2m", 5000),    # high load
    ("3m", 5000),    # sustain the high load
    ("2m", 0),       # ramp-down
]

THRESHOLDS = {
    "db_query_duration": ["p(95)<300"],              # overall query latency < 300 ms (P95)
    "db_query_duration{kind:read}": ["p(95)<200"],   # read latency < 200 ms (P95)
    "db_query_duration{kind:write}": ["p(95)<500"],  # write latency < 500 ms (P95)
    "db_query_failed": ["rate<0.01"],                # error rate < 1 %
}

POOL = {"max_size": 20}   # connection pool of the generator (the pool stress is the point)
SEARCH_TERMS = ["nginx", "postgres frontend", "billing", "kafka consumer", "analytics"]
Operation = Callable[[Any, range, list[str]], Awaitable[None]]


# -- reads ---------------------------------------------------------------------------------------
async def simple_select(vu: Any, vm_ids: range, zones: list[str]) -> None:
    vm_id = random.choice(vm_ids)
    row = await vu.db.fetchrow("SELECT id, name, zone, state FROM vms WHERE id = $1", vm_id,
                               name="simple_select")
    vu.check(row, {"select: the VM asked for": lambda r: r is not None and r["id"] == vm_id})


async def join_with_filter(vu: Any, vm_ids: range, zones: list[str]) -> None:
    zone = random.choice(zones)
    rows = await vu.db.fetch(
        "SELECT v.id, v.name, v.cpu, v.memory_mb, h.name AS host, z.region "
        "FROM vms v JOIN hosts h ON h.id = v.host_id JOIN zones z ON z.name = v.zone "
        "WHERE v.zone = $1 AND v.state = 'running' ORDER BY v.created_at DESC LIMIT 100",
        zone, name="join_filter")
    vu.check(rows, {"join: at most 100 rows": lambda r: len(r) <= 100})


async def aggregation(vu: Any, vm_ids: range, zones: list[str]) -> None:
    rows = await vu.db.fetch(
        "SELECT zone, state, count(*) AS vms, sum(cpu) AS cpus, avg(memory_mb) AS memory_mb "
        "FROM vms GROUP BY zone, state ORDER BY zone, state", name="aggregation")
    vu.check(rows, {"aggregation: totals per zone": lambda r: sum(x["vms"] for x in r) > 0})


async def full_text_search(vu: Any, vm_ids: range, zones: list[str]) -> None:
    await vu.db.fetch(
        "SELECT id, name, ts_rank(search, q) AS rank "
        "FROM vms, plainto_tsquery('english', $1) AS q WHERE search @@ q "
        "ORDER BY rank DESC LIMIT 50", random.choice(SEARCH_TERMS), name="full_text_search")


async def rapid_sequential(vu: Any, vm_ids: range, zones: list[str]) -> None:
    """Five short queries back to back: borrows and returns pool connections quickly."""
    for _ in range(5):
        await vu.db.fetchval("SELECT state FROM vms WHERE id = $1", random.choice(vm_ids),
                             name="rapid_sequential")
        await vu.sleep(0.1)


# -- writes --------------------------------------------------------------------------------------
async def insert(vu: Any, vm_ids: range, zones: list[str]) -> None:
    event_id = await vu.db.fetchval(
        "INSERT INTO events (vm_id, kind, severity, message) VALUES ($1, 'load_test', 'info', "
        "$2) RETURNING id", random.choice(vm_ids), f"vu {vu.id} iteration {vu.iteration}",
        name="insert_event")
    vu.check(event_id, {"insert: returns the new id": lambda i: i is not None and i > 0})


async def update(vu: Any, vm_ids: range, zones: list[str]) -> None:
    status = await vu.db.execute(
        "UPDATE vms SET tags = array_append(tags[1:4], 'load-test'), updated_at = now() "
        "WHERE id = $1", random.choice(vm_ids), name="update_vm")
    vu.check(status, {"update: one row": lambda s: s == "UPDATE 1"})


async def batch_transaction(vu: Any, vm_ids: range, zones: list[str]) -> None:
    """A batch in one transaction: three events and the VM they concern."""
    vm_id = random.choice(vm_ids)
    async with vu.db.transaction(name="batch") as tx:
        await tx.executemany(
            "INSERT INTO events (vm_id, kind, severity, message) VALUES ($1, $2, 'info', $3)",
            [(vm_id, kind, f"batch by vu {vu.id}") for kind in ("stop", "resize", "start")],
            name="batch_insert_events")
        await tx.execute("UPDATE vms SET cpu = cpu, updated_at = now() WHERE id = $1", vm_id,
                         name="batch_touch_vm")


READS: list[Operation] = [simple_select, join_with_filter, aggregation, full_text_search,
                          rapid_sequential]
WRITES: list[Operation] = [insert, update, batch_transaction]


@pytest.mark.load(stages=STAGES, thresholds=THRESHOLDS, db=POOL)
def test_database_queries(load: Any, vm_ids: range, zones: list[str]) -> None:
    """Plan 4 (database): simple SELECT, JOIN with filtering, aggregation, full-text search and
    rapid sequential reads; INSERT, UPDATE and batch transactions; 80/20 read/write,
    200 -> 500 -> 2K -> 5K concurrent queries; P95 < 300 ms overall, reads < 200 ms, writes
    < 500 ms, errors < 1 %."""
    next_read = itertools.cycle(READS).__next__    # every operation in turn, across users
    next_write = itertools.cycle(WRITES).__next__

    async def read(vu: Any) -> None:
        await next_read()(vu, vm_ids, zones)
        await vu.sleep(0.5)

    async def write(vu: Any) -> None:
        await next_write()(vu, vm_ids, zones)
        await vu.sleep(0.5)

    result = load.run({"read": (read, 80), "write": (write, 20)})
    assert result.metric("db_queries{kind:read}").count > 0
    assert result.metric("db_queries{kind:write}").count > 0
