"""Hand-made summary.json shapes for the gate's tests (what the plugin writes, abridged)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MACHINE = {"hostname": "ci-1", "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
           "python": "3.11.9", "cpus": 2}


def trend(p95: float, p99: float | None = None, *, width: float | None = 0.05,
          count: int = 6000) -> dict[str, Any]:
    """A trend entry; ``width``: relative half-width of its ci95 (None: no interval)."""
    p99 = p99 if p99 is not None else p95 * 1.5
    d: dict[str, Any] = {"type": "trend", "count": count, "avg": p95 / 2, "min": p95 / 10,
                         "med": p95 / 2, "max": p99 * 2, "p(90)": p95 * 0.9, "p(95)": p95,
                         "p(99)": p99, "p(99.9)": p99 * 1.2}
    if width is not None:
        d["ci95"] = {"p(95)": [p95 * (1 - width), p95 * (1 + width)],
                     "p(99)": [p99 * (1 - 2 * width), p99 * (1 + 2 * width)]}
    return d


def counter(rate: float, *, seconds: float = 60.0, width: float | None = 0.02) -> dict[str, Any]:
    d: dict[str, Any] = {"type": "counter", "count": rate * seconds, "rate": rate}
    if width is not None:
        d["ci95"] = {"rate": [rate * (1 - width), rate * (1 + width)]}
    return d


def rate(value: float, n: int = 6000) -> dict[str, Any]:
    passes = round(value * n)
    return {"type": "rate", "rate": value, "passes": passes, "fails": n - passes}


def gauge(peak: float) -> dict[str, Any]:
    return {"type": "gauge", "value": 0, "min": 0, "max": peak}


def make_test(nodeid: str = "tests/perf/test_api_load.py::test_api_vm_crud", *,
               p95: float = 100.0, rps: float = 100.0, width: float | None = 0.05,
               executor: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "nodeid": nodeid, "outcome": "passed", "duration_s": 60.0, "shards": 1,
        "executor": executor or {"type": "ramping-vus", "start_vus": 0,
                                 "stages": [["30s", 10], ["30s", 10]]},
        "metrics": {"http_req_duration": trend(p95, width=width),
                    "http_req_failed": rate(0.001),
                    "http_reqs": counter(rps, width=width and width / 2),
                    "vus": gauge(10), "vus_max": gauge(10),
                    "iterations": counter(rps / 5, width=None)},
        "thresholds": [{"metric": "http_req_duration", "expression": "p(95)<500",
                        "observed": p95, "ok": p95 < 500},
                       {"metric": "http_req_failed", "expression": "rate<0.01",
                        "observed": 0.001, "ok": True}],
        "checks": {}, "errors": [], "generator": {},
    }
    entry.update(extra)
    return entry


def summary(*tests: dict[str, Any], scale: float = 0.01,
            machine: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"schema_version": 1, "started": "2026-12-01T10:00:00+00:00",
            "finished": "2026-12-01T10:01:00+00:00", "machine": machine or dict(MACHINE),
            "options": {"load_scale": scale, "load_duration_scale": 0.025,
                        "load_results": "load-results", "sources": {}},
            "tests": list(tests) or [make_test()]}


def write_run(folder: Path, data: dict[str, Any]) -> Path:
    """A run folder holding ``data`` as its summary.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(data), encoding="utf-8")
    return folder
