"""Safety end to end (issue 8): hostile markers are their own collection errors, body and
series limits, every failed sample listed with its cause, the generator's own shortage of
file descriptors shown as such."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.plugin.conftest import Target, summary


def run(pytester: pytest.Pytester, *args: str, subprocess: bool = False) -> pytest.RunResult:
    pytester.makeini("[pytest]\n")
    argv = ("-p", "no:cacheprovider", "--load-progress", "off",
            "--load-results", str(pytester.path / "results"), *args)
    if subprocess:
        return pytester.runpytest_subprocess(*argv)
    return pytester.runpytest(*argv)


HOSTILE_MARKERS = {
    "executor_list": 'executor=["constant-vus"], vus=1, duration="1s"',
    "huge_int": "vus=10**400, duration='1s'",
    "huge_int_5000": "vus=10**5000, duration='1s'",
    "inf_rate": 'rate=float("inf"), duration="1s"',
    "nan_vus": 'vus=float("nan"), duration="1s"',
    "nan_start_rate": 'executor="ramping-arrival-rate", start_rate=float("nan"), '
                      'stages=[("1s", 1)]',
    "inf_target": 'stages=[("1s", float("inf"))]',
    "deep": "stages=deep",
    "duration_1e306": "vus=1, duration=1e306",
    "rate_per_ns": 'rate=1_000_000, time_unit="1ns", duration="10s"',
    "delay_nan": 'vus=1, duration="1s", thresholds={"http_reqs": [{"threshold": "count>0", '
                 '"abort_on_fail": True, "delay_abort_eval": float("nan")}]}',
    "timeout_inf": 'vus=1, duration="1s", http={"timeout": float("inf")}',
    "ws_timeout_huge": 'vus=1, duration="1s", ws={"open_timeout": 10**400}',
    "db_size": 'vus=1, duration="1s", db={"max_size": 10**9}',
    "body_limit": 'vus=1, duration="1s", http={"max_body_size": -1}',
    "too_many_vus": 'vus=1_000_000, duration="1s"',
}


def test_hostile_markers_are_each_their_own_collection_error(pytester: pytest.Pytester) -> None:
    tests = "\n".join(f'''
@pytest.mark.load({marker})
def test_{name}(load):
    load.run(lambda vu: None)
''' for name, marker in HOSTILE_MARKERS.items())
    pytester.makepyfile(f'''
import pytest

deep = []
for _ in range(100_000):
    deep = [deep]
{tests}

def test_ok():
    pass
''')
    result = run(pytester, "--continue-on-collection-errors")
    result.assert_outcomes(passed=1, errors=len(HOSTILE_MARKERS))
    out = result.stdout.str()
    for name in HOSTILE_MARKERS:
        assert f"::test_{name}: invalid" in out, name
    assert "Traceback" not in out and "RecursionError" not in out
    assert "OverflowError" not in out and "TypeError" not in out
    assert "arrival rate of 1000000000000000.0 iterations/s" in out
    assert "longer than the limit of 168h0m0s" in out
    assert "nested more than 8 deep" in out


def test_body_over_the_limit_is_a_listed_failed_request(pytester: pytest.Pytester,
                                                       api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(iterations=5, vus=1, http={"max_body_size": 8},
                          thresholds={"http_req_failed": ["rate<0.01"]})
        def test_big(load):
            async def user(vu):
                r = await vu.http.get("/big")
                assert r.status_code == 0 and r.content == b""
            load.run(user)

        @pytest.mark.load(iterations=5, vus=1, http={"discard_bodies": True})
        def test_discard(load):
            async def user(vu):
                r = await vu.http.get("/big")
                assert r.status_code == 200 and r.content == b""
            load.run(user)
    """)
    result = run(pytester)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*BodyTooLarge x5: BodyTooLarge: response body over 8 bytes*"])
    big, discard = summary(pytester)["tests"]
    (err,) = big["errors"]
    assert (err["type"], err["count"], err["metric"]) == ("BodyTooLarge", 5, "http_req_failed")
    assert big["metrics"]["http_req_failed"]["passes"] == 5
    assert discard["metrics"]["data_received"]["count"] > 5 * 20


