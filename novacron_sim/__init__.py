"""Stand-in NovaCron service (REST, DWCP v3 and WebSocket hub over PostgreSQL) for load tests.

Importing the package is cheap: the server lives in `novacron_sim.app` and needs aiohttp;
`novacron_sim.pg` and `novacron_sim.launch` need only the standard library (asyncpg for
`init_schema`). The names below are loaded on first use, so `python -m novacron_sim.pg` runs
without importing itself twice.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "PgCluster",
    "PostgresNotFound",
    "StandIn",
    "init_schema",
    "init_schema_sync",
    "start_postgres",
    "start_sim",
]

_HOME = {"StandIn": "launch", "start_sim": "launch"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'novacron_sim' has no attribute {name!r}")
    return getattr(importlib.import_module(f"novacron_sim.{_HOME.get(name, 'pg')}"), name)
