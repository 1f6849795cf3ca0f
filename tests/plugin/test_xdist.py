"""pytest-xdist fan-out end to end: every worker runs a shard, the controller gives one verdict.

Each test runs pytest in a subprocess (in-process xdist is unreliable) against the loopback
target of conftest.py. Loads are short; the whole module stays well under a minute. At the
end, the Coordinator alone is driven with fake channels: barrier, ranks, node loss, merge.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.plugin.conftest import Target, ctrl_c_default
from tests.timing import scaled

pytest.importorskip("xdist")

from pytest_novaload.engine.runner import Measurements
from pytest_novaload.metrics import MetricStore
from pytest_novaload.metrics.errors import ErrorLog
from pytest_novaload.options import Options
from pytest_novaload.session import NovaloadSession
from pytest_novaload.thresholds import parse_thresholds
from pytest_novaload.xdist.controller import Coordinator
from pytest_novaload.xdist.report import ReportLogger
from pytest_novaload.xdist.wire import Result, encode

# VU 2 makes every 5th request slow: over both VUs 10% of /slow requests take 60 ms. Under
# -n 2 shard 0 (VU 1) has no slow request and shard 1 (VU 2) 20%: averaging the shards' p95
# would give about 33 ms, the p95 of the union is about 60 ms.
MIX = '''
import pytest

@pytest.mark.load(executor="per-vu-iterations", vus=2, iterations=50,
                  thresholds={"http_req_duration{name:/slow}": ["p(95)<500"]})
def test_mix(load):
    async def user(vu):
        slow = vu.id == 2 and vu.iteration % 5 == 0
        await vu.http.get(f"/slow?ms={60 if slow else 5}", name="/slow")
        await vu.http.get(f"/vu/{vu.id}")

    result = load.run(user)
    # The test body sees the merged result on every shard.
    assert result.metric("http_reqs").count == 200
    assert result.metric("http_req_duration{name:/slow}").p(95) > 50
'''

UNITS = '''

def test_unit_a():
    pass

def test_unit_b():
    pass

def test_unit_c():
    pass
'''


def run(pytester: pytest.Pytester, *args: str, progress: str = "off",
        timeout: float = 60) -> pytest.RunResult:
    pytester.makeini("[pytest]\n")
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--load-progress", progress,
        f"--load-results={pytester.path / 'results'}", *args, timeout=scaled(timeout))


def summary(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    """summary.json's tests by test name."""
    (run_dir,) = (pytester.path / "results").iterdir()
    data = json.loads((run_dir / "summary.json").read_text())
    return {t["nodeid"].rsplit("::", 1)[-1]: t for t in data["tests"]}


