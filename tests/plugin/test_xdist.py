"""pytest-xdist fan-out end to end: every worker runs a shard, the controller gives one verdict.

Each test runs pytest in a subprocess (in-process xdist is unreliable) against the loopback
target of conftest.py. Loads are short; the whole module stays well under a minute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.plugin.conftest import Target

pytest.importorskip("xdist")

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
        f"--load-results={pytester.path / 'results'}", *args, timeout=timeout)


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
    assert slow["med"] < 30, slow
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
                  duration="1s", preallocated_vus=8)
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
    # dropped (a busy machine can leave a shard without a free VU at a start).
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
    result.stdout.fnmatch_lines(["*test_one_shard_breaks*vus*[[]2 shards[]]*"])
    tests = summary(pytester)
    one = tests["test_one_shard_breaks"]
    # Shard 2 judges its own numbers, the controller the merged windows: whichever trips
    # first, shard 1 (fast on its own) only stops because the controller says so.
    assert one["aborted"].startswith("abort_on_fail: http_req_duration p(95)<5")
    assert one["duration_s"] < 15
    merged = tests["test_merged_count_breaks"]
    assert "all 2 shards merged" in merged["aborted"]
    assert merged["duration_s"] < 15


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


def test_other_dist_modes_are_a_usage_error(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile(MIX + UNITS)
    result = run(pytester, "-n", "2", "--dist", "loadfile")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dist loadfile cannot run load tests*needs --dist load*"])
    assert api.total == 0


@pytest.fixture
def socket_servers(pytester: pytest.Pytester, api: Target) -> Iterator[list[int]]:
    """Two execnet socket servers on 127.0.0.1 free ports: remote workers, on loopback."""
    procs: list[subprocess.Popen[str]] = []
    ports: list[int] = []
    try:
        for _ in range(2):
            proc = subprocess.Popen(
                [sys.executable, "-u", "-m", "execnet.script.socketserver", "127.0.0.1:0"],
                cwd=pytester.path, env=dict(os.environ), stdout=subprocess.PIPE,
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
