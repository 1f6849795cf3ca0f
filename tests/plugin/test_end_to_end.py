"""The plugin end to end through pytester: passing and failing loads, artifacts, bad markers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.plugin.conftest import Target, ctrl_c_default, summary
from tests.timing import scaled

CONTRACT_EXAMPLE = '''
import pytest

@pytest.mark.load(
    stages=[("300ms", 5), ("700ms", 5), ("200ms", 0)],
    thresholds={
        "http_req_duration": ["p(95)<%(p95)s", "p(99)<1000"],
        "http_req_failed": ["rate<0.01"],
        "http_req_duration{name:create_vm}": ["p(95)<2000"],
        "checks": ["rate>0.99"],
        "vm_creation_time": [{"threshold": "p(95)<2000", "abort_on_fail": True,
                              "delay_abort_eval": "10s"}],
    },
)
def test_vm_crud(load):
    created = load.trend("vm_creation_time")

    async def user(vu):
        r = await vu.http.post("%(path)s", json={"name": f"vm-{vu.id}"}, name="create_vm")
        vu.check(r, {"status is 2xx": lambda r: 200 <= r.status_code < 300})
        created.add(r.elapsed.total_seconds() * 1000)
        await vu.sleep(0.05)

    result = load.run(user)
    assert result.metric("http_reqs").count > 0
'''


def run(pytester: pytest.Pytester, target: Target, *args: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\n")
    return pytester.runpytest("-p", "no:cacheprovider", "--load-progress", "off",
                              "--load-results", str(pytester.path / "results"), *args)


def test_contract_example_passes_against_a_fast_target(pytester: pytest.Pytester,
                                                       api: Target) -> None:
    pytester.makepyfile(CONTRACT_EXAMPLE % {"p95": 500, "path": "/api/v1/vms"})
    result = run(pytester, api)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*load test summary*", "*http_req_duration*p(95)<500*ok*",
                                 "*http_reqs*"])
    data = summary(pytester)
    assert data["schema_version"] == 1
    assert data["targets"]["API_URL"] == api.url
    (test,) = data["tests"]
    assert test["nodeid"] == "test_contract_example_passes_against_a_fast_target.py::test_vm_crud"
    assert test["outcome"] == "passed"
    assert test["executor"]["type"] == "ramping-vus"
    assert test["shards"] == 1
    m = test["metrics"]
    assert m["http_reqs"]["type"] == "counter"
    assert m["http_reqs"]["count"] == api.counts["/api/v1/vms"]
    assert m["http_req_duration"]["type"] == "trend"
    for k in ("count", "avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "p(99.9)"):
        assert k in m["http_req_duration"]
    assert m["http_req_duration{name:create_vm}"]["count"] == m["http_reqs"]["count"]
    assert m["http_req_failed"] == {"type": "rate", "rate": 0.0, "passes": 0,
                                    "fails": m["http_reqs"]["count"]}
    assert m["vus"]["max"] == 5
    assert {t["expression"] for t in test["thresholds"]} >= {"p(95)<500", "rate<0.01"}
    assert all(t["ok"] for t in test["thresholds"])
    assert test["thresholds"][0]["display"].endswith(" ms")
    assert "p(95)&lt;500" in (next((pytester.path / "results").iterdir()) / "report.html"
                              ).read_text()
    assert test["checks"]["status is 2xx"]["fails"] == 0
    run_dir = next((pytester.path / "results").iterdir())
    assert (run_dir / "SUMMARY.md").read_text().startswith("# Load test results")
    lines = (run_dir / "timeseries.ndjson").read_text().splitlines()
    assert lines and {"t", "test", "metric"} <= set(json.loads(lines[0]))
    assert (run_dir / "run.log").exists()


def test_slow_target_breaks_p95(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile(CONTRACT_EXAMPLE % {"p95": 20, "path": "/slow?ms=60"})
    result = run(pytester, api)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*thresholds failed for*test_vm_crud*",
        "*http_req_duration p(95)<20 -> * ms  FAILED*",
        "*http_req_failed rate<0.01*ok*",
    ])
    assert summary(pytester)["tests"][0]["outcome"] == "failed"


def test_erroring_target_breaks_the_error_rate(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(vus=2, duration="600ms",
                          thresholds={"http_req_failed": ["rate<0.01"]})
        def test_errors(load):
            async def user(vu):
                await vu.http.get("/status/503")
                await vu.sleep(0.01)
            load.run(user)
    """)
    result = run(pytester, api)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*http_req_failed rate<0.01 -> 1*FAILED*",
                                 "*HTTP 503 x*GET http://127.0.0.1:*/status/503 -> 503*"])
    (err,) = summary(pytester)["tests"][0]["errors"]
    assert err["type"] == "HTTP 503" and err["count"] == api.counts["/status/503"]
    assert '"status": 503' in err["example"]       # the start of the body: the server's reason