def junit_cases(path: Path) -> dict[str, list[ET.Element]]:
    cases: dict[str, list[ET.Element]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        cases.setdefault(case.attrib["name"], []).append(case)
    return cases


@pytest.fixture
def api(target: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv("API_URL", target.url)
    monkeypatch.delenv("API_TOKEN", raising=False)
    for env in ("NOVALOAD_SCALE", "NOVALOAD_DURATION_SCALE", "NOVALOAD_RESULTS",
                "NOVALOAD_PROGRESS", "NOVALOAD_BARRIER_TIMEOUT"):
        monkeypatch.delenv(env, raising=False)
    return target


def assert_mix_merged(test: dict[str, Any], api: Target, shards: int) -> None:
    assert test["outcome"] == "passed"
    assert test["shards"] == shards
    m = test["metrics"]
    slow = m["http_req_duration{name:/slow}"]
    assert slow["count"] == 100
    assert slow["p(95)"] > 50, slow        # an average of the shards' p95 would be ~33 ms
    assert slow["med"] < scaled(30), slow  # ms
    # Every request the server saw was counted once, and VU ids never collided.
    assert m["http_reqs"]["count"] == api.total == 200
    assert {p: n for p, n in api.counts.items() if p.startswith("/vu/")} == {
        "/vu/1": 50, "/vu/2": 50}
    assert m["vus_max"]["max"] == 2
    assert test["start_spread_ms"] >= 0
    assert sorted(w["rank"] for w in test["workers"]) == list(range(shards))
    assert len({w["worker"] for w in test["workers"]}) == shards


def test_two_workers_give_one_merged_verdict_per_load_test(pytester: pytest.Pytester,
                                                           api: Target) -> None:
    pytester.makepyfile(MIX + UNITS + '''

@pytest.mark.load(vus=1, duration="1s",
                  thresholds={"http_req_duration": ["p(95)<0.001"]})
def test_breaks(load):
    # vus=1 over two shards: the second shard runs no VU and reports an empty store.
    async def user(vu):
        await vu.http.get("/breaks")
        await vu.sleep(0.01)
    load.run(user)

@pytest.mark.load(vus=2, duration="1s")
@pytest.mark.skip(reason="not today")
def test_skipped(load):
    load.run(None)

@pytest.mark.load(vus=2, duration="1s")
def test_never_runs(load):
    pass
''')
    result = run(pytester, "-n", "2", "--junitxml", str(pytester.path / "junit.xml"))
    result.assert_outcomes(passed=4, failed=2, skipped=1)
    result.stdout.fnmatch_lines([
        "*1 of 1 thresholds failed for test_two_workers*::test_breaks:*",
        "*http_req_duration p(95)<0.001 -> * ms  FAILED*",
    ])
    result.stdout.fnmatch_lines(["*test_never_runs is marked @pytest.mark.load but never "
                                 "calls load.run*"])
    assert result.stdout.str().count("load test summary") == 2
    cases = junit_cases(pytester.path / "junit.xml")
    assert sorted(cases) == ["test_breaks", "test_mix", "test_never_runs", "test_skipped",
                             "test_unit_a", "test_unit_b", "test_unit_c"]
    assert all(len(c) == 1 for c in cases.values()), cases
    props = {p.attrib["name"]: p.attrib["value"] for p in cases["test_mix"][0].iter("property")}
    assert float(props["http_req_duration_p95_ms"]) > 0
    assert cases["test_breaks"][0].find("failure") is not None

    tests = summary(pytester)
    assert sorted(tests) == ["test_breaks", "test_mix"]
    breaks = tests["test_breaks"]
    assert breaks["outcome"] == "failed" and breaks["shards"] == 2
    assert breaks["metrics"]["vus_max"]["max"] == 1
    assert breaks["metrics"]["http_reqs"]["count"] == api.counts.pop("/breaks") > 0
    assert_mix_merged(tests["test_mix"], api, shards=2)
    (run_dir,) = (pytester.path / "results").iterdir()
    lines = [json.loads(x) for x in (run_dir / "timeseries.ndjson").read_text().splitlines()]
    assert {x["test"].rsplit("::", 1)[-1] for x in lines} == {"test_mix", "test_breaks"}
    per_second = [x["count"] for x in lines
                  if x["metric"] == "http_reqs" and x["test"].endswith("test_mix")]
    assert sum(per_second) == 200


def test_four_workers_split_vus_and_rates(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile(MIX + UNITS + '''

@pytest.mark.load(executor="constant-arrival-rate", rate=40, time_unit="1s",
                  duration="1s", preallocated_vus=8, max_vus=40)
def test_rate(load):
    async def user(vu):
        await vu.http.get(f"/rate/{vu.id}")
    load.run(user)
''')
    result = run(pytester, "-n", "4", "--junitxml", str(pytester.path / "junit.xml"))
    result.assert_outcomes(passed=5)
    cases = junit_cases(pytester.path / "junit.xml")
    assert all(len(c) == 1 for c in cases.values()) and len(cases) == 5
    tests = summary(pytester)
    rate = tests["test_rate"]
    # 40 starts in the second, split over the shards: every start exactly once, run or
    # dropped (max_vus leaves a VU for every start, so none is dropped even on a busy machine).
    assert rate["shards"] == 4
    its = rate["metrics"]["iterations"]["count"]
    assert its + rate["metrics"]["dropped_iterations"]["count"] == 40
    rate_paths = {p: n for p, n in api.counts.items() if p.startswith("/rate/")}
    assert sum(rate_paths.values()) == its >= 30
    assert len(rate_paths) >= 4                  # VU ids from every shard, none shared
    for path in rate_paths:
        del api.counts[path]
    # The mix over four shards: two of them have no VU.
    assert_mix_merged(tests["test_mix"], api, shards=4)


def test_killed_worker_fails_its_load_test_once_and_the_run_goes_on(
        pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile('''
import os, signal
import pytest

@pytest.mark.load(vus=2, duration="20s")
def test_crash(load):
    async def user(vu):
        await vu.http.get(f"/c/{vu.id}")
        await vu.sleep(0.01)
        if vu.id == 2 and vu.iteration == 20:
            os.kill(os.getpid(), signal.SIGKILL)       # shard 2 of 2 dies mid-load
    load.run(user)

@pytest.mark.load(executor="per-vu-iterations", vus=2, iterations=10)
def test_after(load):
    async def user(vu):
        await vu.http.get("/after")
    load.run(user)
''' + UNITS)
    result = run(pytester, "-n", "2", timeout=60)
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines([
        "*ShardError: worker 'gw1' crashed*while running*::test_crash (shard 2/2)*"])
    assert "crashed while running" not in result.stdout.str()  # no second, xdist-made report
    tests = summary(pytester)
    crash = tests["test_crash"]
    assert crash["outcome"] == "failed"
    assert crash["lost_shards"][0]["worker"] == "gw1"
    assert "gw1" in crash["aborted"]                    # the other shard was told to stop
    # What the surviving shard measured is kept.
    assert crash["metrics"]["http_reqs"]["count"] == api.counts["/c/1"] > 0
    after = tests["test_after"]
    # The next load test ran on the surviving worker alone; no replacement re-ran a shard.
    assert after["outcome"] == "passed" and after["shards"] == 1
    assert after["workers_lost_before_start"] == ["gw1"]
    assert api.counts["/after"] == after["metrics"]["http_reqs"]["count"] == 20


def test_abort_on_fail_stops_every_shard(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile('''
import pytest

@pytest.mark.load(vus=2, duration="20s", thresholds={
    "http_req_duration": [{"threshold": "p(95)<5", "abort_on_fail": True}]})
def test_one_shard_breaks(load):
    # Only shard 2 (VU 2) is slow; shard 1 alone would run the full 20 s.
    async def user(vu):
        await vu.http.get("/slow?ms=30" if vu.id == 2 else "/slow?ms=1")
    load.run(user)

@pytest.mark.load(executor="constant-arrival-rate", rate=20, duration="20s",
                  preallocated_vus=2, thresholds={
                      "http_reqs": [{"threshold": "count<30", "abort_on_fail": True}]})
def test_merged_count_breaks(load):
    # 10/s per shard: no shard alone reaches 30 before 3 s, the merged count does at 2 s.
    async def user(vu):
        await vu.http.get("/count")
    load.run(user)
''')
    result = run(pytester, "-n", "2", progress="tty")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*LoadAborted*", "*run stopped early: abort_on_fail*"])
    result.stdout.fnmatch_lines(["*test_merged_count_breaks  *s/20s  vus*[[]2 shards[]]*"])
    tests = summary(pytester)
    one = tests["test_one_shard_breaks"]
    # Shard 2 judges its own numbers, the controller the merged windows: whichever trips
    # first, shard 1 (fast on its own) only stops because the controller says so.
    assert one["aborted"].startswith("abort_on_fail: http_req_duration p(95)<5")
    assert one["duration_s"] < scaled(15)
    merged = tests["test_merged_count_breaks"]
    assert "all 2 shards merged" in merged["aborted"]
    assert merged["duration_s"] < scaled(15)


def test_maxfail_stops_before_the_next_load_test(pytester: pytest.Pytester,
                                                 api: Target) -> None:
    pytester.makepyfile('''
import pytest

@pytest.mark.load(vus=2, duration="1s", thresholds={"http_req_duration": ["p(95)<0.001"]})
def test_first(load):
    async def user(vu):
        await vu.http.get("/first")
    load.run(user)

@pytest.mark.load(vus=2, duration="1s")
def test_second(load):
    async def user(vu):
        await vu.http.get("/second")
    load.run(user)
''')
    result = run(pytester, "-n", "2", "-x")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])
    assert api.counts["/first"] > 0 and "/second" not in api.counts


def test_ctrl_c_keeps_every_shards_measurements_as_interrupted(pytester: pytest.Pytester,
                                                               api: Target) -> None:
    pytester.makepyfile('''
import pytest

@pytest.mark.load(vus=2, duration="60s", thresholds={"http_req_duration": ["p(95)<1"]})
def test_long(load):
    async def user(vu):
        await vu.http.get(f"/long/{vu.id}")
        await vu.sleep(0.01)
    load.run(user)
''')
    pytester.makeini("[pytest]\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider",
         "--load-progress", "off", f"--load-results={pytester.path / 'results'}"],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, preexec_fn=ctrl_c_default)
    try:
        deadline = time.monotonic() + scaled(30)
        # 21 seen by the server: the one a VU may have in flight at Ctrl-C is never measured
        # (cancelled before its response), so each shard has measured at least 20.
        while min(api.counts.get("/long/1", 0), api.counts.get("/long/2", 0)) < 21 \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)       # Ctrl-C reaches the controller and workers
        out, _ = proc.communicate(timeout=scaled(30))
    finally:
        proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    test = summary(pytester)["test_long"]
    assert test["outcome"] == "interrupted" and test["shards"] == 2
    assert test["thresholds"] == []              # nothing is judged
    assert test["metrics"]["http_reqs{name:/long/1}"]["count"] >= 20
    assert test["metrics"]["http_reqs{name:/long/2}"]["count"] >= 20


def test_other_dist_modes_are_a_usage_error(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile(MIX + UNITS)
    result = run(pytester, "-n", "2", "--dist", "loadfile")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dist loadfile cannot run load tests*needs --dist load*"])
    assert api.total == 0


@pytest.fixture
def socket_servers(pytester: pytest.Pytester, api: Target) -> Iterator[list[int]]:
    """Two execnet socket servers on 127.0.0.1 free ports: remote workers, on loopback.

    Their environment has no API_URL: the workers get the controller's."""
    procs: list[subprocess.Popen[str]] = []
    ports: list[int] = []
    env = {k: v for k, v in os.environ.items() if k != "API_URL"}
    try:
        for _ in range(2):
            proc = subprocess.Popen(
                [sys.executable, "-u", "-m", "execnet.script.socketserver", "127.0.0.1:0"],
                cwd=pytester.path, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
            procs.append(proc)
            assert proc.stdout is not None
            line = proc.stdout.readline()  # "... Entering Accept loop ('127.0.0.1', PORT)"
            assert "Accept loop" in line, line
            ports.append(int(line.rsplit(",", 1)[1].strip(" )\n")))
        yield ports
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_socket_workers_on_loopback(pytester: pytest.Pytester, api: Target,
                                    socket_servers: list[int]) -> None:
    pytester.makepyfile(MIX + UNITS)
    tx: list[str] = []
    for port in socket_servers:
        tx += ["--tx", f"socket=127.0.0.1:{port}//chdir={pytester.path}"]
    result = run(pytester, "--dist", "load", *tx)
    result.assert_outcomes(passed=4)
    assert_mix_merged(summary(pytester)["test_mix"], api, shards=2)


# -- the coordinator alone: barrier, ranks, node loss, merge (no processes) ----------------------

class FakeChannel:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def setcallback(self, callback: Any) -> None:
        self.callback = callback

    def send(self, msg: tuple[Any, ...]) -> None:
        self.sent.append(msg)

    def kinds(self, nodeid: str) -> list[str]:
        return [m[0] for m in self.sent if m[1] == nodeid]


class FakeHook:
    def __init__(self) -> None:
        self.logged: list[pytest.TestReport] = []

    def pytest_report_from_serializable(self, config: Any, data: dict[str, Any]
                                        ) -> pytest.TestReport:
        return pytest.TestReport(**data)

    def pytest_runtest_logstart(self, **kw: Any) -> None:
        pass

    def pytest_runtest_logfinish(self, **kw: Any) -> None:
        pass

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.logged.append(report)


class FakeConfig:
    def __init__(self) -> None:
        self.hook = FakeHook()
        self.pluginmanager = self

    def getplugin(self, name: str) -> None:
        return None


def coordinator(workers: list[str], nodeids: list[str], *, barrier_timeout: float = 60.0,
                thresholds: dict[str, Any] | None = None) -> tuple[Any, dict[str, FakeChannel]]:
    session = NovaloadSession(Options(results=None, barrier_timeout=barrier_timeout))
    config = FakeConfig()
    coord = Coordinator(session, ReportLogger(config, session))  # type: ignore[arg-type]
    coord.config = config  # type: ignore[attr-defined]  # the tests read the logged reports
    channels = {}
    for w in workers:
        channels[w] = FakeChannel()
        coord.connect(w, channels[w])  # type: ignore[arg-type]
    ths = [t.to_dict() for t in parse_thresholds(thresholds or {})]
    meta = {n: {"location": ("t.py", 1, n), "executor": {"type": "constant-vus"},
                "thresholds": ths} for n in nodeids}
    for w in workers:
        channels[w].callback(("meta", meta))
    coord.plan_runs(nodeids, workers)
    return coord, channels


def shard_result(rank: int, requests: int, aborted: str | None = None) -> dict[str, Any]:

    store = MetricStore()
    store.counter("http_reqs").add(requests)
    measured = Measurements(store, ErrorLog(), 100.0 + rank * 0.002, 101.0, 1.0,
                            aborted=aborted)
    return encode(Result("t.py::a", rank, measured))[2]  # type: ignore[no-any-return]


def done(nodeid: str, outcome: str = "passed", *, arrived: bool = True,
         phase: str = "call") -> tuple[Any, ...]:
    reports = [{"nodeid": nodeid, "location": ("t.py", 1, nodeid), "keywords": {},
                "outcome": outcome if when == phase else "passed",
                "longrepr": "boom" if outcome == "failed" and when == phase else None,
                "when": when} for when in ("setup", "call", "teardown")]
    return ("done", nodeid, {"arrived": arrived, "reports": reports})


def test_barrier_releases_when_all_arrived_with_ranks_by_worker_number() -> None:
    _, ch = coordinator(["gw10", "gw2"], ["t.py::a", "t.py::b"])
    ch["gw10"].callback(("arrive", "t.py::a"))
    assert ch["gw10"].kinds("t.py::a") == []            # still waiting for gw2
    ch["gw2"].callback(("arrive", "t.py::a"))
    assert ch["gw2"].sent[-1] == ("go", "t.py::a", 0, 2)
    assert ch["gw10"].sent[-1] == ("go", "t.py::a", 1, 2)
    ch["gw2"].callback(("arrive", "t.py::nope"))
    assert ch["gw2"].sent[-1][0] == "cancel"


def test_next_load_test_waits_for_the_previous_verdict() -> None:
    coord, ch = coordinator(["gw0", "gw1"], ["t.py::a", "t.py::b"])
    for w in ("gw0", "gw1"):
        ch[w].callback(("arrive", "t.py::a"))
    for rank, w in enumerate(("gw0", "gw1")):
        ch[w].callback(("result", "t.py::a", shard_result(rank, 10 + rank)))
    assert [m[0] for m in ch["gw0"].sent] == ["go", "merged"]
    merged = ch["gw0"].sent[-1][2]
    assert merged["shards"] == 2 and merged["failure"] is None
    assert merged["extra"]["start_spread_ms"] == pytest.approx(2.0, abs=0.01)
    for w in ("gw0", "gw1"):
        ch[w].callback(done("t.py::a"))
        ch[w].callback(("arrive", "t.py::b"))
    assert ch["gw0"].kinds("t.py::b") == []            # a's verdict is not out yet
    coord.shard_complete("gw0", "t.py::a")
    coord.shard_complete("gw1", "t.py::a")
    logged = coord.config.hook.logged
    assert [r.when for r in logged] == ["setup", "call", "teardown"]   # one test, one report
    assert ch["gw0"].kinds("t.py::b") == ["go"]
    result = coord.session.results["t.py::a"]
    assert result.metric("http_reqs").count == 21 and result.shards == 2


def test_worker_lost_mid_load_fails_that_test_and_shrinks_the_next() -> None:
    coord, ch = coordinator(["gw0", "gw1", "gw2"], ["t.py::a", "t.py::b"])
    for w in ("gw0", "gw1", "gw2"):
        ch[w].callback(("arrive", "t.py::a"))
    ch["gw0"].callback(("result", "t.py::a", shard_result(0, 5)))
    coord.node_down("gw1", "Not properly terminated")
    assert ch["gw2"].sent[-1] == ("abort", "t.py::a", "worker 'gw1' crashed "
                                  "(Not properly terminated)")
    assert ch["gw0"].kinds("t.py::a") == ["go"]          # gw0 had already reported
    ch["gw2"].callback(("result", "t.py::a", shard_result(2, 7, aborted="told to stop")))
    merged = ch["gw0"].sent[-1][2]
    assert "worker 'gw1' crashed (Not properly terminated) while running t.py::a " \
           "(shard 2/3)" in merged["failure"]
    assert merged["extra"]["lost_shards"] == [
        {"worker": "gw1", "rank": 1, "reason": "crashed (Not properly terminated)"}]
    for w in ("gw0", "gw2"):
        ch[w].callback(done("t.py::a", "failed"))
        coord.shard_complete(w, "t.py::a")
    (call,) = [r for r in coord.config.hook.logged if r.when == "call"]
    assert call.failed
    result = coord.session.results["t.py::a"]
    assert result.metric("http_reqs").count == 12 and result.outcome == "failed"
    # t.py::b never started on gw1: it runs on the two others, ranks 0 and 1 of 2.
    for w in ("gw0", "gw2"):
        ch[w].callback(("arrive", "t.py::b"))
    assert ch["gw0"].sent[-1] == ("go", "t.py::b", 0, 2)
    assert ch["gw2"].sent[-1] == ("go", "t.py::b", 1, 2)


def test_a_shard_abort_reaches_the_others_and_setup_errors_cancel_the_start() -> None:
    coord, ch = coordinator(["gw0", "gw1"], ["t.py::a", "t.py::b"])
    for w in ("gw0", "gw1"):
        ch[w].callback(("arrive", "t.py::a"))
    ch["gw1"].callback(("result", "t.py::a", shard_result(1, 3, aborted="abort_on_fail: x")))
    assert ch["gw0"].sent[-1] == ("abort", "t.py::a", "abort_on_fail: x (shard 2/2, "
                                  "worker 'gw1')")
    ch["gw0"].callback(("result", "t.py::a", shard_result(0, 3, aborted="told")))
    assert ch["gw0"].sent[-1][2]["aborted"] == "abort_on_fail: x (shard 2/2, worker 'gw1')"
    for w in ("gw0", "gw1"):
        ch[w].callback(done("t.py::a", "failed"))
        coord.shard_complete(w, "t.py::a")
    # b: gw0 errors in setup and never arrives; gw1, waiting at the barrier, is cancelled.
    ch["gw1"].callback(("arrive", "t.py::b"))
    ch["gw0"].callback(done("t.py::b", "failed", arrived=False, phase="setup"))
    assert ch["gw1"].sent[-1][0] == "cancel"
    assert "the shard on worker 'gw0' failed in setup, so no shard ran" in ch["gw1"].sent[-1][2]
    ch["gw1"].callback(done("t.py::b", "failed"))
    coord.shard_complete("gw1", "t.py::b")
    coord.shard_complete("gw0", "t.py::b")
    # The one report for b is gw0's setup error, the cause; gw1's cancelled shard is dropped.
    b = [r for r in coord.config.hook.logged if r.nodeid == "t.py::b"]
    assert [(r.when, r.outcome) for r in b] == [("setup", "failed"), ("call", "passed"),
                                                ("teardown", "passed")]


def test_barrier_timeout_cancels_the_arrived_shards() -> None:
    _, ch = coordinator(["gw0", "gw1"], ["t.py::a"], barrier_timeout=0.05)
    ch["gw0"].callback(("arrive", "t.py::a"))
    deadline = time.monotonic() + 5
    while not ch["gw0"].sent and time.monotonic() < deadline:
        time.sleep(0.01)
    (kind, _, reason) = ch["gw0"].sent[-1]
    assert kind == "cancel" and "gw1 did not reach the start barrier within 0.05s" in reason
    ch["gw1"].callback(("arrive", "t.py::a"))           # too late: cancelled at once
    assert ch["gw1"].sent[-1][0] == "cancel"


RAMP = '''
import asyncio, json, os
import pytest

FACTOR = float(os.environ.get("NOVALOAD_TIME_FACTOR", "1") or 1)
# k6's plan for these stages: VU number v runs from 0.1*v s to (1 - 0.1*v) s (the plan a
# whole VU early stopped each 0.1 s sooner).

@pytest.mark.load(start_vus=0, stages=[("400ms", 4), ("100ms", 4), ("400ms", 0)],
                  graceful_ramp_down="0s")
def test_ramp(load):
    starts = {}

    async def user(vu):   # no socket: a first connection's set-up would stall the clock
        starts.setdefault(vu.id, []).append(asyncio.get_running_loop().time())
        await vu.sleep(0.02)

    load.run(user)
    # Each shard checks its own VUs (VU ids are the plan's VU numbers: k6's striping).
    assert starts
    # VU v is planned from 0.1 * v s: the least late first start places the plan's start.
    t0 = min(min(times) - 0.1 * vu for vu, times in starts.items())
    for vu, times in starts.items():
        end = max(times) - t0
        assert 1 - 0.1 * vu - 0.06 <= end <= 1 - 0.1 * vu + 0.05 * FACTOR, (vu, end)
    with open(f"vus-{os.getpid()}.json", "w") as f:   # which VUs this shard ran
        json.dump(sorted(starts), f)
'''


def test_two_workers_walk_the_k6_ramping_plan_together(pytester: pytest.Pytester,
                                                       api: Target) -> None:
    """Under -n 2 shard 0 runs the plan's VUs 1 and 3, shard 1 VUs 2 and 4, each exactly
    as long as k6 runs it (a VU stops when the ramp is a whole VU below it)."""
    pytester.makepyfile(RAMP)
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=1)
    test = summary(pytester)["test_ramp"]
    assert test["shards"] == 2
    shards = sorted(json.loads(p.read_text()) for p in pytester.path.glob("vus-*.json"))
    assert shards == [[1, 3], [2, 4]]
    assert test["metrics"]["vus"]["max"] == 4
