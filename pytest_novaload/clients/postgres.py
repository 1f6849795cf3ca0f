"""PostgreSQL client behind ``vu.db``: asyncpg queries timed apart from the wait for a connection.

One ``DbPool`` per generator process (created on first use from ``DATABASE_URL`` and
``options["db"]``; the runner closes it at run end with ``await pool.aclose()``) and one
``DbClient`` per VU. Every call borrows a pool connection and gives it back at once, so many VUs
share a small pool as a real service does::

    rows = await vu.db.fetch("SELECT id, state FROM vms WHERE owner = $1", owner)
    await vu.db.execute("UPDATE vms SET state = $1 WHERE id = $2", "running", vm_id)
    async with vu.db.transaction(name="batch") as tx:       # commit, or rollback on exception
        await tx.execute("INSERT INTO events(vm_id, kind) VALUES ($1, 'start')", vm_id)

Tags: ``kind`` is "read" or "write". When not given it comes from the SQL: statements starting
with SELECT, WITH (with no INSERT/UPDATE/DELETE/MERGE in it), SHOW, VALUES, TABLE, EXPLAIN or
FETCH are reads, everything else is a write, whichever method runs them (``fetchrow`` of an
``INSERT ... RETURNING`` is a write). ``name`` defaults to the statement keyword and its first
table, e.g. "SELECT vms", "INSERT events", "UPDATE vms" ("SELECT" when there is no table): stable
and bounded by the schema even when SQL embeds literal values. Pass ``name=`` to split finer.

Metrics: ``db_query_duration`` (trend, ms of the query alone), ``db_queries`` (counter),
``db_query_failed`` (rate), tagged name/kind; ``db_tx_duration`` (trend, ms from BEGIN to the
end of COMMIT/ROLLBACK, tagged name and kind: "write" when a write ran inside, else "read");
``db_pool_wait`` (trend, ms waiting for a pool connection,
untagged: it describes the pool, not the query).

Errors propagate: a SQL error raises asyncpg's own exception in the scenario (authors want to see
them; the runner counts them by type) after recording ``db_query_failed`` True and the query's
duration. A call that cannot get a connection (pool creation refused, ``acquire_timeout``) counts
as one failed query of that name, with no duration. ``executemany`` is one query (one batch).
Each failure reports its cause: ``ctx.report("db_query_failed", <exception class>,
"<class>: <text> (statement: <name>)")``. Running out of file descriptors or ports ("Too
many open files" while the pool connects) is the generator's shortage, not the database's:
reported under ``generator`` (shown on the generator line with the fix), no failed sample.

Pool options (``options["db"]``, checked by `validate_db_options`): see ``DB_OPTIONS`` in
`db_pool`; times accept seconds or durations such as '30s'. asyncpg is imported only when the
pool is created.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_novaload.clients.base import Tags, with_tags
from pytest_novaload.clients.db_pool import DB_OPTIONS, DbPool, validate_db_options
from pytest_novaload.clients.measure import CallSinks
from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics.builtins import define_builtins
from pytest_novaload.metrics.errors import GENERATOR, RESOURCE_ERROR, error_tag

if TYPE_CHECKING:
    from pytest_novaload.clients.base import ClientContext
    from pytest_novaload.metrics.sinks import Trend

__all__ = ["DB_OPTIONS", "DbClient", "DbPool", "DbTransaction", "classify_sql",
           "validate_db_options"]

KINDS = ("read", "write")

_READ_KEYWORDS = frozenset({"SELECT", "SHOW", "VALUES", "TABLE", "EXPLAIN", "FETCH"})
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.S)
_KEYWORD = re.compile(r"[A-Za-z]+")
_WRITE_VERB = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.I)
_IDENT = r'("[^"]+"|[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?)(?![\w$.])'
_TABLE = {
    # not "FROM now()": a function call is no table
    "SELECT": re.compile(r"\bFROM\s+(?:ONLY\s+)?" + _IDENT + r"(?!\s*\()", re.I),
    "INSERT": re.compile(r"^INSERT\s+INTO\s+" + _IDENT, re.I),
    "UPDATE": re.compile(r"^UPDATE\s+(?:ONLY\s+)?" + _IDENT, re.I),
    "DELETE": re.compile(r"^DELETE\s+FROM\s+(?:ONLY\s+)?" + _IDENT, re.I),
    "MERGE": re.compile(r"^MERGE\s+INTO\s+(?:ONLY\s+)?" + _IDENT, re.I),
}


@functools.lru_cache(maxsize=2048)
def classify_sql(sql: str) -> tuple[str, str]:
    """(kind, default name) of a statement: ("read", "SELECT vms"), ("write", "INSERT events")."""
    lead = _LEADING.match(sql)
    body = sql[lead.end():] if lead else sql
    m = _KEYWORD.match(body)
    keyword = m.group(0).upper() if m else ""
    if keyword == "WITH":
        verb = _WRITE_VERB.search(body)
        if verb is None:
            return "read", "WITH SELECT"
        main = verb.group(1).upper()
        table = _TABLE[main].match(body[verb.start():])
        return "write", f"WITH {main} {table.group(1).strip(chr(34))}" if table else f"WITH {main}"
    kind = "read" if keyword in _READ_KEYWORDS else "write"
    pattern = _TABLE.get(keyword)
    table = pattern.search(body) if pattern is not None else None
    name = f"{keyword} {table.group(1).strip(chr(34))}" if table else (keyword or "SQL")
    return kind, name


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"vu.db kind={kind!r}: expected 'read' or 'write' (or leave it out to "
                          f"infer it from the SQL)")
    return kind


_CALL = ("db_query_duration", "db_queries", "db_query_failed")
_SQL_CACHE = 256  # statements per VU and tag set whose sinks are found by their SQL text


class _Statement(CallSinks):
    """The sinks of one (name, kind), looked up once."""

    __slots__ = ("kind", "name")

    def __init__(self, calls: _Calls, name: str, kind: str, base: Tags = ()) -> None:
        super().__init__(calls.store, _CALL, with_tags(base, (("kind", kind), ("name", name))))
        self.name = name
        self.kind = kind


class _Calls:
    """What a VU's `DbClient` and its transactions share: the pool, the sinks of each statement
    and transaction name, and the one path that times a query and records its outcome."""

    def __init__(self, ctx: ClientContext, pool: DbPool) -> None:
        self.ctx = ctx
        self.pool = pool
        self.store = ctx.store
        define_builtins(ctx.store, "db")
        self._options: Mapping[str, Any] = ctx.options.get("db") or {}
        self.pool_wait: Trend = ctx.store.trend("db_pool_wait", ())
        self._base = ctx.base_tags   # the VU's scenario (and group) tags, as k6 tags samples
        self._statements: dict[tuple[Tags, str, str], _Statement] = {}
        self._tx_trends: dict[tuple[Tags, str, str], Trend] = {}
        self._by_base: dict[Tags, dict[str, _Statement]] = {}
        self._last_base: Tags | None = None
        self._by_sql: dict[str, _Statement] = {}

    def statement(self, sql: str, name: str | None, kind: str | None) -> _Statement:
        base = self._base()
        if base is not self._last_base:  # the VU entered or left a group: other sinks
            self._last_base = base
            self._by_sql = self._by_base.setdefault(base, {})
        if name is None and kind is None:  # the usual call: one dict lookup by the SQL text
            sinks = self._by_sql.get(sql)
            if sinks is None:
                sinks = self._statement(sql, None, None, base)
                if len(self._by_sql) < _SQL_CACHE:  # SQL with literals inlined: bounded
                    self._by_sql[sql] = sinks
            return sinks
        return self._statement(sql, name, kind, base)

    def _statement(self, sql: str, name: str | None, kind: str | None,
                   base: Tags) -> _Statement:
        if name is None or kind is None:
            inferred_kind, inferred_name = classify_sql(sql)
            name = inferred_name if name is None else name
            kind = inferred_kind if kind is None else _check_kind(kind)
        else:
            _check_kind(kind)
        sinks = self._statements.get((base, name, kind))
        if sinks is None:
            sinks = self._statements[(base, name, kind)] = _Statement(self, name, kind, base)
        return sinks

    def tx_trend(self, name: str, kind: str) -> Trend:
        base = self._base()
        trend = self._tx_trends.get((base, name, kind))
        if trend is None:
            trend = self._tx_trends[(base, name, kind)] = self.store.trend(
                "db_tx_duration", with_tags(base, (("kind", kind), ("name", name))))
        return trend

    async def acquire(self, sinks: _Statement | None, tx_name: str = "") -> tuple[Any, Any]:
        """(asyncpg pool, connection); the wait is recorded in db_pool_wait. No connection
        (pool refused, acquire_timeout) is a failed query, with no duration, of ``sinks`` (of
        a write named ``tx_name`` for a transaction)."""
        start = time.perf_counter()
        try:
            pool = self.pool.pool or await self.pool.get(self.ctx.env, self._options)
            conn = await pool.acquire(timeout=self.pool.acquire_timeout)
        except Exception as exc:
            self.failed(sinks or self.statement("", tx_name, "write"), None, exc)
            raise
        self.pool_wait.add((time.perf_counter() - start) * 1000.0)
        return pool, conn

    async def timed(self, sinks: _Statement, conn: Any, method: str, sql: str,
                    args: Sequence[Any], timeout: float | None,
                    extra: Mapping[str, Any]) -> Any:
        """Run one query and record duration, count and outcome (cancellation records
        nothing)."""
        start = time.perf_counter()
        try:
            result = await getattr(conn, method)(sql, *args, timeout=timeout, **extra)
        except Exception as exc:
            self.failed(sinks, (time.perf_counter() - start) * 1000.0, exc)
            raise
        sinks.record((time.perf_counter() - start) * 1000.0, False)
        return result

    def failed(self, sinks: _Statement, ms: float | None, exc: BaseException) -> None:
        """A failed query and its cause (a ConfigError too: no DATABASE_URL, a bad pool
        option; the failed sample is counted, so its cause is listed). The generator's own
        shortage of descriptors or ports is its failure, not the database's: no sample."""
        tag = error_tag(exc)
        if tag.type == RESOURCE_ERROR:
            self.ctx.report(GENERATOR, tag.type, f"{tag} (statement: {sinks.name})")
            return
        sinks.record(ms, True)
        self.ctx.report("db_query_failed", tag.type, f"{tag} (statement: {sinks.name})")