def test_bad_marker_is_a_collection_error_listing_every_problem(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(stages=[("3x", 10)], vus_max=3,
                          thresholds={"http_req_duration": ["p95<500"]})
        def test_bad(load):
            load.run(lambda vu: None)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting*", "*test_bad*invalid @pytest.mark.load*"])
    for line in ("*unknown keyword 'vus_max'*Did you mean 'max_vus'*",
                 "*stages[[]0[]]*'3x'*expected*",
                 "*'p95<500'*Did you mean 'p(95)<500'*"):
        result.stdout.fnmatch_lines([line])


def test_conflicting_executor_arguments_are_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(executor="constant-vus", vus=2, duration="1s", iterations=5)
        def test_conflict(load):
            load.run(lambda vu: None)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*'iterations' does not apply to executor 'constant-vus'*"])


def test_threshold_on_a_metric_never_recorded_fails(pytester: pytest.Pytester,
                                                    api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(iterations=3, thresholds={"http_req_durations": ["p(95)<500"]})
        def test_typo(load):
            async def user(vu):
                await vu.http.get("/ok")
            load.run(user)
    """)
    result = run(pytester, api)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*http_req_durations*never recorded*http_req_duration*"])


def test_load_test_that_never_calls_run_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(vus=1, duration="1s")
        def test_forgot(load):
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--load-results", "off")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*never calls load.run*"])


def test_second_run_is_a_usage_error(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(iterations=1)
        def test_twice(load):
            async def user(vu):
                pass
            load.run(user)
            load.run(user)
    """)
    result = run(pytester, api)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*load.run was already called*"])


def test_known_latency_mix_is_reported_right(pytester: pytest.Pytester, api: Target) -> None:
    # The server takes 5 ms (9 in 10) or 60 ms: what the client adds on top is overhead,
    # allowed 4 ms at the median and 10 ms at p(95) on a quiet machine.
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.load(executor="shared-iterations", vus=4, iterations=400)
        def test_mix(load):
            async def user(vu):
                await vu.http.get("/mix")
            result = load.run(user)
            d = result.metric("http_req_duration")
            print("MIX", d.count, d.med, d.p(95))
            assert 5 <= d.med <= 5 + {scaled(4)}, d.med
            assert 60 <= d.p(95) <= 60 + {scaled(10)}, d.p(95)
    """)
    result = run(pytester, api, "-s")
    result.assert_outcomes(passed=1)
    test = summary(pytester)["tests"][0]
    assert test["metrics"]["http_reqs"]["count"] == api.counts["/mix"] == 400
    assert test["metrics"]["iterations"]["count"] == 400


def test_arrival_rate_holds_its_rate_through_a_stall_and_counts_drops(
        pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(executor="constant-arrival-rate", rate=50, time_unit="1s",
                          duration="2s", preallocated_vus=5, max_vus=10, graceful_stop="2s")
        def test_stall(load):
            async def user(vu):
                await vu.http.get("/stall")
            import urllib.request, os
            urllib.request.urlopen(os.environ["API_URL"] + "/stall/start?s=1").read()
            result = load.run(user)
            dropped = result.metric("dropped_iterations").count
            started = result.metric("iterations").count
            print("STALL", started, dropped)
            assert dropped > 0
            # The open model keeps its schedule: started + dropped is the planned 100.
            assert 95 <= started + dropped <= 101
    """)
    result = run(pytester, api, "-s")
    result.assert_outcomes(passed=1)


