"""Plan item 2, DWCP protocol load test (k6 `dwcp_load_test.js`): DWCP v3 live migrations
started over REST and monitored over the DWCP WebSocket, 50 -> 100 -> 500 -> 1K concurrent
migrations.

Full plan: `pytest tests/perf/test_dwcp_load.py --load-scale 1 --load-duration-scale 1`.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import pytest

STAGES = [
    ("2m", 50),      # warm-up: migrations are heavy
    ("5m", 100),     # baseline: 100 concurrent migrations
    ("2m", 500),     # ramp to 500
    ("5m", 500),     # sustain 500
    ("2m", 1000),    # stress: 1K concurrent migrations
    ("3m", 1000),    # sustain the stress
    ("2m", 0),       # ramp-down
]

THRESHOLDS = {
    "migration_duration": ["p(95)<30000"],          # migration duration < 30 s (P95)
    "ws_msg_latency{name:dwcp}": ["p(95)<1000"],    # DWCP protocol latency < 1 s
    "dwcp_errors": ["rate<0.02"],                   # error rate < 2 %
    "migration_success": ["rate>0.98"],             # successful migration tracking
}

# Multi-zone patterns, taken in turn: between zones of one continent (us-east-1 -> us-west-2)
# and across continents (eu-west-1 -> ap-southeast-1).
PATTERNS = ("same-continent", "cross-continent")
MONITOR_TIMEOUT = 60.0   # seconds without a DWCP event before a migration counts as lost
BATCH = 10               # migrations of this user re-checked by one batch status call


def pick_target(source: str, zones: Sequence[str], pattern: str) -> str:
    """A target zone for `pattern`; any other zone when the pattern has none to offer."""
    region = source.split("-")[0]
    same = [z for z in zones if z != source and z.split("-")[0] == region]
    other = [z for z in zones if z.split("-")[0] != region]
    return random.choice((same if pattern == "same-continent" else other)
                         or [z for z in zones if z != source])


@pytest.mark.load(stages=STAGES, thresholds=THRESHOLDS)
def test_dwcp_migrations(load: Any, zones: list[str], vm_ids: range) -> None:
    """Plan 2 (DWCP): REST migration start, WebSocket monitoring until completed, batch status
    checks, multi-zone patterns, 50 -> 100 -> 500 -> 1K concurrent migrations; migration P95
    < 30 s, protocol latency P95 < 1 s, errors < 2 %, successful migrations tracked."""
    migration_duration = load.trend("migration_duration")
    dwcp_errors = load.rate("dwcp_errors")
    migration_success = load.rate("migration_success")
    started_by: dict[int, deque[int]] = {}   # vu.id -> its latest migration ids

    async def monitor(vu: Any, migration_id: int) -> dict[str, Any]:
        """Follow one migration on the DWCP stream; return its final event."""
        async with vu.ws.dwcp(name="dwcp") as ws:
            # The first event answers the subscription: its round trip is the protocol latency.
            event = await ws.request({"type": "subscribe", "migration_id": migration_id},
                                     match={"migration_id": migration_id})
            progress = []
            while event["type"] == "progress":
                progress.append(event["progress"])
                event = await ws.recv_json(timeout=MONITOR_TIMEOUT)
            vu.check(progress, {"monitor: progress never goes back":
                                lambda p: p == sorted(p)})
            return dict(event)

    async def migration(vu: Any) -> None:
        # Each user migrates its own VM, from wherever that VM is now.
        vm_id = vm_ids[(vu.id - 1) % len(vm_ids)]
        r = await vu.http.get(f"/api/v1/vms/{vm_id}", name="get_vm")
        if not vu.check(r, {"vm: status 200": lambda r: r.status_code == 200}):
            dwcp_errors.add(True)
            await vu.sleep(1)
            return
        source = r.json()["zone"]
        pattern = PATTERNS[vu.iteration % len(PATTERNS)]
        target = pick_target(source, zones, pattern)

        # Start the live migration over REST.
        t0 = time.perf_counter()
        r = await vu.http.post("/api/v1/migrations", name="start_migration", json={
            "vm_id": vm_id, "source_zone": source, "target_zone": target})
        started = vu.check(r, {"start: status 201": lambda r: r.status_code == 201,
                               "start: has id": lambda r: r.json()["id"] > 0})
        dwcp_errors.add(not started)
        if not started:
            await vu.sleep(1)
            return
        migration_id = r.json()["id"]
        mine = started_by.setdefault(vu.id, deque(maxlen=BATCH))
        mine.append(migration_id)

        # Monitor it over the DWCP WebSocket until it completes (or fails).
        try:
            final = await monitor(vu, migration_id)
        except Exception:
            dwcp_errors.add(True)            # counted here, and by type in the summary
            migration_success.add(False)
            raise
        completed = final["type"] == "completed"
        dwcp_errors.add(final["type"] not in ("completed", "failed"))
        migration_success.add(completed)
        if completed:
            migration_duration.add((time.perf_counter() - t0) * 1000, pattern=pattern)

        # Batch status check of this user's latest migrations.
        r = await vu.http.post("/api/v1/migrations/status", name="batch_status",
                               json={"ids": list(mine)})
        dwcp_errors.add(not vu.check(r, {
            "batch: status 200": lambda r: r.status_code == 200,
            "batch: every migration known": lambda r: not r.json()["not_found"]
            and len(r.json()["migrations"]) == len(mine),
        }))
        await vu.sleep(1)

    result = load.run(migration)
    assert result.metric("migration_duration").count > 0
