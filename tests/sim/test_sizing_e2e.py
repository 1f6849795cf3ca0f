"""End to end: the root conftest sizes the stand-in it starts from the selected plan.

A pytester project with this repository's root conftest and one load test in tests/perf: a
plan of 4,000 VUs under an open-file limit of 2,048 per process needs three stand-in
processes to hold its connections (novacron_sim.sizing), whatever the cores; the test itself
runs for 3 s and checks the running stand-in's worker count and the report header.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from novacron_sim.sizing import FD_RESERVE, workers_for
from tests.timing import scaled

ROOT = Path(__file__).resolve().parents[2]
NOFILE = 2048
VUS = 4000
EXPECTED = 3
TARGETS = ("API_URL", "WS_URL", "DWCP_WS_URL", "DATABASE_URL", "API_TOKEN",
           "NOVACRON_SIM_WORKERS", "NOVACRON_SIM_DATABASE_URL", "NOVALOAD_SCALE")

TEST = f'''
import os
import pytest

VUS = {VUS}

@pytest.mark.load(vus=VUS, duration="60s", graceful_stop="0s")
def test_big_plan(load, novacron):
    assert novacron.stats()["workers"] == int(os.environ["WANT_WORKERS"])

    async def user(vu):
        if vu.id % 50 == 1:   # a few connections: the launcher's open-file limit is low
            await vu.http.get("/health")
        await vu.sleep(1)

    result = load.run(user)
    assert result.metric("http_reqs").count > 0
'''

# Runs pytest under a lower open-file limit (soft and hard), as a smaller machine would have.
LAUNCHER = f'''
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, ({NOFILE}, {NOFILE}))
import pytest
sys.exit(pytest.main(sys.argv[1:]))
'''


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in TARGETS:
        monkeypatch.delenv(name, raising=False)
    pytester.makeini("[pytest]\nload_scale = 1\n")
    (pytester.path / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    perf = pytester.path / "tests" / "perf"
    perf.mkdir(parents=True)
    (perf / "test_big.py").write_text(TEST)
    (pytester.path / "launch.py").write_text(LAUNCHER)
    return pytester


def _run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.run(sys.executable, str(project.path / "launch.py"), "-p", "no:cacheprovider",
                       "--load-results", "off",
                       "--load-duration-scale", "0.05", "tests/perf", *args,
                       timeout=scaled(120))


def test_a_large_plan_starts_several_stand_in_processes(
        project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    assert workers_for(VUS, cores=os.cpu_count() or 1, nofile=NOFILE).workers == EXPECTED
    assert VUS / (EXPECTED - 1) > NOFILE - FD_RESERVE   # two could not hold the connections
    monkeypatch.setenv("WANT_WORKERS", str(EXPECTED))
    result = _run(project)
    result.stdout.fnmatch_lines([
        f"novacron_sim: {EXPECTED} worker processes (peak 4,000 connections, 2,048 open files "
        "per process: 3 processes to hold them; 1 load test read; NOVACRON_SIM_WORKERS=N "
        "overrides)",
        "*1 passed*"])


def test_novacron_sim_workers_still_wins(
        project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVACRON_SIM_WORKERS", "1")
    monkeypatch.setenv("WANT_WORKERS", "1")
    result = _run(project)
    result.stdout.fnmatch_lines(["novacron_sim: 1 worker process (NOVACRON_SIM_WORKERS)",
                                 "*1 passed*"])
