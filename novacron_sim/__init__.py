"""Stand-in NovaCron service (REST, DWCP v3 and WebSocket hub over PostgreSQL) for load tests.

Importing the package is cheap: the server lives in `novacron_sim.server` and needs aiohttp;
`novacron_sim.pg` needs only the standard library (asyncpg for `init_schema`).
"""

from __future__ import annotations

from novacron_sim.pg import (
    PgCluster,
    PostgresNotFound,
    init_schema,
    init_schema_sync,
    start_postgres,
)

__all__ = ["PgCluster", "PostgresNotFound", "init_schema", "init_schema_sync", "start_postgres"]