def test_scenario_exceptions_are_counted_and_do_not_stop_the_run(
        pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(executor="per-vu-iterations", vus=2, iterations=5,
                          thresholds={"iteration_failed": ["rate<0.5"]})
        def test_boom(load):
            async def user(vu):
                await vu.http.get("/ok")
                if vu.iteration % 2 == 0:
                    raise ValueError(f"boom {vu.iteration}")
            load.run(user)
    """)
    result = run(pytester, api)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*iteration_failed rate<0.5*FAILED*",
                                 "*ValueError x6*boom 0*"])
    test = summary(pytester)["tests"][0]
    assert test["metrics"]["iterations"]["count"] == 10
    assert test["metrics"]["http_reqs"]["count"] == 10
    (err,) = test["errors"]
    assert err["type"] == "ValueError" and err["count"] == 6
    assert "Traceback" in err["traceback"]


def test_refused_connection_is_a_failed_request_not_a_crash(pytester: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    monkeypatch.setenv("API_URL", f"http://127.0.0.1:{port}")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(iterations=3, thresholds={"http_req_failed": ["rate<0.1"]})
        def test_refused(load):
            async def user(vu):
                r = await vu.http.get("/x")
                assert r.status_code == 0 and r.error
            load.run(user)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--load-progress", "off",
                                "--load-results", str(pytester.path / "results"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*http_req_failed rate<0.1 -> 1*FAILED*"])
    test = summary(pytester)["tests"][0]
    assert test["metrics"]["iteration_failed"]["passes"] == 0
    assert any(e["type"] for e in test["errors"])


def test_weighted_mix_is_exact(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(iterations=100, vus=3)
        def test_mix(load):
            async def read(vu):
                await vu.http.get("/read")
            async def write(vu):
                await vu.http.post("/write", json={"x": 1})
            result = load.run({"read": (read, 80), "write": (write, 20)})
            assert result.metric("iterations", scenario="read").count == 80
            assert result.metric("iterations", scenario="write").count == 20
    """)
    result = run(pytester, api)
    result.assert_outcomes(passed=1)
    assert api.counts == {"/read": 80, "/write": 20}


def test_result_metric_unknown_name_raises_keyerror(pytester: pytest.Pytester,
                                                    api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(iterations=1)
        def test_unknown(load):
            async def user(vu):
                await vu.http.get("/ok")
            result = load.run(user)
            with pytest.raises(KeyError, match="http_reqs"):
                result.metric("http_requests")
    """)
    run(pytester, api).assert_outcomes(passed=1)


@pytest.mark.parametrize("how", ["cli", "env", "ini"])
def test_scale_options_and_precedence(pytester: pytest.Pytester, api: Target,
                                      monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(executor="per-vu-iterations", vus=10, iterations=2)
        def test_scaled(load):
            async def user(vu):
                await vu.http.get("/s")
            result = load.run(user)
            print("VUS", result.metric("vus_max").max)
    """)
    ini = "[pytest]\nload_scale = 0.5\n" if how in ("ini", "env", "cli") else "[pytest]\n"
    pytester.makeini(ini)
    args = ["-p", "no:cacheprovider", "-s", "--load-results", "off"]
    if how == "env":
        monkeypatch.setenv("NOVALOAD_SCALE", "0.3")   # env beats ini
    if how == "cli":
        monkeypatch.setenv("NOVALOAD_SCALE", "0.3")
        args += ["--load-scale", "0.2"]              # cli beats env
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    expected = {"ini": 5, "env": 3, "cli": 2}[how]
    result.stdout.fnmatch_lines([f"*VUS {expected}.0*"])
    assert api.counts["/s"] == expected * 2
    assert not (pytester.path / "load-results").exists()


def test_bad_option_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--load-scale", "zero")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--load-scale='zero'*expected a number greater than 0*"])


def test_abort_on_fail_stops_the_run_early(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(vus=2, duration="20s", thresholds={
            "http_req_duration": [{"threshold": "p(95)<5", "abort_on_fail": True}]})
        def test_abort(load):
            async def user(vu):
                await vu.http.get("/slow?ms=30")
            load.run(user)
    """)
    result = run(pytester, api)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*LoadAborted*", "*abort_on_fail*p(95)<5*"])
    test = summary(pytester)["tests"][0]
    assert test["duration_s"] < scaled(15)
    assert test["aborted"]


def test_groups_and_custom_metrics(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(iterations=4, thresholds={
            "group_duration{group:login}": ["max<60000"], "logins": ["count==4"],
            "http_reqs{group:login}": ["count==4"],
            "ok_rate": ["rate==1"], "queue": ["value==7"]})
        def test_groups(load):
            logins, ok_rate = load.counter("logins"), load.rate("ok_rate")
            queue = load.gauge("queue")

            async def user(vu):
                with vu.group("login"):
                    await vu.http.get("/login")
                logins.add(1)
                ok_rate.add(True)
                queue.add(7)
            result = load.run(user)
            # k6 has no count on a trend in thresholds; the result still counts samples.
            assert result.metric("group_duration", group="login").count == 4
    """)
    run(pytester, api).assert_outcomes(passed=1)