class _Queries:
    """fetch/fetchrow/fetchval/execute/executemany, each timed and counted by name and kind."""

    async def _call(self, method: str, sql: str, args: Sequence[Any], name: str | None,
                    kind: str | None, timeout: float | None, **extra: Any) -> Any:
        raise NotImplementedError

    async def fetch(self, sql: str, *args: Any, name: str | None = None,
                    kind: str | None = None, timeout: float | None = None) -> list[Any]:
        """All rows (asyncpg Records)."""
        rows: list[Any] = await self._call("fetch", sql, args, name, kind, timeout)
        return rows

    async def fetchrow(self, sql: str, *args: Any, name: str | None = None,
                       kind: str | None = None, timeout: float | None = None) -> Any:
        """The first row, or None."""
        return await self._call("fetchrow", sql, args, name, kind, timeout)

    async def fetchval(self, sql: str, *args: Any, column: int = 0, name: str | None = None,
                       kind: str | None = None, timeout: float | None = None) -> Any:
        """One value of the first row, or None."""
        return await self._call("fetchval", sql, args, name, kind, timeout, column=column)

    async def execute(self, sql: str, *args: Any, name: str | None = None,
                      kind: str | None = None, timeout: float | None = None) -> str:
        """Run a statement; returns its status, e.g. "UPDATE 1"."""
        status: str = await self._call("execute", sql, args, name, kind, timeout)
        return status

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]], *,
                          name: str | None = None, kind: str | None = None,
                          timeout: float | None = None) -> None:
        """Run a statement once per argument tuple, in one batch (counted as one query)."""
        await self._call("executemany", sql, (args,), name, kind, timeout)


