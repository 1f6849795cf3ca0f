"""The asyncpg pool behind ``vu.db`` and its ``db=`` options (checked by `validate_db_options`).

One `DbPool` per generator process, created on first use from ``DATABASE_URL`` and
``options["db"]``; asyncpg is imported only then (importing this module needs no asyncpg).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pytest_novaload.allowlist import Allowlist
from pytest_novaload.clients._options import seconds, shown, unknown_option
from pytest_novaload.errors import ConfigError

__all__ = ["DB_OPTIONS", "DEFAULT_MAX_SIZE", "DbPool", "pool_kwargs", "validate_db_options"]

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


class DbPool:
    """The asyncpg pool shared by every VU of one generator process; created on first use."""

    def __init__(self, dsn: str | None = None, options: Mapping[str, Any] | None = None,
                 allowlist: Allowlist | None = None) -> None:
        """``allowlist``: the hosts the pool may connect to besides loopback (default:
        loopback and local sockets only), checked before the pool is created."""
        self._dsn = dsn
        self._allowlist = allowlist or Allowlist()
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
                self._allowlist.check_dsn(dsn, what="DATABASE_URL" if not self._dsn else "dsn",
                                          env=env)
                opts = self._options if self._options is not None else options
                kwargs, self.acquire_timeout = pool_kwargs(opts)
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


#: Pool sizes above this are a typo, not a setting (each is a server connection).
_MAX_COUNT = {"min_size": 10_000, "max_size": 10_000}


def validate_db_options(opts: Mapping[str, Any]) -> list[str]:
    """Every problem in a ``db=`` options dict (empty when valid). Pure: no I/O, no pool.

    Checks unknown keys (with a close-match hint); ``min_size``/``statement_cache_size``
    (whole numbers >= 0), ``max_size``/``max_queries`` (>= 1), ``min_size`` <= ``max_size``
    (default 20); ``command_timeout``/``connect_timeout``/``acquire_timeout`` (seconds or a
    duration > 0, or None), the two lifetimes (>= 0, 0 = never); ``server_settings`` (a dict of
    str to str). Messages start with the key: the caller adds its prefix.
    """
    if not isinstance(opts, Mapping):
        return [f"{shown(opts)}: expected a dict of database pool options such as "
                f"{{'max_size': 10}} (accepted keys: {', '.join(sorted(DB_OPTIONS))})"]
    problems = [unknown_option(key, DB_OPTIONS) for key in opts if key not in DB_OPTIONS]
    for key, (least, is_time) in _NUMERIC.items():
        if key not in opts:
            continue
        value = opts[key]
        if is_time:
            if value is not None and seconds(value, allow_zero=least == 0) is None:
                bound = ">= 0, 0 = never" if least == 0 else "> 0"
                problems.append(f"{key}={shown(value)}: expected seconds ({bound}) or a duration "
                                f"such as '30s', or None")
        elif (not isinstance(value, int) or isinstance(value, bool) or value < least
              or value > _MAX_COUNT.get(key, 2**31 - 1)):
            problems.append(f"{key}={shown(value)}: expected a whole number >= {least} (at "
                            f"most {_MAX_COUNT.get(key, 2**31 - 1)})")
    max_size = opts.get("max_size", DEFAULT_MAX_SIZE)
    min_size = opts.get("min_size")
    if (isinstance(min_size, int) and isinstance(max_size, int) and min_size > max_size
            and not isinstance(min_size, bool) and not isinstance(max_size, bool)):
        default = "" if "max_size" in opts else " (the default)"
        problems.append(f"min_size={shown(min_size)} is above max_size={shown(max_size)}{default}: "
                        f"lower min_size or raise max_size")
    settings = opts.get("server_settings")
    if settings is not None and (not isinstance(settings, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in settings.items())):
        problems.append(f"server_settings={shown(settings)}: expected a dict of PostgreSQL setting "
                        f"names to string values, e.g. {{'application_name': 'load'}}")
    return problems


def pool_kwargs(options: Mapping[str, Any]) -> tuple[dict[str, Any], float | None]:
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