def test_summary_is_written_even_when_the_test_fails(pytester: pytest.Pytester,
                                                     api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(iterations=2)
        def test_after(load):
            async def user(vu):
                await vu.http.get("/ok")
            load.run(user)
            assert False, "user assertion after the run"
    """)
    run(pytester, api).assert_outcomes(failed=1)
    test = summary(pytester)["tests"][0]
    assert test["outcome"] == "failed"
    assert test["metrics"]["http_reqs"]["count"] == 2


CORE_MODULES = ("pytest_novaload.session", "pytest_novaload.options",
                "pytest_novaload.engine.runner", "pytest_novaload.clients.http",
                "pytest_novaload.load", "pytest_novaload.reporting.terminal",
                "pytest_novaload.thresholds",
                "pytest_novaload.xdist.wire", "pytest_novaload.xdist.merge",
                "pytest_novaload.xdist.fanout", "pytest_novaload.xdist.controller",
                "pytest_novaload.xdist.live", "pytest_novaload.xdist.worker")


@pytest.mark.parametrize("module", CORE_MODULES)
def test_plugin_core_does_not_import_pytest_or_xdist(tmp_path: Path, module: str) -> None:
    """Only the pytest edge imports pytest, xdist or execnet: plugin.py, and in xdist/ the
    hooks (plugin.py), the scheduler (an xdist LoadScheduling) and the report (pytest's
    TestReport). The core, the wire format, the merge, the fan-out state machine, the
    controller and the worker side do not."""
    import subprocess
    import sys
    code = (f"import sys, {module}; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pytest', '_pytest', 'xdist', 'execnet')); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_the_import_check_sees_pytest_when_it_is_imported(tmp_path: Path) -> None:
    """The check above can fail: the xdist plugin module does import xdist and pytest."""
    import subprocess
    import sys
    code = ("import sys, pytest_novaload.xdist.plugin; "
            "assert 'xdist' in sys.modules and 'pytest' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_ctrl_c_cancels_at_once_and_keeps_what_was_measured(pytester: pytest.Pytester,
                                                            api: Target) -> None:
    import signal
    import subprocess
    import sys
    import time

    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(vus=2, duration="60s", thresholds={"http_req_duration": ["p(95)<1"]})
        def test_long(load):
            async def user(vu):
                await vu.http.get("/slow?ms=20")
            load.run(user)
    """)
    pytester.makeini("[pytest]\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--load-progress", "off",
         "--load-results", str(pytester.path / "results")],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=ctrl_c_default)
    try:
        deadline = time.monotonic() + scaled(30)
        while api.counts.get("/slow", 0) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=scaled(30))
    finally:
        proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    test = summary(pytester)["tests"][0]
    assert test["outcome"] == "interrupted"
    assert test["thresholds"] == []          # nothing is judged
    # Requests in flight at Ctrl-C are cancelled; all completed ones are kept.
    assert test["metrics"]["http_reqs"]["count"] >= 20
    assert test["duration_s"] < scaled(30)


def test_every_bad_marker_of_a_file_is_reported_and_the_rest_collects(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(vus=2, duration="1x")
        def test_bad_duration(load):
            load.run(lambda vu: None)

        @pytest.mark.load(executor="ramping-vu", stages=[("1s", 1)])
        def test_bad_executor(load):
            load.run(lambda vu: None)

        def test_ok():
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--load-results", "off")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting*", "*::test_bad_duration: invalid*",
                                 "*duration '1x': expected a duration*"])
    result.stdout.fnmatch_lines(["*ERROR collecting*", "*::test_bad_executor: invalid*",
                                 "*Did you mean 'ramping-vus'*"])
    result.stdout.fnmatch_lines(["*2 errors*"])
    result = pytester.runpytest("-p", "no:cacheprovider", "--load-results", "off",
                                "--continue-on-collection-errors")
    result.assert_outcomes(passed=1, errors=2)


