"""vu.db against a throwaway PostgreSQL: kinds, names, pool wait vs query time, transactions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pytest_novaload.clients.base import ClientContext
from pytest_novaload.clients.db_pool import pool_kwargs
from pytest_novaload.clients.postgres import (
    DbClient,
    DbPool,
    classify_sql,
    validate_db_options,
)
from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import MetricStore

Scenario = Callable[[DbClient], Awaitable[None]]

ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture
def store(metric_store: MetricStore) -> MetricStore:
    """The shared conftest's fresh MetricStore, under a short name."""
    return metric_store


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))


def value(store: MetricStore, metric: str, agg: str, **tags: str) -> float:
    return store.aggregate(metric, tags).value(agg)


def passes_fails(store: MetricStore, metric: str, **tags: str) -> tuple[int, int]:
    stats = store.aggregate(metric, tags).stats(1.0)
    return int(stats["passes"]), int(stats["fails"])


def with_db(store: MetricStore, dsn: str, scenario: Scenario, *, setup: str = "",
            db_options: dict[str, Any] | None = None,
            on_error: Callable[[str, str, str], None] | None = None) -> DbPool:
    """Run `scenario(vu.db)` on a fresh pool, then close the pool the way the runner does."""
    pool = DbPool()

    async def main() -> None:
        if setup:
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute(setup)
            finally:
                await conn.close()
        ctx = ClientContext(store=store, vu_id=1, env={"DATABASE_URL": dsn},
                            options={"db": db_options or {"max_size": 2}}, on_error=on_error)
        db = DbClient(ctx, pool)
        try:
            await scenario(db)
        finally:
            await db.aclose()
            await pool.aclose()

    run(main())
    return pool


@pytest.mark.parametrize(("sql", "kind", "name"), [
    ("SELECT id FROM vms WHERE id = $1", "read", "SELECT vms"),
    ("  -- comment\n /* block */ select count(*) from public.vms v join hosts h on true",
     "read", "SELECT public.vms"),
    ("SELECT 1", "read", "SELECT"),
    ("SELECT extract(epoch FROM now())", "read", "SELECT"),
    ('SELECT * FROM "Vms"', "read", "SELECT Vms"),
    ("(SELECT 1) UNION (SELECT 2)", "read", "SELECT"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "read", "WITH SELECT"),
    ("WITH x AS (SELECT 1) INSERT INTO events SELECT * FROM x", "write", "WITH INSERT events"),
    ("INSERT INTO events(kind) VALUES ('a') RETURNING id", "write", "INSERT events"),
    ("update vms set state = 'on'", "write", "UPDATE vms"),
    ("DELETE FROM ONLY vms WHERE id = 3", "write", "DELETE vms"),
    ("CREATE TABLE t (id int)", "write", "CREATE"),
    ("EXPLAIN SELECT 1", "read", "EXPLAIN"),
    ("", "write", "SQL"),
])
def test_classify_sql(sql: str, kind: str, name: str) -> None:
    assert classify_sql(sql) == (kind, name)


def test_kinds_and_names_are_inferred_or_given(store: MetricStore, pg_dsn: str) -> None:
    async def scenario(db: DbClient) -> None:
        assert await db.execute("INSERT INTO kn_items(v) VALUES ($1)", 1) == "INSERT 0 1"
        new_id = await db.fetchval("INSERT INTO kn_items(v) VALUES (2) RETURNING id")
        rows = await db.fetch("SELECT id, v FROM kn_items ORDER BY id")
        assert [r["v"] for r in rows] == [1, 2]
        row = await db.fetchrow("SELECT v FROM kn_items WHERE id = $1", new_id, name="by_id")
        assert row is not None and row["v"] == 2
        assert await db.fetchval("SELECT v FROM kn_items WHERE id = $1", new_id, kind="write",
                                 name="forced") == 2
        await db.executemany("INSERT INTO kn_items(v) VALUES ($1)", [(3,), (4,), (5,)])

    with_db(store, pg_dsn, scenario,
            setup="CREATE TABLE kn_items (id serial PRIMARY KEY, v int)")
    series = {dict(tags)["name"]: dict(tags)["kind"] for tags in store.series("db_queries")}
    assert series == {"INSERT kn_items": "write", "SELECT kn_items": "read",
                      "by_id": "read", "forced": "write"}
    assert value(store, "db_queries", "count", kind="write", name="INSERT kn_items") == 3
    assert value(store, "db_queries", "count", kind="read") == 2
    assert value(store, "db_query_duration", "count") == 6
    assert passes_fails(store, "db_query_failed") == (0, 6)
    assert value(store, "db_pool_wait", "count") == 6
    assert set(store.series("db_pool_wait")) == {()}
    for metric in ("db_query_duration", "db_queries", "db_query_failed", "db_tx_duration",
                   "db_pool_wait"):
        assert metric in store


