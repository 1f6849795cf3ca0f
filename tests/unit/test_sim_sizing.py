"""The stand-in's worker count from the plan and the machine (novacron_sim.sizing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from novacron_sim.sizing import (
    FD_RESERVE,
    MAX_WORKERS,
    PG_BUDGET,
    VUS_PER_WORKER,
    load_markers,
    pool_size_for,
    selected_files,
    workers_for,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("peak", "cores", "nofile", "workers"), [
    (0, 2, 20_000, 1),                      # nothing planned
    (100, 2, 20_000, 1),                    # the PR-gate profile of the API suite
    (VUS_PER_WORKER - 1, 64, 20_000, 1),    # small plans stay on one process
    (VUS_PER_WORKER, 2, 20_000, 1),
    (10_000, 2, 20_000, 2),                 # API at full size on 2 cores: one per core
    (10_000, 16, 20_000, 5),                # ... on 16 cores: one per 2,000 users
    (100_000, 2, 20_000, 6),                # 100K held connections: the descriptors decide
    (100_000, 64, 20_000, 50),
    (1_500, 2, 1024, 2),                    # a small plan past a low open-file limit
    (10_000_000, 2, 1024, MAX_WORKERS),     # capped
])
def test_workers_follow_the_plan_the_cores_and_the_file_limit(
        peak: int, cores: int, nofile: int, workers: int) -> None:
    sizing = workers_for(peak, cores=cores, nofile=nofile)
    assert sizing.workers == workers, sizing.reason
    # never more connections per process than its descriptors hold
    assert peak / sizing.workers <= nofile - FD_RESERVE or sizing.workers == MAX_WORKERS
    assert f"{peak:,}" in sizing.reason


def test_the_reason_names_what_decided() -> None:
    assert "open files" in workers_for(100_000, cores=2, nofile=20_000).reason
    assert "cores" in workers_for(10_000, cores=2, nofile=20_000).reason
    assert "one process" in workers_for(10, cores=2, nofile=20_000).reason
    assert "capped" in workers_for(10_000_000, cores=2, nofile=1024).reason


def test_pools_fit_the_clusters_connection_budget() -> None:
    assert pool_size_for(1) == 20
    for workers in (2, 6, 10, 50, MAX_WORKERS):
        assert workers * pool_size_for(workers) <= max(PG_BUDGET, 2 * workers)
        assert pool_size_for(workers) >= 2


def test_markers_are_read_from_source_with_module_constants(tmp_path: Path) -> None:
    f = tmp_path / "test_plan.py"
    f.write_text(
        "import pytest\n"
        "from pytest import mark\n"
        "STAGES = [('1m', 100), ('2m', 5000)]\n"
        "VUS: int = 40\n"
        "@pytest.mark.load(stages=STAGES, thresholds={'checks': ['rate>0.9']})\n"
        "def test_ramp(load): ...\n"
        "@mark.load(vus=VUS, duration='10s', http=make_options())\n"
        "def test_constant(load): ...\n"
        "class TestGroup:\n"
        "    @pytest.mark.load(rate=200, duration='5s', max_vus=300)\n"
        "    def test_open(self, load): ...\n"
        "@pytest.mark.slow\n"
        "def test_plain(): ...\n"
        "def helper(): ...\n")
    markers = dict(load_markers(f))
    assert markers["test_ramp"]["stages"] == [("1m", 100), ("2m", 5000)]
    # a keyword that is not a literal is left out; the rest is kept
    assert markers["test_constant"] == {"vus": 40, "duration": "10s"}
    assert markers["test_open"]["max_vus"] == 300
    assert set(markers) == {"test_ramp", "test_constant", "test_open"}
    assert [n for n, _ in load_markers(f, "test_open")] == ["test_open"]
    broken = tmp_path / "test_broken.py"
    broken.write_text("def test_(:\n")
    assert load_markers(broken) == [] and load_markers(tmp_path / "missing.py") == []


def test_the_suites_plans_are_read_at_full_size() -> None:
    found = {name: kw for f in sorted((ROOT / "tests" / "perf").glob("test_*.py"))
             for name, kw in load_markers(f)}
    peaks = {name: max(t for _, t in kw["stages"]) for name, kw in found.items()
             if "stages" in kw}
    assert peaks["test_api_vm_crud"] == 10_000
    assert peaks["test_websocket_connections"] == 100_000


def test_files_follow_the_positional_args() -> None:
    served = ("tests/perf", "tests/sim")

    def names(*args: str, cwd: Path = ROOT) -> set[tuple[str, str | None]]:
        return {(p.name, f) for p, f in selected_files(list(args), invocation_dir=cwd,
                                                   rootdir=ROOT, served=served)}

    everything = names()
    assert ("test_api_load.py", None) in everything
    assert ("test_websocket_load.py", None) in everything
    assert names("tests/perf/test_api_load.py::test_api_vm_crud") == {
        ("test_api_load.py", "test_api_vm_crud")}
    assert names("perf/test_dwcp_load.py", cwd=ROOT / "tests") == {("test_dwcp_load.py", None)}
    assert names("tests/unit") == set()
    assert names("-q", "tests") == everything
