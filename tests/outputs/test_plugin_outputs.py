"""``--load-out`` end to end through pytester: a load against a loopback aiohttp target streams
into a real Prometheus (read back with PromQL and Grafana's k6 dashboard queries, compared with
summary.json), with and without xdist; k6 JSON lines; dead and slow receivers."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.outputs.conftest import TIME_FACTOR, Prometheus
from tests.outputs.test_prometheus_rw import QUERIES, _promql_regex
from tests.plugin.conftest import Target, target  # noqa: F401  (the fixture)

LOAD_TEST = '''
import pytest

@pytest.mark.load(vus=4, duration="%(duration)s",
                  thresholds={"http_req_duration{expected_response:true}": ["p(95)<5000"],
                              "checks": ["rate>0.5"]})
def test_load(load):
    async def user(vu):
        r = await vu.http.get("/mix", name="mix")
        vu.check(r, {"status is 200": lambda r: r.status_code == 200})
        if vu.iteration %% 5 == 4:
            await vu.http.get("/status/500", name="boom")
        await vu.sleep(0.01)

    load.run(user)
'''
NODEID = "test_{name}.py::test_load"
FAILED = 'expected_response="false"'
EXPECTED = 'expected_response="true"'


@pytest.fixture
def api(target: Target, monkeypatch: pytest.MonkeyPatch) -> Target:  # noqa: F811
    monkeypatch.setenv("API_URL", target.url)
    monkeypatch.delenv("NOVALOAD_OUT", raising=False)
    for k in ("K6_PROMETHEUS_RW_TREND_STATS", "K6_PROMETHEUS_RW_STALE_MARKERS"):
        monkeypatch.delenv(k, raising=False)
    return target


def _run(pytester: pytest.Pytester, *args: str, duration: str = "3s",
         subprocess: bool = False) -> tuple[pytest.RunResult, float]:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(LOAD_TEST % {"duration": duration})
    argv = ["-p", "no:cacheprovider", "--load-progress", "off",
            "--load-results", str(pytester.path / "results"), *args]
    t0 = time.monotonic()
    result = (pytester.runpytest_subprocess(*argv, timeout=120) if subprocess
              else pytester.runpytest(*argv))
    return result, time.monotonic() - t0


def _test_of(pytester: pytest.Pytester) -> dict[str, Any]:
    (run_dir,) = (pytester.path / "results").iterdir()
    (test,) = json.loads((run_dir / "summary.json").read_text())["tests"]
    return dict(test)


def _sel(nodeid: str, extra: str = "") -> str:
    return "{" + f'testid="{nodeid}"' + (f", {extra}" if extra else "") + "}"


def _value(prom: Prometheus, expr: str, at: float) -> float:
    result = prom.query(expr, at)
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


def _check_against_summary(prom: Prometheus, nodeid: str, test: dict[str, Any],
                           at: float) -> None:
    m = test["metrics"]
    assert _value(prom, f"sum(k6_http_reqs_total{_sel(nodeid)})", at) == m["http_reqs"]["count"]
    assert _value(prom, f"sum(k6_iterations_total{_sel(nodeid)})", at) == m["iterations"]["count"]
    assert _value(prom, f"max_over_time(sum(k6_vus{_sel(nodeid)})[5m:1s])", at) == \
        m["vus"]["max"] == 4
    # vus_max over the run, not its last sample: under xdist the shards' last seconds need not
    # be the same unix second, and a second only one shard still ran holds only its VUs
    # (seen: 2 of 4 when the two shards ended either side of a second's boundary).
    assert _value(prom, f"max_over_time(sum(k6_vus_max{_sel(nodeid)})[5m:1s])", at) == \
        m["vus_max"]["value"] == 4
    failed = m["http_req_failed"]
    assert _value(prom, f"sum(k6_http_reqs_total{_sel(nodeid, FAILED)})",
                  at) == failed["passes"] > 0
    # One series carries every expected response (GET /mix 200): its stats are the
    # summary's sub-metric, in seconds; the digests agree within their error (about 1%).
    sub = m["http_req_duration{expected_response:true}"]
    for stat, key in (("p95", "p(95)"), ("p99", "p(99)"), ("med", "med")):
        got = _value(prom, f"k6_http_req_duration_{stat}"
                           f"{_sel(nodeid, EXPECTED)}", at) * 1000.0
        assert got == pytest.approx(sub[key], rel=0.05, abs=1.0), (stat, got, sub)
    for stat in ("avg", "min", "max"):
        got = _value(prom, f"k6_http_req_duration_{stat}"
                           f"{_sel(nodeid, EXPECTED)}", at) * 1000.0
        assert got == pytest.approx(sub[stat], rel=1e-6, abs=1e-6), (stat, got, sub)
    checks = m["checks"]
    assert _value(prom, f"k6_checks_rate{_sel(nodeid)}", at) == pytest.approx(checks["rate"])


def _dashboard(prom: Prometheus, nodeid: str, test: dict[str, Any], at: float) -> int:
    """Every covered query of Grafana's k6 dashboard: our series (only ours) where the run
    has the metric; empty where it has none (as k6's own run would be). How many returned."""
    regex = _promql_regex(nodeid)
    m = test["metrics"]
    answered = 0
    for q in QUERIES["queries"]:
        if not q["covered"]:
            continue
        expr = q["expr"].replace("{testid}", regex)
        result = prom.query(expr, at)
        if "k6_dropped_iterations" in expr and not m.get("dropped_iterations", {}).get("count"):
            assert result == [], (expr, result)
            continue
        assert result, (q["panel"], expr)
        for item in result:
            assert item["metric"].get("testid", nodeid) == nodeid, (expr, item)
            assert float(item["value"][1]) == float(item["value"][1]), (expr, item)  # not NaN
        answered += 1
    return answered


def test_prometheus_gets_the_run_as_summary_json_has_it(
        pytester: pytest.Pytester, api: Target, prometheus: Prometheus) -> None:
    json_path = pytester.path / "out.json.gz"
    result, _ = _run(pytester, "--load-out", f"prometheus-rw={prometheus.write_url}",
                     "--load-out", f"json={json_path}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*load_out=prometheus-rw={prometheus.write_url} "
                                 f"json={json_path} (--load-out)*"])
    assert "pytest-novaload output" not in result.stdout.str()  # nothing dropped
    nodeid = NODEID.format(name="prometheus_gets_the_run_as_summary_json_has_it")
    test = _test_of(pytester)
    at = time.time()
    _check_against_summary(prometheus, nodeid, test, at)
    # The series are k6's: the dashboard's variables list this test and our stats.
    assert nodeid in prometheus.api("/api/v1/label/testid/values")
    answered = _dashboard(prometheus, nodeid, test, at)
    assert answered >= 60
    _check_json(json_path, nodeid, test)