def test_pool_wait_is_measured_apart_from_query_time(store: MetricStore, pg_dsn: str) -> None:
    async def scenario(db: DbClient) -> None:
        # 100 VUs on 5 connections: each 10 ms query holds a connection the others wait for.
        await asyncio.gather(*(db.execute("SELECT pg_sleep(0.01)", name="sleep")
                               for _ in range(100)))

    pool = with_db(store, pg_dsn, scenario, db_options={"max_size": 5})
    assert pool.pool is None
    assert value(store, "db_pool_wait", "count") == 100
    assert value(store, "db_query_duration", "count", name="sleep") == 100
    assert value(store, "db_query_duration", "min") >= 10.0  # pg_sleep: no wait inside
    # The last of 100 tasks waits for 19 rounds of 10 ms queries on 5 connections.
    assert value(store, "db_pool_wait", "max") >= 150.0
    assert value(store, "db_pool_wait", "max") > value(store, "db_query_duration", "max")


def test_transaction_commits_or_rolls_back_and_is_timed(store: MetricStore, pg_dsn: str) -> None:
    async def scenario(db: DbClient) -> None:
        async with db.transaction(name="batch") as tx:
            await tx.execute("INSERT INTO tx_items(v) VALUES (1)")
            await tx.executemany("INSERT INTO tx_items(v) VALUES ($1)", [(2,), (3,)])
        with pytest.raises(ValueError, match="abandon"):
            async with db.transaction(name="batch") as tx:
                await tx.execute("INSERT INTO tx_items(v) VALUES (99)")
                raise ValueError("abandon")
        with pytest.raises(asyncpg.UniqueViolationError):
            async with db.transaction(name="batch") as tx:
                await tx.execute("INSERT INTO tx_items(v) VALUES (100)")
                await tx.execute("INSERT INTO tx_items(v) VALUES (1)")  # duplicate key
        async with db.transaction(name="report", readonly=True) as tx:
            assert await tx.fetchval("SELECT count(*) FROM tx_items") == 3
        assert tx.connection is None
        assert await db.fetchval("SELECT sum(v) FROM tx_items") == 6

    with_db(store, pg_dsn, scenario,
            setup="CREATE TABLE tx_items (id serial PRIMARY KEY, v int UNIQUE)")
    assert value(store, "db_tx_duration", "count", name="batch", kind="write") == 3
    assert value(store, "db_tx_duration", "count", name="report", kind="read") == 1
    assert value(store, "db_queries", "count", name="INSERT tx_items") == 5
    assert passes_fails(store, "db_query_failed", name="INSERT tx_items") == (1, 4)
    assert value(store, "db_pool_wait", "count") == 5  # one per transaction + the last query


def test_sql_error_is_counted_and_propagates(store: MetricStore, pg_dsn: str) -> None:
    async def scenario(db: DbClient) -> None:
        with pytest.raises(asyncpg.UndefinedTableError):
            await db.fetch("SELECT * FROM no_such_table")
        assert await db.fetchval("SELECT 1") == 1  # the connection went back to the pool

    with_db(store, pg_dsn, scenario)
    assert passes_fails(store, "db_query_failed", name="SELECT no_such_table") == (1, 0)
    assert value(store, "db_query_duration", "count", name="SELECT no_such_table") == 1
    assert passes_fails(store, "db_query_failed") == (1, 1)


def test_sql_errors_reach_on_error_with_the_statement_name(store: MetricStore,
                                                          pg_dsn: str) -> None:
    errors: list[tuple[str, ...]] = []

    def broken(metric: str, kind: str, message: str) -> None:
        errors.append((kind, message) if metric == "db_query_failed" else (metric, kind, message))
        raise RuntimeError("callback bug")  # must not replace the SQL error

    async def scenario(db: DbClient) -> None:
        assert await db.fetchval("SELECT 1") == 1  # successes report nothing
        with pytest.raises(asyncpg.UndefinedTableError):
            await db.fetch("SELECT * FROM no_such_table")
        with pytest.raises(asyncpg.UndefinedTableError):
            async with db.transaction(name="tx") as tx:
                await tx.execute("DELETE FROM gone", name="cleanup")

    with_db(store, pg_dsn, scenario, on_error=broken)
    assert [kind for kind, _ in errors] == ["UndefinedTableError", "UndefinedTableError"]
    assert errors[0][1] == ('UndefinedTableError: relation "no_such_table" does not exist '
                            "(statement: SELECT no_such_table)")
    assert errors[1][1].endswith("(statement: cleanup)")