class DbClient(_Queries):
    """Per-VU ``vu.db``: each call borrows a pool connection and returns it right after."""

    def __init__(self, ctx: ClientContext, pool: DbPool) -> None:
        self._calls = _Calls(ctx, pool)

    @property
    def pool(self) -> DbPool:
        return self._calls.pool

    def transaction(self, name: str = "transaction", *, isolation: str | None = None,
                    readonly: bool = False, deferrable: bool = False) -> DbTransaction:
        """``async with vu.db.transaction(name=...) as tx``: one connection, one transaction.

        Commits on normal exit, rolls back when the block raises (the exception propagates).
        ``db_tx_duration{name, kind}`` gets the time from BEGIN to the end of COMMIT/ROLLBACK;
        kind is "write" when a write ran inside, else "read". BEGIN/COMMIT are not counted as
        queries; when no connection can be had, it counts as a failed write query named ``name``.
        """
        return DbTransaction(self._calls, name, isolation=isolation, readonly=readonly,
                             deferrable=deferrable)

    async def aclose(self) -> None:
        """Nothing to release: connections go back to the pool after every call."""

    async def _call(self, method: str, sql: str, args: Sequence[Any], name: str | None,
                    kind: str | None, timeout: float | None, **extra: Any) -> Any:
        calls = self._calls
        sinks = calls.statement(sql, name, kind)
        pool = calls.pool.pool
        if pool is None:
            pool, conn = await calls.acquire(sinks)
            start = time.perf_counter()
        else:
            # The hot path, inlined (acquire + timed): two coroutine frames and a clock read
            # less per query; same samples, same order.
            start = time.perf_counter()
            try:
                conn = await pool.acquire(timeout=calls.pool.acquire_timeout)
            except Exception as exc:
                calls.failed(sinks, None, exc)
                raise
            now = time.perf_counter()
            calls.pool_wait.add((now - start) * 1000.0)
            start = now
        try:
            result = await getattr(conn, method)(sql, *args, timeout=timeout, **extra)
        except Exception as exc:
            calls.failed(sinks, (time.perf_counter() - start) * 1000.0, exc)
            raise
        else:
            sinks.record((time.perf_counter() - start) * 1000.0, False)
            return result
        finally:
            await pool.release(conn)


