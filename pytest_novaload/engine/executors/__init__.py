"""One module per executor (k6 names); ``EXECUTORS`` maps the name to its coroutine."""

from __future__ import annotations

from pytest_novaload.engine.executors import (
    arrival_rate,
    constant_vus,
    per_vu_iterations,
    ramping_vus,
    shared_iterations,
)
from pytest_novaload.engine.executors.base import Executor

EXECUTORS: dict[str, Executor] = {
    "ramping-vus": ramping_vus.run,
    "constant-vus": constant_vus.run,
    "per-vu-iterations": per_vu_iterations.run,
    "shared-iterations": shared_iterations.run,
    "constant-arrival-rate": arrival_rate.run,
    "ramping-arrival-rate": arrival_rate.run,
}

__all__ = ["EXECUTORS", "Executor"]
