"""What a k6 user porting a script expects, end to end (issue 9): thresholds refused before
the load as k6 refuses them, k6's marker shortcuts, tags, vus_max and option forms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.plugin.conftest import Target


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\n")
    return pytester.runpytest("-p", "no:cacheprovider", "--load-progress", "off",
                              f"--load-results={pytester.path / 'results'}", *args)


def summary(pytester: pytest.Pytester) -> dict[str, Any]:
    (run_dir,) = (pytester.path / "results").iterdir()
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return data


@pytest.fixture
def api(target: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv("API_URL", target.url)
    monkeypatch.delenv("API_TOKEN", raising=False)
    for env in ("NOVALOAD_SCALE", "NOVALOAD_DURATION_SCALE", "NOVALOAD_RESULTS"):
        monkeypatch.delenv(env, raising=False)
    return target


# -- an aggregation the metric's type does not support: refused before any load -------------

UNFIT = [
    ("iterations", "avg<1000", "avg", "counter", "count, rate", "count<1000"),
    ("vus", "count>0", "count", "gauge", "value", "value>0"),
    ("iteration_duration", "rate>0", "rate", "trend", "avg, min, max, med, p(N)", "avg>0"),
    ("iteration_duration", "count>0", "count", "trend", "avg, min, max, med, p(N)", "avg>0"),
    ("http_req_failed", "count<1", "count", "rate", "rate", "rate<1"),
]


def test_builtin_metric_with_an_unfit_aggregation_is_a_collection_error(
        pytester: pytest.Pytester, api: Target) -> None:
    tests = "\n".join(f'''
@pytest.mark.load(iterations=2, thresholds={{"{metric}": ["{expr}"]}})
def test_{i}(load):
    async def user(vu):
        await vu.http.get("/never")
    load.run(user)
''' for i, (metric, expr, *_rest) in enumerate(UNFIT))
    pytester.makepyfile("import pytest\n" + tests + '''
@pytest.mark.load(iterations=2, thresholds={"http_reqs": ["count==2"],
                                            "iteration_duration": ["p(0)>=0", "med===0"]})
def test_fits(load):
    async def user(vu):
        await vu.http.get("/fits")
    load.run(user)
''')
    result = run(pytester, "--continue-on-collection-errors")
    result.assert_outcomes(errors=len(UNFIT), failed=1)   # med===0 is k6's == and fails
    out = result.stdout.str()
    for i, (metric, expr, agg, kind, supported, example) in enumerate(UNFIT):
        result.stdout.fnmatch_lines([
            f"*::test_{i}: invalid @pytest.mark.load(...):*",
            f"*threshold '{expr}' on {metric}: unsupported aggregation method {agg} on metric "
            f"of type {kind}; supported are: {supported}, e.g. '{example}'*"])
    assert "count samples with a counter instead" in out
    assert "/never" not in api.counts and api.counts["/fits"] == 2
    (fits,) = summary(pytester)["tests"]
    assert [(t["expression"], t["ok"]) for t in fits["thresholds"]] == [
        ("count==2", True), ("p(0)>=0", True), ("med===0", False)]


def test_custom_metric_with_an_unfit_aggregation_fails_at_its_declaration(
        pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile('''
import pytest

@pytest.mark.load(iterations=2, thresholds={"my_trend": ["rate>0", "p(95)<1000"],
                                            "my_counter": ["count>0"]})
def test_custom(load):
    counter = load.counter("my_counter")
    trend = load.trend("my_trend")

    async def user(vu):
        await vu.http.get("/never")
    load.run(user)
''')
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*ConfigError: test_custom*::test_custom: load.trend('my_trend'): threshold 'rate>0' on "
        "my_trend: unsupported aggregation method rate on metric of type trend; supported are: "
        "avg, min, max, med, p(N), e.g. 'avg>0'"])
    assert "p(95)<1000" not in result.stdout.str().split("ConfigError", 1)[1].split("\n")[0]
    assert "/never" not in api.counts


# -- k6's marker shortcuts: k6's meaning where k6 accepts, an error naming the fix otherwise --

REFUSED = [
    ("vus=10", "vus=10 alone runs 1 VU for 1 iteration in k6*add duration= (constant-vus)*"),
    ("vus=10, iterations=5", "vus=10 is more than iterations=5: k6 refuses it*"
                             "set vus <= 5 or iterations >= 10"),
    ("executor='constant-arrival-rate', rate=0, duration='1s'",
     "rate=0: expected more than 0 iterations per time_unit*"),
    ("start_vus=0, stages=[('1s', 0)]", "start_vus=0 and every stage target is 0: k6 refuses*"),
    ("stages=[('1s', 2)], iterations=3", "iterations= and stages= together: k6 refuses them*"),
    ("vus=2, start_vus=1, stages=[('1s', 2)]", "vus=2 and start_vus=1: with stages= both*"),
]


def test_shortcuts_k6_refuses_or_warns_about_are_collection_errors(
        pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile("import pytest\n" + "\n".join(f'''
@pytest.mark.load({marker})
def test_{i}(load):
    async def user(vu):
        await vu.http.get("/never")
    load.run(user)
''' for i, (marker, _) in enumerate(REFUSED)))
    result = run(pytester, "--continue-on-collection-errors")
    result.assert_outcomes(errors=len(REFUSED))
    for i, (_, message) in enumerate(REFUSED):
        result.stdout.fnmatch_lines([f"*::test_{i}: invalid @pytest.mark.load(...):*",
                                     f"  - {message}"])
    assert "/never" not in api.counts


def test_shortcuts_k6_accepts_run_with_k6s_meaning(pytester: pytest.Pytester,
                                                   api: Target) -> None:
    pytester.makepyfile('''
import asyncio
import pytest

@pytest.mark.load(vus=2, iterations=4, duration="3s")
def test_limit(load):
    async def user(vu):
        await vu.http.get("/limit")
    result = load.run(user)
    assert result.metric("iterations").count == 4

@pytest.mark.load(vus=3, stages=[("300ms", 1)], graceful_ramp_down="0s")
def test_start(load):
    first = {}

    async def user(vu):
        first.setdefault(vu.id, asyncio.get_running_loop().time())
        await vu.http.get("/start")
        await vu.sleep(0.01)
    load.run(user)
    assert sorted(first) == [1, 2, 3]                        # vus is the ramp's start
    assert max(first.values()) - min(first.values()) < 0.1   # all three from the start

@pytest.mark.load(stages=[("300ms", 0)])
def test_down(load):
    async def user(vu):
        await vu.http.get("/down")
        await vu.sleep(0.02)
    load.run(user)
''')
    result = run(pytester)
    result.assert_outcomes(passed=3)
    tests = {t["nodeid"].rsplit("::", 1)[1]: t for t in summary(pytester)["tests"]}
    assert tests["test_limit"]["executor"]["type"] == "shared-iterations"
    assert tests["test_limit"]["executor"]["max_duration"] == "3s"
    assert tests["test_start"]["executor"]["start_vus"] == 3
    assert api.counts["/limit"] == 4
    # start_vus defaults to 1 and k6 keeps that VU until the ramp reaches 0, at 300 ms:
    # many iterations, not the single one of a VU stopped at once.
    assert api.counts["/down"] >= 5


# -- tags: scenario on every sample, group inside vu.group, k6's key forms ------------------


def test_samples_carry_scenario_and_group_and_keys_read_as_in_k6(pytester: pytest.Pytester,
                                                                 api: Target) -> None:
    pytester.makepyfile('''
import pytest

@pytest.mark.load(executor="per-vu-iterations", vus=1, iterations=10, thresholds={
    "http_req_duration{scenario:read}": ["p(0)>=0"],
    "http_reqs{scenario:read}": ["count==8"],
    "http_reqs{scenario:'write'}": ["count==4"],
    'http_reqs{name:"/login"}': ["count==2"],
    "http_reqs{group:login}": ["count==2"],
    "http_reqs{group:::login}": ["count==2"],
    "group_duration{group:::login}": ["max<60000"],
    "checks{scenario:write}": ["rate==1"],
    "data_sent{scenario:read}": ["count>0"],
})
def test_tags(load):
    async def read(vu):
        await vu.http.get("/read")

    async def write(vu):
        with vu.group("login"):
            await vu.http.get("/login", name="/login")
        vu.check(1, {"is one": lambda v: v == 1})
        await vu.http.get("/after")

    result = load.run({"read": (read, 80), "write": (write, 20)})
    assert result.metric("http_reqs", scenario="write").count == 4
    assert result.metric("http_reqs", scenario="write", group="login").count == 2
    assert result.metric("http_reqs", name="/after", group="login").count == 0
''')
    result = run(pytester)
    result.assert_outcomes(passed=1)
    (test,) = summary(pytester)["tests"]
    keys = [t["metric"] for t in test["thresholds"]]
    assert "http_reqs{scenario:write}" in keys and "http_reqs{name:/login}" in keys
    assert all(t["ok"] for t in test["thresholds"]), test["thresholds"]
    assert api.counts == {"/read": 8, "/login": 2, "/after": 2}


def test_a_scenario_tag_selects_only_that_scenario(pytester: pytest.Pytester,
                                                   api: Target) -> None:
    pytester.makepyfile('''
import pytest

@pytest.mark.load(executor="per-vu-iterations", vus=1, iterations=5, thresholds={
    "http_req_duration{scenario:fast}": ["p(100)<40"],
    "http_req_duration{scenario:slow}": ["p(0)>40"],
})
def test_split(load):
    async def fast(vu):
        await vu.http.get("/slow?ms=1")

    async def slow(vu):
        await vu.http.get("/slow?ms=60")
    load.run({"fast": (fast, 3), "slow": (slow, 2)})

@pytest.mark.load(iterations=1, thresholds={"http_reqs{scenario:other}": ["count>0"]})
def test_other(load):
    async def user(vu):
        await vu.http.get("/ok")
    load.run(user)
''')
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*http_reqs{scenario:other} count>0 -> 0  FAILED*"])


# -- vus_max: the VUs initialised, from the first sample (k6) -------------------------------


def test_vus_max_is_the_initial_pool_from_the_start(pytester: pytest.Pytester,
                                                    api: Target) -> None:
    pytester.makepyfile('''
import pytest

@pytest.mark.load(start_vus=0, stages=[("200ms", 3), ("200ms", 0)],
                  thresholds={"vus_max": ["value==3"]})
def test_ramp(load):
    async def user(vu):
        await vu.sleep(0.02)
    load.run(user)

@pytest.mark.load(executor="constant-arrival-rate", rate=40, duration="500ms",
                  preallocated_vus=2, max_vus=4)
def test_pool(load):
    async def user(vu):
        await vu.sleep(0.2)           # 40/s of 0.2 s iterations need 8 VUs: 4 at most
    load.run(user)
''')
    result = run(pytester)
    result.assert_outcomes(passed=2)
    tests = {t["nodeid"].rsplit("::", 1)[1]: t for t in summary(pytester)["tests"]}
    ramp = tests["test_ramp"]["metrics"]["vus_max"]
    assert (ramp["min"], ramp["max"], ramp["value"]) == (3, 3, 3)   # was min=1: grown 1 by 1
    pool = tests["test_pool"]["metrics"]
    assert (pool["vus_max"]["min"], pool["vus_max"]["max"]) == (2, 4)
    assert pool["dropped_iterations"]["count"] > 0


# -- an option's value written as a separate argument that names an existing path ----------


def test_separate_value_naming_an_existing_folder_is_a_usage_error(
        pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest would take the folder for a test path while it looks for the ini: the
    project's ini (here load_scale = 0.5, a PR-gate profile) would silently not apply."""
    for env in ("NOVALOAD_SCALE", "NOVALOAD_RESULTS", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(env, raising=False)
    pytester.makeini("[pytest]\nload_scale = 0.5\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    outside = tmp_path_factory.mktemp("earlier-run")          # a second run into it
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--load-results",
                                           str(outside))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        f"*--load-results {outside}: pytest takes a separate value that names an existing "
        f"path for a test path while it looks for the ini file*Write --load-results={outside}"])
    assert "passed" not in result.stdout.str()
    # The = form reads the project's ini; a value that is not a path, or a folder inside
    # the project (the ini is found from it all the same), is fine written apart.
    (pytester.path / "results").mkdir()
    for args in ([f"--load-results={outside}"], ["--load-results", "results"],
                 ["--load-progress", "off", "--load-results=off"]):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["novaload: load_scale=0.5 (ini load_scale)*"])