class DbTransaction(_Queries):
    """``async with vu.db.transaction(...) as tx``; ``tx`` runs queries inside the transaction."""

    def __init__(self, calls: _Calls, name: str, *, isolation: str | None,
                 readonly: bool, deferrable: bool) -> None:
        self._calls = calls
        self.name = name
        self._tx_options = {"isolation": isolation, "readonly": readonly,
                            "deferrable": deferrable}
        self._wrote = False
        self._pool: Any = None
        self._conn: Any = None
        self._tx: Any = None
        self._start = 0.0

    @property
    def connection(self) -> Any:
        """The asyncpg connection the transaction runs on (None outside ``async with``)."""
        return self._conn

    async def __aenter__(self) -> DbTransaction:
        if self._conn is not None:
            raise RuntimeError(f"transaction {self.name!r} is already open; "
                               f"use a new vu.db.transaction() for another one")
        self._wrote = False
        self._pool, self._conn = await self._calls.acquire(None, self.name)
        self._start = time.perf_counter()
        try:
            self._tx = self._conn.transaction(**self._tx_options)
            await self._tx.start()
        except BaseException:
            await self._release()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                await self._tx.commit()
            else:
                # The block's exception is the one worth seeing; a broken connection that
                # cannot roll back is discarded by the pool on release.
                with contextlib.suppress(Exception):
                    await self._tx.rollback()
        finally:
            kind = "write" if self._wrote else "read"
            self._calls.tx_trend(self.name, kind).add(
                (time.perf_counter() - self._start) * 1000.0)
            await self._release()

    async def _release(self) -> None:
        conn, self._conn, self._tx = self._conn, None, None
        if conn is not None:
            await self._pool.release(conn)

    async def _call(self, method: str, sql: str, args: Sequence[Any], name: str | None,
                    kind: str | None, timeout: float | None, **extra: Any) -> Any:
        if self._conn is None:
            raise RuntimeError(f"transaction {self.name!r} is not open: run queries inside "
                               f"`async with vu.db.transaction(...) as tx`")
        sinks = self._calls.statement(sql, name, kind)
        if sinks.kind == "write":
            self._wrote = True
        return await self._calls.timed(sinks, self._conn, method, sql, args, timeout, extra)