def test_under_xdist_the_controller_sends_one_merged_series_set(
        pytester: pytest.Pytester, api: Target, prometheus: Prometheus) -> None:
    json_path = pytester.path / "out.json.gz"
    result, _ = _run(pytester, "-n", "2", "--load-out",
                     f"prometheus-rw={prometheus.write_url}", "--load-out", f"json={json_path}",
                     subprocess=True)
    result.assert_outcomes(passed=1)
    nodeid = NODEID.format(name="under_xdist_the_controller_sends_one_merged_series_set")
    test = _test_of(pytester)
    assert test["shards"] == 2
    at = time.time()
    _check_against_summary(prometheus, nodeid, test, at)  # vus max 4 = 2 + 2: merged
    # One series per tag set, as without xdist: no worker label, nothing doubled.
    series = prometheus.api("/api/v1/series", **{"match[]": f"k6_http_reqs_total{_sel(nodeid)}"})
    keys = {tuple(sorted((k, v) for k, v in s.items() if k != "__name__")) for s in series}
    assert len(keys) == len(series) == 2, series   # mix 200 and boom 500
    assert all(set(s) == {"__name__", "expected_response", "method", "name", "scenario",
                          "status", "testid"} for s in series), series   # k6's, no worker
    assert _dashboard(prometheus, nodeid, test, at) >= 60
    # The workers' JSON files are joined into the one asked for.
    assert sorted(p.name for p in pytester.path.glob("out.json*")) == ["out.json.gz"]
    _check_json(json_path, nodeid, test)


