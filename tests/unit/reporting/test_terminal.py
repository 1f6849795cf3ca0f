"""The terminal's end-of-test summary (``terminal.render``): the lines a user reads for a
passing and a failing load test, from a real store judged by ``judge``."""

from __future__ import annotations

from typing import Any

from pytest_novaload.metrics import MetricStore
from pytest_novaload.reporting import terminal
from pytest_novaload.reporting.model import RunResult
from pytest_novaload.thresholds import judge, parse_thresholds

CREATE = (("name", "create"),)


def store(*, failed: int = 0, check_fails: int = 0) -> MetricStore:
    """Four requests of 10-40 ms over 2 s; ``failed`` of them failed."""
    s = MetricStore()
    for i, ms in enumerate((10.0, 20.0, 30.0, 40.0)):
        s.trend("http_req_duration", CREATE).add(ms)
        s.counter("http_reqs", CREATE).add()
        s.rate("http_req_failed").add(i < failed)
    for i in range(4):
        s.rate("checks", (("check", "status is 201"),)).add(i >= check_fails)
    s.trend("group_duration")                    # defined, never recorded: no line
    s.counter("data_received").add(2048)
    s.gauge("vus").add(3)
    return s


def result(s: MetricStore, thresholds: dict[str, Any], **kwargs: Any) -> RunResult:
    verdict = judge(parse_thresholds(thresholds), s, 2.0, aborted=kwargs.pop("aborted", None))
    return RunResult("tests/perf/test_api.py::test_crud", s, 2.0, {"type": "constant-vus"},
                     verdict, **kwargs)


def test_a_passing_run_reads_header_thresholds_metrics_and_checks() -> None:
    lines = terminal.render(result(store(), {"http_req_duration": ["p(95)<500"],
                                             "http_req_failed": ["rate<0.01"]})).splitlines()
    assert lines[0] == "tests/perf/test_api.py::test_crud  [passed]  constant-vus, 1 shard, 2.0s"
    assert lines[1:4] == ["  THRESHOLDS",
                          "    ✓ http_req_duration p(95)<500 -> 38.5 ms  ok",
                          "    ✓ http_req_failed rate<0.01 -> 0 (0%)  ok"]
    assert lines[4] == "  METRICS"
    metrics = lines[5:lines.index("  CHECKS")]
    assert metrics == [
        "    checks ...........................: 100.00%  4 out of 4",
        "    data_received ....................: 2.0 kB  1.0 kB/s",
        "    http_req_duration ................: avg=25.00ms min=10.00ms med=25.00ms "
        "max=40.00ms p(90)=37.00ms p(95)=38.50ms p(99)=39.70ms  count=4",
        "    http_req_failed ..................: 0.00%  0 out of 4",
        "    http_reqs ........................: 4  2.00/s",
        "    vus ..............................: 3  min=3 max=3",
    ]  # sorted; no per-tag breakdown no threshold names; no never-recorded trend
    assert lines[lines.index("  CHECKS") + 1:] == ["    ✓ status is 201: 100.00% (4 / 4)"]


def test_a_failing_run_says_what_broke_why_it_stopped_and_what_went_wrong() -> None:
    s = store(failed=1, check_fails=1)
    r = result(s, {"http_req_duration{name:create}": ["p(95)<20"],
                   "http_req_failed": ["rate<0.01"]},
               aborted="abort_on_fail: http_req_failed rate<0.01", shards=2,
               errors=[{"type": "ConnectError", "count": 3,
                        "example": "ConnectError: refused\nTraceback (most recent call last)"}],
               generator={"verdict": "saturated", "loop": "uvloop", "loop_lag_p99_ms": 41.5,
                          "cpu": 0.97})
    lines = terminal.render(r).splitlines()
    assert lines[0] == "tests/perf/test_api.py::test_crud  [failed]  constant-vus, 2 shards, 2.0s"
    assert lines[1:5] == [
        "  THRESHOLDS",
        "    ✗ http_req_duration{name:create} p(95)<20 -> 38.5 ms  FAILED",
        "    ✗ http_req_failed rate<0.01 -> 0.25 (25%)  FAILED",
        "  ABORTED: abort_on_fail: http_req_failed rate<0.01",
    ]
    # the sub-metric a threshold names is shown beside its base metric
    assert any(line.startswith("    http_req_duration{name:create} ...: avg=25.00ms")
               for line in lines)
    assert "    http_req_failed ..................: 25.00%  1 out of 4" in lines
    assert lines[-5:] == [
        "  CHECKS",
        "    ✗ status is 201: 75.00% (3 / 4)",
        "  ERRORS",
        "    ConnectError x3: ConnectError: refused",     # the example's first line only
        "  GENERATOR  saturated  (loop uvloop, lag p99 41.5 ms, cpu 97%)",
    ]


def test_trend_intervals_show_beside_their_statistic() -> None:
    r = result(store(), {"http_req_duration": ["p(95)<500"]},
               extra={"ci95": {"http_req_duration": {"ci95": {"p(95)": [30.0, 40.0]}}}})
    [line] = [x for x in terminal.render(r).splitlines()
              if x.startswith("    http_req_duration ")]
    assert "p(95)=38.50ms [30.00ms, 40.00ms] p(99)=39.70ms" in line
