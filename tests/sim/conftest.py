"""Stand-in instances for the tests of novacron_sim itself.

These tests turn knobs (latency, injected errors), so they run their own instances instead of
the one the root conftest starts for the load suites; they reuse its throwaway database when
there is one (NOVACRON_SIM_DATABASE_URL), else start their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from novacron_sim.launch import StandIn, start_sim
from novacron_sim.pg import PostgresNotFound, init_schema_sync, start_postgres
from novacron_sim.shared import KNOBS

TOKEN = "s3cret-token"
DEFAULT_KNOBS = {name: default for name, (default, _, _) in KNOBS.items()}
#: fast migrations (about 0.5 s) and frequent pushes keep these tests short
SIM_KNOBS = {"time_scale": 0.25, "push_interval_ms": 50.0}


@pytest.fixture(scope="session")
def sim_dsn() -> Iterator[str]:
    shared = os.environ.get("NOVACRON_SIM_DATABASE_URL")
    if shared:
        yield shared
        return
    try:
        cluster = start_postgres()
    except PostgresNotFound as exc:
        pytest.skip(str(exc))
    with cluster:
        init_schema_sync(cluster.dsn, vms=200)
        yield cluster.dsn


@pytest.fixture(scope="session")
def sim(sim_dsn: str) -> Iterator[StandIn]:
    with start_sim(sim_dsn, **SIM_KNOBS) as handle:
        yield handle


@pytest.fixture(scope="session")
def token_sim(sim_dsn: str) -> Iterator[StandIn]:
    with start_sim(sim_dsn, token=TOKEN) as handle:
        yield handle


@pytest.fixture
def knobs(sim: StandIn) -> Iterator[StandIn]:
    """The stand-in, with its knobs put back after the test."""
    yield sim
    sim.configure(**(DEFAULT_KNOBS | SIM_KNOBS))


@pytest.fixture(scope="session")
def http(sim: StandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.api_url, timeout=10.0, trust_env=False) as client:
        yield client