def _check_json(path: Path, nodeid: str, test: dict[str, Any]) -> None:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = [json.loads(line) for line in fh]
    metrics = [d for d in lines if d["type"] == "Metric"]
    points = [d for d in lines if d["type"] == "Point"]
    names = [d["metric"] for d in metrics]
    assert len(names) == len(set(names)), names          # each metric declared once
    for d in metrics:
        assert list(d) == ["type", "data", "metric"]
        assert list(d["data"]) == ["name", "type", "contains", "thresholds", "submetrics"]
    kinds = {d["metric"]: (d["data"]["type"], d["data"]["contains"]) for d in metrics}
    assert kinds["http_req_duration"] == ("trend", "time")
    assert kinds["http_reqs"] == ("counter", "default")
    assert kinds["data_received"] == ("counter", "data")
    assert kinds["vus"] == ("gauge", "default")
    thresholds = {d["metric"]: d["data"]["thresholds"] for d in metrics}
    assert thresholds["http_req_duration"] == ["p(95)<5000"]   # as k6 lists them
    assert thresholds["checks"] == ["rate>0.5"] and thresholds["http_reqs"] == []
    for d in points:
        assert list(d) == ["metric", "type", "data"] and list(d["data"]) == ["time", "value",
                                                                             "tags"]
        assert d["data"]["tags"]["testid"] == nodeid
        assert d["data"]["time"].endswith("Z")
        assert d["metric"] in kinds

    def count(name: str) -> int:
        return sum(1 for d in points if d["metric"] == name)

    m = test["metrics"]
    assert count("http_reqs") == count("http_req_duration") == m["http_reqs"]["count"]
    assert count("iterations") == m["iterations"]["count"]
    assert count("checks") == m["checks"]["passes"] + m["checks"]["fails"]
    assert sum(d["data"]["value"] for d in points if d["metric"] == "http_req_failed") == \
        m["http_req_failed"]["passes"]
    assert sum(d["data"]["value"] for d in points if d["metric"] == "data_received") == \
        m["data_received"]["count"]
    assert count("vus") >= 2                              # once a second, as k6 does
    assert max(d["data"]["value"] for d in points if d["metric"] == "vus") <= m["vus"]["max"]


@pytest.fixture
def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: connecting is refused


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts connections and reads, but never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.parametrize("output", ["prometheus-rw", "otlp"])
@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_a_dead_or_slow_receiver_changes_neither_verdict_nor_duration(
        pytester: pytest.Pytester, api: Target, kind: str, output: str,
        request: pytest.FixtureRequest) -> None:
    port = request.getfixturevalue("refused_port" if kind == "refused" else "silent_port")
    base_result, base_wall = _run(pytester, "--load-results", "off", duration="2s")
    base_result.assert_outcomes(passed=1)
    url, sent_to = ((f"http://127.0.0.1:{port}/api/v1/write",) * 2 if output == "prometheus-rw"
                    else (f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/v1/metrics"))
    result, wall = _run(pytester, "--load-out", f"{output}={url}", duration="2s")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    test = _test_of(pytester)
    assert test["outcome"] == "passed"
    # The load ran its planned 2 s; the session's end waits at most the output's close bound
    # (3 s for the last windows) beyond the same session without the output.
    assert float(test["duration_s"]) < 2.0 + 1.0 * TIME_FACTOR, test["duration_s"]
    assert wall < base_wall + 3.0 + 2.0 * TIME_FACTOR, (wall, base_wall)
    assert out.count(f"{output} ({sent_to})") >= 1
    if kind == "refused":
        assert out.count("sending failed") == 1, out     # warned once, not per window
        assert "unreachable" in out
    result.stdout.fnmatch_lines([f"*pytest-novaload output {output} ({sent_to}): * windows sent, "
                                 "* dropped*"])
    assert "0 dropped" not in out


def test_a_bad_load_out_is_a_usage_error_naming_the_fix(pytester: pytest.Pytester,
                                                        api: Target) -> None:
    result, _ = _run(pytester, "--load-out", "prometheus=http://127.0.0.1:1/api/v1/write",
                     "--load-out", "otlp=127.0.0.1:4318")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*--load-out 'prometheus=http://127.0.0.1:1/api/v1/write': unknown output "
        "'prometheus'; expected one of prometheus-rw, json, otlp*(from --load-out)*",
        "*otlp='127.0.0.1:4318': expected the OTLP/HTTP base URL of a collector or backend, "
        "such as 'otlp=http://127.0.0.1:4318'*"])


def test_load_out_from_env_and_ini(pytester: pytest.Pytester, api: Target,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVALOAD_OUT", f"json={pytester.path / 'env.json'}, ")
    pytester.makeini(f"[pytest]\nload_out =\n    json={pytester.path / 'ini.json'}\n")
    pytester.makepyfile(LOAD_TEST % {"duration": "500ms"})
    result = pytester.runpytest("-p", "no:cacheprovider", "--load-progress", "off",
                                "--load-results", "off")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*load_out=json={pytester.path / 'env.json'} (NOVALOAD_OUT)*"])
    assert (pytester.path / "env.json").read_text().startswith('{"type":"Metric"')
    assert not (pytester.path / "ini.json").exists()   # env beats ini, as for every option
    monkeypatch.delenv("NOVALOAD_OUT")
    result = pytester.runpytest("-p", "no:cacheprovider", "--load-progress", "off",
                                "--load-results", "off")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "ini.json").stat().st_size > 0