def test_distinct_paths_fold_into_an_overflow_series_with_a_live_warning(
        pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(iterations=1200, vus=4)
        def test_ids(load):
            async def user(vu):
                await vu.http.get(f"/vms/{vu.iteration}-{vu.id}")
            load.run(user)
    """)
    result = run(pytester, "-s")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    live = out.index("warning: http_req_duration reached 1000 series")
    assert live < out.index("GENERATOR")  # printed when reached, before the summary
    assert "tag 'name'" in out and "name=" in out
    test = summary(pytester)["tests"][0]
    assert any("__overflow__" in w for w in test["warnings"])
    assert test["metrics"]["http_reqs"]["count"] == 1200


# -- every failed sample listed -----------------------------------------------------------------

@pytest.fixture
def ws_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A WebSocket server whose /drop path drops the connection (no close frame) at once."""
    from websockets.asyncio.server import ServerConnection, serve

    async def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/drop":
            await asyncio.sleep(0.05)
            ws.transport.abort()
            return
        await ws.wait_closed()

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    def serve_forever() -> None:
        async def main() -> None:
            async with serve(handler, "127.0.0.1", 0) as server:
                state["port"] = server.sockets[0].getsockname()[1]
                state["stop"] = asyncio.Event()
                ready.set()
                await state["stop"].wait()

        loop.run_until_complete(main())

    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()
    assert ready.wait(10)
    url = f"ws://127.0.0.1:{state['port']}"
    monkeypatch.setenv("WS_URL", url)
    yield url
    loop.call_soon_threadsafe(state["stop"].set)
    thread.join(10)


def test_every_failed_sample_is_listed_with_its_cause(pytester: pytest.Pytester, api: Target,
                                                      ws_url: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nothing listens on: every db query fails (refused)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u@127.0.0.1:{port}/db")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(iterations=6, vus=1, db={"connect_timeout": "2s"})
        def test_mixed(load):
            async def user(vu):
                async with vu.ws("/drop") as ws:     # dropped while idle: nothing raises
                    await vu.sleep(0.2)
                try:
                    await vu.db.fetchval("SELECT 1")  # a database error the scenario catches
                except Exception:
                    pass
                r = await vu.http.get("/status/503")
                vu.check(r, {"is 200": lambda r: r.status_code == 200, "always": True})
                if vu.iteration % 2:
                    raise RuntimeError("boom")
            load.run(user)
    """)
    run(pytester)
    test = summary(pytester)["tests"][0]
    metrics = test["metrics"]
    listed: dict[str, int] = {}
    for e in test["errors"]:
        assert e["example"], e
        listed[e["metric"]] = listed.get(e["metric"], 0) + e["count"]
    assert listed == {
        "ws_failed": metrics["ws_failed"]["passes"],
        "db_query_failed": metrics["db_query_failed"]["passes"],
        "http_req_failed": metrics["http_req_failed"]["passes"],
        "iteration_failed": metrics["iteration_failed"]["passes"],
        "checks": metrics["checks"]["fails"],
    }
    assert listed["ws_failed"] == listed["db_query_failed"] == listed["http_req_failed"] == 6
    assert listed["checks"] == 6 and listed["iteration_failed"] == 3


# -- the generator's own limits -----------------------------------------------------------------

@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_NOFILE semantics of Linux")
def test_out_of_file_descriptors_is_the_generators_failure(pytester: pytest.Pytester,
                                                          api: Target) -> None:
    pytester.makeconftest("""
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(
            resource.RLIMIT_NOFILE)[1]))
    """)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(iterations=400, vus=100,
                          thresholds={"http_req_failed": ["rate<0.01"]})
        def test_many(load):
            async def user(vu):
                await vu.http.get("/slow?ms=100")
            load.run(user)
    """)
    result = run(pytester, subprocess=True)
    out = result.stdout.str()
    assert "GENERATOR  out of file descriptors" in out
    assert "the limit in force is 64 (ulimit -n)" in out and "-n N" in out
    test = summary(pytester)["tests"][0]
    gen = test["generator"]
    assert gen["resource_errors"] > 0 and gen["nofile_limit"] == 64
    # Not the server's failure: no failed request, none listed under http_req_failed.
    assert test["metrics"]["http_req_failed"]["passes"] == 0
    assert all(e["metric"] != "http_req_failed" for e in test["errors"])
    result.assert_outcomes(passed=1)


def test_the_resource_verdict_names_ports_and_local_addrs() -> None:
    from pytest_novaload.engine.runner import resource_verdict

    text = resource_verdict(3, "ConnectError: [Errno 99] Cannot assign requested address")
    assert text.startswith("out of ephemeral ports: 3 calls") and "local_addrs" in text
