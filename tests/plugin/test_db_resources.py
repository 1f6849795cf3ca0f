"""The generator's own file-descriptor limit seen through ``vu.db`` (issue 8): asyncpg's
"Too many open files" is the generator's shortage, counted and shown as HTTP's and
WebSocket's are, never blamed on the database. Against the real PostgreSQL of the suite, in
a pytest subprocess whose soft RLIMIT_NOFILE is lowered by its conftest."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest

from tests.timing import scaled

NOFILE = 48


@pytest.fixture(scope="module")
def pg_dsn() -> Iterator[str]:
    from novacron_sim.pg import PostgresNotFound, start_postgres

    try:
        cluster = start_postgres()
    except PostgresNotFound as exc:
        pytest.skip(str(exc))
    try:
        yield cluster.dsn
    finally:
        cluster.stop()


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_NOFILE semantics of Linux")
def test_out_of_file_descriptors_in_vu_db_is_the_generators_failure(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, pg_dsn: str) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    for env in ("API_URL", "WS_URL", "DWCP_WS_URL", "API_TOKEN", "NOVALOAD_RESULTS"):
        monkeypatch.delenv(env, raising=False)
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, ({NOFILE}, resource.getrlimit(
            resource.RLIMIT_NOFILE)[1]))
    """)
    # 60 VUs, a pool that may grow to 100 connections: far more than 48 descriptors allow
    # (the server's max_connections is 300, so the database itself never refuses).
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(iterations=240, vus=60, db={"min_size": 1, "max_size": 100},
                          thresholds={"db_query_failed": ["rate<0.01"]})
        def test_db(load):
            async def user(vu):
                await vu.db.fetchval("SELECT pg_sleep(0.05)")
            load.run(user)
    """)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--load-progress", "off",
        f"--load-results={pytester.path / 'results'}", timeout=scaled(120))
    out = result.stdout.str()
    assert "GENERATOR  out of file descriptors" in out, out[-3000:]
    assert f"the limit in force is {NOFILE} (ulimit -n)" in out and "-n N" in out, out[-3000:]
    (run_dir,) = (pytester.path / "results").iterdir()
    (test,) = json.loads((run_dir / "summary.json").read_text())["tests"]
    gen = test["generator"]
    assert gen["resource_errors"] > 0 and gen["nofile_limit"] == NOFILE, gen
    # Some queries did run (the pool got the descriptors there were)...
    assert test["metrics"]["db_queries"]["count"] > 0, test["metrics"]["db_queries"]
    # ... and none failed on the database's account: nothing under db_query_failed.
    assert test["metrics"]["db_query_failed"]["passes"] == 0, test["errors"]
    assert all(e["metric"] != "db_query_failed" for e in test["errors"]), test["errors"]
    result.assert_outcomes(passed=1)