def test_unreachable_database_counts_failed_queries(store: MetricStore, free_port: int) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port}/nothing"  # nothing listens there

    async def scenario(db: DbClient) -> None:
        with pytest.raises(OSError):
            await db.fetch("SELECT 1")
        with pytest.raises(OSError):
            async with db.transaction(name="batch"):
                raise AssertionError("the body must not run")

    errors: list[tuple[str, ...]] = []
    with_db(store, dsn, scenario, on_error=lambda metric, kind, msg: errors.append(
        (kind, msg) if metric == "db_query_failed" else (metric, kind, msg)))
    assert [kind for kind, _ in errors] == ["ConnectionRefusedError"] * 2
    assert errors[0][1].endswith("(statement: SELECT)")
    assert errors[1][1].endswith("(statement: batch)")
    assert passes_fails(store, "db_query_failed", name="SELECT") == (1, 0)
    assert passes_fails(store, "db_query_failed", name="batch") == (1, 0)
    assert value(store, "db_query_duration", "count") == 0
    assert value(store, "db_pool_wait", "count") == 0


def test_pool_is_shared_created_lazily_and_closed_by_aclose(store: MetricStore,
                                                           pg_dsn: str) -> None:
    async def main() -> None:
        pool = DbPool()
        ctxs = [ClientContext(store=store, vu_id=i, env={"DATABASE_URL": pg_dsn},
                              options={"db": {"max_size": 3, "min_size": 1}}) for i in range(3)]
        vus = [DbClient(ctx, pool) for ctx in ctxs]
        assert pool.pool is None  # nothing connects before the first query
        await asyncio.gather(*(vu.fetchval("SELECT $1::int", i) for i, vu in enumerate(vus)))
        raw = pool.pool
        assert raw is not None and raw.get_max_size() == 3 and raw.get_min_size() == 1
        await pool.aclose()
        assert pool.pool is None and raw.is_closing()

    run(main())
    assert value(store, "db_queries", "count") == 3


def test_config_errors_name_the_value_and_the_fix(store: MetricStore, pg_dsn: str) -> None:
    async def main() -> None:
        no_url = DbClient(ClientContext(store=store, vu_id=1), DbPool())
        with pytest.raises(ConfigError, match="DATABASE_URL is not set"):
            await no_url.fetch("SELECT 1")
        bad_option = DbClient(ClientContext(store=store, vu_id=1, env={"DATABASE_URL": pg_dsn},
                                            options={"db": {"maxsize": 3}}), DbPool())
        with pytest.raises(ConfigError, match=r"db option 'maxsize': unknown option; did you "
                                              r"mean 'max_size'\?"):
            await bad_option.fetch("SELECT 1")
        with pytest.raises(ConfigError, match="kind='reads'"):
            await no_url.fetch("SELECT 1", kind="reads")

    run(main())


def test_validate_db_options_reports_every_problem_at_once() -> None:
    problems = validate_db_options({
        "maxsize": 3, "max_size": -1, "min_size": "2", "command_timeout": "zz",
        "acquire_timeout": 0, "max_queries": 0, "server_settings": {"jit": False}})
    text = "\n".join(problems)
    assert len(problems) == 7, text
    assert "'maxsize': unknown option; did you mean 'max_size'?" in text
    for fragment in ("max_size=-1: expected a whole number >= 1", "min_size='2'",
                     "command_timeout='zz': expected seconds (> 0)", "acquire_timeout=0",
                     "max_queries=0", "server_settings={'jit': False}"):
        assert fragment in text
    assert validate_db_options({"min_size": 30}) == [
        "min_size=30 is above max_size=20 (the default): lower min_size or raise max_size"]


@pytest.mark.parametrize("opts", [
    {}, {"max_size": 5, "min_size": 0}, {"command_timeout": "30s", "acquire_timeout": 2.5},
    {"connect_timeout": None, "max_inactive_connection_lifetime": 0},
    {"server_settings": {"application_name": "load"}, "statement_cache_size": 0},
])
def test_validate_db_options_accepts_valid_dicts(opts: dict[str, Any]) -> None:
    assert validate_db_options(opts) == []


def test_pool_options_use_the_validator_and_accept_durations() -> None:
    kwargs, acquire = pool_kwargs({"max_size": 4, "command_timeout": "1m",
                                    "connect_timeout": "500ms", "acquire_timeout": "2s"})
    assert kwargs == {"max_size": 4, "min_size": 4, "command_timeout": 60.0, "timeout": 0.5}
    assert acquire == 2.0
    with pytest.raises(ConfigError) as info:
        pool_kwargs({"max_size": 0, "command_timeout": "zz"})
    assert info.value.problems == [f"db option {p}" for p in validate_db_options(
        {"max_size": 0, "command_timeout": "zz"})]
    assert len(info.value.problems) == 2


def test_module_imports_without_websockets_asyncpg_or_pytest() -> None:
    code = ("import sys; sys.modules['websockets'] = None; "
            "import pytest_novaload.clients.postgres as pg; "
            "assert 'asyncpg' not in sys.modules, 'asyncpg is imported when the pool is made'; "
            "assert pg.validate_db_options({'max_size': 2}) == []; "
            "assert 'pytest' not in sys.modules, 'the client must not import pytest'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": ROOT})
