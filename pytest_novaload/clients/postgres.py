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
Each failure also calls ``ctx.on_error(<exception class>, "<class>: <text> (statement: <name>)")``.

Pool options (``options["db"]``, checked by `validate_db_options`): see ``DB_OPTIONS``; times
accept seconds or durations such as '30s'. asyncpg is imported only when the pool is created.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_novaload.clients._options import seconds, unknown_option
from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics.builtins import define_builtins
from pytest_novaload.metrics.errors import error_tag

if TYPE_CHECKING:
    from pytest_novaload.clients.base import ClientContext
    from pytest_novaload.metrics import MetricStore
    from pytest_novaload.metrics.sinks import Counter, Rate, Trend

__all__ = ["DbClient", "DbPool", "DbTransaction", "classify_sql", "validate_db_options"]

KINDS = ("read", "write")
DEFAULT_MAX_SIZE = 20

#: ``options["db"]`` key -> asyncpg.create_pool keyword (acquire_timeout is ours).
DB_OPTIONS: dict[str, str] = {
    "min_size": "min_size",
    "max_size": "max_size",
    "statement_cache_size": "statement_cache_size",
    "max_cached_statement_lifetime": "max_cached_statement_lifetime",
    "max_queries": "max_queries",
    "max_inactive_connection_lifetime": "max_inactive_connection_lifetime",
    "command_timeout": "command_timeout",
    "connect_timeout": "timeout",
    "server_settings": "server_settings",
    "acquire_timeout": "",
}

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


class _Sinks:
    """The sinks of one (name, kind), looked up once."""

    __slots__ = ("duration", "failed", "kind", "name", "queries")

    def __init__(self, store: MetricStore, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        tags = (("kind", kind), ("name", name))
        self.duration: Trend = store.trend("db_query_duration", tags)
        self.queries: Counter = store.counter("db_queries", tags)
        self.failed: Rate = store.rate("db_query_failed", tags)


class DbPool:
    """The asyncpg pool shared by every VU of one generator process; created on first use."""

    def __init__(self, dsn: str | None = None, options: Mapping[str, Any] | None = None) -> None:
        self._dsn = dsn
        self._options = options
        self._pool: Any = None
        self._lock: asyncio.Lock | None = None
        self.acquire_timeout: float | None = None

    @property
    def pool(self) -> Any:
        """The asyncpg.Pool, or None before first use / after ``aclose``."""
        return self._pool

    async def get(self, env: Mapping[str, str], options: Mapping[str, Any]) -> Any:
        """The asyncpg pool, created from ``dsn``/``DATABASE_URL`` and the options if needed."""
        if self._pool is not None:
            return self._pool
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._pool is None:
                dsn = self._dsn or env.get("DATABASE_URL")
                if not dsn:
                    raise ConfigError("vu.db: DATABASE_URL is not set; set it to a PostgreSQL "
                                      "DSN such as postgresql://user@127.0.0.1:5432/novacron")
                opts = self._options if self._options is not None else options
                kwargs, self.acquire_timeout = _pool_kwargs(opts)
                import asyncpg  # here, not at import: collection imports this module

                self._pool = await asyncpg.create_pool(dsn, **kwargs)
        return self._pool

    async def aclose(self, timeout: float = 10.0) -> None:
        """Close the pool (waiting up to ``timeout`` s for borrowed connections, then forcing)."""
        pool, self._pool, self._lock = self._pool, None, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout)
        except TimeoutError:
            pool.terminate()


#: option -> (least value, whether it is a time in seconds; None is accepted when True).
_NUMERIC: dict[str, tuple[int, bool]] = {
    "min_size": (0, False),
    "max_size": (1, False),
    "statement_cache_size": (0, False),
    "max_queries": (1, False),
    "max_cached_statement_lifetime": (0, True),
    "max_inactive_connection_lifetime": (0, True),
    "command_timeout": (1, True),
    "connect_timeout": (1, True),
    "acquire_timeout": (1, True),
}


