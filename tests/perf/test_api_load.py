"""Plan item 1, API load test (k6 `api_load_test.js`): VM CRUD over REST under progressive load,
100 -> 1K -> 10K users.

Full plan: `pytest tests/perf/test_api_load.py --load-scale 1 --load-duration-scale 1`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

STAGES = [
    ("2m", 100),     # warm-up: ramp to 100 users
    ("5m", 100),     # baseline at 100 users
    ("2m", 1000),    # scale-up to 1K users
    ("5m", 1000),    # sustain 1K users
    ("2m", 10000),   # stress: ramp to 10K users
    ("5m", 10000),   # peak at 10K users
    ("2m", 0),       # ramp-down
]

THRESHOLDS = {
    "http_req_duration": ["p(95)<500", "p(99)<1000"],   # P95 < 500 ms, P99 < 1 s
    "http_req_failed": ["rate<0.01"],                    # error rate < 1 %
    "vm_creation_time": ["p(95)<2000"],                  # VM creation < 2 s (P95)
}


def vm_crud_user(vm_creation_time: Any, zones: Sequence[str], vm_ids: range,
                 think: float = 1.0) -> Callable[[Any], Awaitable[None]]:
    """One user's visit: list, read, create, update, delete, then filter VMs (the plan's order
    and think times; `think` scales the think times, for short copies of the scenario)."""

    async def user(vu: Any) -> None:
        # List VMs: the most common call.
        r = await vu.http.get("/api/v1/vms", params={"limit": 50}, name="list_vms")
        vu.check(r, {
            "list: status 200": lambda r: r.status_code == 200,
            "list: has vms": lambda r: isinstance(r.json()["vms"], list),
        })
        await vu.sleep(1 * think)

        # Read one VM (it may have been deleted on a shared system: 404 is an answer too).
        vm_id = random.choice(vm_ids)
        r = await vu.http.get(f"/api/v1/vms/{vm_id}", name="get_vm", expected=(200, 404))
        vu.check(r, {"read: status 200 or 404": lambda r: r.status_code in (200, 404),
                     "read: the VM asked for": lambda r: r.status_code == 404
                     or r.json()["id"] == vm_id})
        await vu.sleep(0.5 * think)

        # Create a VM: the write path, timed on its own.
        name = f"load-vm-{vu.id}-{vu.iteration}"
        r = await vu.http.post("/api/v1/vms", name="create_vm", json={
            "name": name, "cpu": 4, "memory_mb": 8192, "disk_gb": 100,
            "zone": zones[vu.id % len(zones)], "tags": ["load-test"],
        })
        vm_creation_time.add(r.elapsed.total_seconds() * 1000)
        created = vu.check(r, {
            "create: status 201": lambda r: r.status_code == 201,
            "create: has id and name": lambda r: r.json()["name"] == name and r.json()["id"] > 0,
        })
        await vu.sleep(1 * think)

        if created:
            vm = r.json()
            # Update it, then delete it: the suite leaves nothing behind.
            r = await vu.http.patch(f"/api/v1/vms/{vm['id']}", name="update_vm",
                                    json={"cpu": 8, "memory_mb": 16384})
            vu.check(r, {"update: status 200": lambda r: r.status_code == 200,
                         "update: applied": lambda r: r.json()["cpu"] == 8})
            await vu.sleep(0.5 * think)
            r = await vu.http.delete(f"/api/v1/vms/{vm['id']}", name="delete_vm")
            vu.check(r, {"delete: status 204": lambda r: r.status_code == 204})
        await vu.sleep(2 * think)

        # Filter VMs by zone and state.
        zone = random.choice(zones)
        r = await vu.http.get("/api/v1/vms", params={"zone": zone, "state": "running"},
                              name="filter_vms")
        vu.check(r, {
            "filter: status 200": lambda r: r.status_code == 200,
            "filter: only matching VMs": lambda r: all(
                v["zone"] == zone and v["state"] == "running" for v in r.json()["vms"]),
        })
        await vu.sleep(1 * think)

    return user


@pytest.mark.load(stages=STAGES, thresholds=THRESHOLDS)
def test_api_vm_crud(load: Any, zones: list[str], vm_ids: range) -> None:
    """Plan 1 (API): VM create/read/list/update/delete with checks, 100 -> 1K -> 10K users;
    P95 < 500 ms, P99 < 1 s, errors < 1 %, VM creation P95 < 2 s."""
    vm_creation_time = load.trend("vm_creation_time")
    result = load.run(vm_crud_user(vm_creation_time, zones, vm_ids))
    assert result.metric("http_reqs{name:create_vm}").count > 0
    assert result.metric("checks").rate > 0.99, result.checks()