def test_timeseries_lines_are_per_unix_second(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(executor="constant-arrival-rate", rate=20, duration="2500ms",
                          preallocated_vus=4, max_vus=20)
        def test_ts(load):
            async def user(vu):
                await vu.http.get("/ok")
            load.run(user)
    """)
    run(pytester, api).assert_outcomes(passed=1)
    run_dir = next((pytester.path / "results").iterdir())
    lines = [json.loads(x) for x in (run_dir / "timeseries.ndjson").read_text().splitlines()]
    its = [x for x in lines if x["metric"] == "iterations"]
    seconds = [x["t"] for x in its]
    assert seconds == sorted(set(seconds))                      # one line per second
    assert seconds == list(range(seconds[0], seconds[-1] + 1))  # and no second skipped
    # 50 starts, each run or dropped (a loaded machine can leave no VU free at a start):
    # the per-second lines add up to the run's totals.
    metrics = summary(pytester)["tests"][0]["metrics"]
    dropped = [x for x in lines if x["metric"] == "dropped_iterations"]
    assert sum(x["count"] for x in its) == metrics["iterations"]["count"] >= 40
    assert sum(x["count"] for x in dropped) == metrics.get(
        "dropped_iterations", {}).get("count", 0)
    assert sum(x["count"] for x in its) + sum(x["count"] for x in dropped) == 50
    assert all(isinstance(x["t"], int) and x["test"].endswith("::test_ts") for x in lines)


def test_a_stage_ending_inside_a_second_does_not_double_the_vus(pytester: pytest.Pytester,
                                                                  api: Target) -> None:
    # The second a stage ends in is measured in two pieces; its VU gauges are the one pool's
    # level, not the two pieces' levels added up (the report's VU chart and the outputs read
    # these lines and windows).
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(stages=[("1500ms", 3), ("1500ms", 3)])
        def test_ts(load):
            async def user(vu):
                await vu.http.get("/ok")
                await vu.sleep(0.05)
            load.run(user)
    """)
    run(pytester, api).assert_outcomes(passed=1)
    run_dir = next((pytester.path / "results").iterdir())
    lines = [json.loads(x) for x in (run_dir / "timeseries.ndjson").read_text().splitlines()]
    vus = [x for x in lines if x["metric"] == "vus"]
    vus_max = [x for x in lines if x["metric"] == "vus_max"]
    assert len(vus) >= 3 and vus_max
    assert max(x["max"] for x in vus) == 3, vus
    assert max(x["value"] for x in vus) == 3, vus
    assert {x["value"] for x in vus_max} == {3}, vus_max
    metrics = summary(pytester)["tests"][0]["metrics"]
    assert metrics["vus"]["max"] == metrics["vus_max"]["value"] == 3


def test_metric_with_an_unknown_tag_key_raises(pytester: pytest.Pytester, api: Target) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(iterations=2)
        def test_tags(load):
            async def user(vu):
                await vu.http.get("/ok")
            result = load.run(user)
            assert result.metric("http_reqs", name="/ok").count == 2
            assert result.metric("http_reqs", status="500").count == 0   # none: a real zero
            with pytest.raises(KeyError, match="no tag 'nam'.*name"):
                result.metric("http_reqs", nam="/ok")
    """)
    run(pytester, api).assert_outcomes(passed=1)


def test_usage_error_in_the_scenario_stops_the_run_at_once(pytester: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.delenv("API_URL", raising=False)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(vus=2, duration="30s")
        def test_no_base_url(load):
            async def user(vu):
                await vu.http.get("/relative")
            load.run(user)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--load-progress", "off",
                                "--load-results", str(pytester.path / "results"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*usage error*needs a base URL*API_URL*"])
    assert summary(pytester)["tests"][0]["duration_s"] < scaled(10)


def test_no_run_folder_without_a_load_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.runpytest("-p", "no:cacheprovider", "--load-results",
                       str(pytester.path / "results")).assert_outcomes(passed=1)
    assert not (pytester.path / "results").exists()


def test_public_names_import() -> None:
    import pytest_novaload
    ns: dict[str, Any] = {}
    exec("from pytest_novaload import *", ns)
    assert issubclass(ns["ThresholdsFailed"], AssertionError)
    assert ns["Load"] is pytest_novaload.Load and ns["VU"] is pytest_novaload.VU