def validate_db_options(opts: Mapping[str, Any]) -> list[str]:
    """Every problem in a ``db=`` options dict (empty when valid). Pure: no I/O, no pool.

    Checks unknown keys (with a close-match hint); ``min_size``/``statement_cache_size``
    (whole numbers >= 0), ``max_size``/``max_queries`` (>= 1), ``min_size`` <= ``max_size``
    (default 20); ``command_timeout``/``connect_timeout``/``acquire_timeout`` (seconds or a
    duration > 0, or None), the two lifetimes (>= 0, 0 = never); ``server_settings`` (a dict of
    str to str). Messages start with the key: the caller adds its prefix.
    """
    if not isinstance(opts, Mapping):
        return [f"{opts!r}: expected a dict of database pool options such as "
                f"{{'max_size': 10}} (accepted keys: {', '.join(sorted(DB_OPTIONS))})"]
    problems = [unknown_option(key, DB_OPTIONS) for key in opts if key not in DB_OPTIONS]
    for key, (least, is_time) in _NUMERIC.items():
        if key not in opts:
            continue
        value = opts[key]
        if is_time:
            if value is not None and seconds(value, allow_zero=least == 0) is None:
                bound = ">= 0, 0 = never" if least == 0 else "> 0"
                problems.append(f"{key}={value!r}: expected seconds ({bound}) or a duration "
                                f"such as '30s', or None")
        elif not isinstance(value, int) or isinstance(value, bool) or value < least:
            problems.append(f"{key}={value!r}: expected a whole number >= {least}")
    max_size = opts.get("max_size", DEFAULT_MAX_SIZE)
    min_size = opts.get("min_size")
    if (isinstance(min_size, int) and isinstance(max_size, int) and min_size > max_size
            and not isinstance(min_size, bool) and not isinstance(max_size, bool)):
        default = "" if "max_size" in opts else " (the default)"
        problems.append(f"min_size={min_size!r} is above max_size={max_size!r}{default}: "
                        f"lower min_size or raise max_size")
    settings = opts.get("server_settings")
    if settings is not None and (not isinstance(settings, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in settings.items())):
        problems.append(f"server_settings={settings!r}: expected a dict of PostgreSQL setting "
                        f"names to string values, e.g. {{'application_name': 'load'}}")
    return problems


def _pool_kwargs(options: Mapping[str, Any]) -> tuple[dict[str, Any], float | None]:
    """asyncpg.create_pool keywords and the acquire timeout from ``options["db"]``."""
    problems = validate_db_options(options)
    if problems:
        raise ConfigError([f"db option {p}" for p in problems])
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        if DB_OPTIONS[key]:
            is_time = _NUMERIC.get(key, (0, False))[1]
            kwargs[DB_OPTIONS[key]] = (seconds(value, allow_zero=True)
                                       if is_time and value is not None else value)
    max_size = kwargs.setdefault("max_size", DEFAULT_MAX_SIZE)
    kwargs.setdefault("min_size", max_size)  # warm pool: db_pool_wait then shows contention
    acquire_timeout = options.get("acquire_timeout")
    return kwargs, None if acquire_timeout is None else seconds(acquire_timeout)


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
        self._ctx = ctx
        self._pool = pool
        self._store = ctx.store
        define_builtins(ctx.store, "db")
        self._options: Mapping[str, Any] = ctx.options.get("db") or {}
        self._pool_wait: Trend = ctx.store.trend("db_pool_wait", ())
        self._sinks: dict[tuple[str, str], _Sinks] = {}
        self._tx_trends: dict[tuple[str, str], Trend] = {}

    @property
    def pool(self) -> DbPool:
        return self._pool

    def transaction(self, name: str = "transaction", *, isolation: str | None = None,
                    readonly: bool = False, deferrable: bool = False) -> DbTransaction:
        """``async with vu.db.transaction(name=...) as tx``: one connection, one transaction.

        Commits on normal exit, rolls back when the block raises (the exception propagates).
        ``db_tx_duration{name, kind}`` gets the time from BEGIN to the end of COMMIT/ROLLBACK;
        kind is "write" when a write ran inside, else "read". BEGIN/COMMIT are not counted as
        queries; when no connection can be had, it counts as a failed write query named ``name``.
        """
        return DbTransaction(self, name, isolation=isolation, readonly=readonly,
                             deferrable=deferrable)

    async def aclose(self) -> None:
        """Nothing to release: connections go back to the pool after every call."""

    def _resolve(self, sql: str, name: str | None, kind: str | None) -> _Sinks:
        if name is None or kind is None:
            inferred_kind, inferred_name = classify_sql(sql)
            name = inferred_name if name is None else name
            kind = inferred_kind if kind is None else _check_kind(kind)
        else:
            _check_kind(kind)
        sinks = self._sinks.get((name, kind))
        if sinks is None:
            sinks = self._sinks[(name, kind)] = _Sinks(self._store, name, kind)
        return sinks

    def _tx_trend(self, name: str, kind: str) -> Trend:
        trend = self._tx_trends.get((name, kind))
        if trend is None:
            trend = self._tx_trends[(name, kind)] = self._store.trend(
                "db_tx_duration", (("kind", kind), ("name", name)))
        return trend

    async def _acquire(self) -> tuple[Any, Any]:
        """(asyncpg pool, connection); the wait is recorded in db_pool_wait."""
        start = time.perf_counter()
        pool = self._pool.pool or await self._pool.get(self._ctx.env, self._options)
        conn = await pool.acquire(timeout=self._pool.acquire_timeout)
        self._pool_wait.add((time.perf_counter() - start) * 1000.0)
        return pool, conn

    async def _call(self, method: str, sql: str, args: Sequence[Any], name: str | None,
                    kind: str | None, timeout: float | None, **extra: Any) -> Any:
        sinks = self._resolve(sql, name, kind)
        try:
            pool, conn = await self._acquire()
        except Exception as exc:
            sinks.queries.add()
            sinks.failed.add(True)
            _report(self._ctx, exc, sinks.name)
            raise
        try:
            return await _timed(sinks, getattr(conn, method), sql, args, timeout, extra,
                                self._ctx)
        finally:
            await pool.release(conn)


def _report(ctx: ClientContext, exc: BaseException, name: str) -> None:
    """A failed query's cause, on the one error path.

    A ConfigError (no DATABASE_URL, bad pool option) is the user's setup, not a transport error.
    """
    if not isinstance(exc, ConfigError):
        tag = error_tag(exc)
        ctx.report("db_query_failed", tag.type, f"{tag} (statement: {name})")


async def _timed(sinks: _Sinks, call: Any, sql: str, args: Sequence[Any],
                 timeout: float | None, extra: Mapping[str, Any],
                 ctx: ClientContext) -> Any:
    """Run one query and record duration, count and outcome (cancellation records nothing)."""
    start = time.perf_counter()
    try:
        result = await call(sql, *args, timeout=timeout, **extra)
    except Exception as exc:
        sinks.duration.add((time.perf_counter() - start) * 1000.0)
        sinks.queries.add()
        sinks.failed.add(True)
        _report(ctx, exc, sinks.name)
        raise
    sinks.duration.add((time.perf_counter() - start) * 1000.0)
    sinks.queries.add()
    sinks.failed.add(False)
    return result


class DbTransaction(_Queries):
    """``async with vu.db.transaction(...) as tx``; ``tx`` runs queries inside the transaction."""

    def __init__(self, client: DbClient, name: str, *, isolation: str | None,
                 readonly: bool, deferrable: bool) -> None:
        self._client = client
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
        client = self._client
        self._wrote = False
        try:
            self._pool, self._conn = await client._acquire()
        except Exception as exc:
            sinks = client._resolve("", self.name, "write")
            sinks.queries.add()
            sinks.failed.add(True)
            _report(client._ctx, exc, self.name)
            raise
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
            self._client._tx_trend(self.name, kind).add(
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
        sinks = self._client._resolve(sql, name, kind)
        if sinks.kind == "write":
            self._wrote = True
        return await _timed(sinks, getattr(self._conn, method), sql, args, timeout, extra,
                            self._client._ctx)
