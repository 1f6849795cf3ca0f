"""The one judge: a run's verdict and the abort_on_fail check (runner and controller alike)."""

from __future__ import annotations

import json

from pytest_novaload.metrics import MetricStore, make_tags
from pytest_novaload.thresholds import Verdict, abort_check, judge, parse_thresholds


def store() -> MetricStore:
    s = MetricStore()
    for ms in (5.0, 6.0, 300.0):
        s.trend("http_req_duration", make_tags(name="a")).add(ms)
    s.counter("http_reqs").add(3)
    s.gauge("vus").set(40)
    return s


THS = tuple(parse_thresholds({
    "http_req_duration": ["p(95)<100", "max<1000"],
    "http_reqs": ["count>1"],
}))


def test_judge_lists_every_threshold_and_names_the_failed_ones() -> None:
    v = judge(THS, store(), 1.0)
    assert [o.ok for o in v.outcomes] == [False, True, True]
    assert not v.ok and v.outcome == "failed" and v.failed == [v.outcomes[0]]
    msg = v.message("t.py::t")
    assert msg.splitlines()[0] == "1 of 3 thresholds failed for t.py::t:"
    assert "http_req_duration p(95)<100 -> " in msg and "FAILED" in msg
    assert "http_reqs count>1 -> 3  ok" in msg


def test_an_abort_fails_even_when_every_threshold_holds() -> None:
    v = judge(THS[1:], store(), 1.0, aborted="abort_on_fail: x")
    assert all(o.ok for o in v.outcomes) and not v.ok and v.outcome == "failed"
    assert v.message("t.py::t").splitlines() == [
        "load aborted for t.py::t:", "  http_req_duration max<1000 -> 300.0 ms  ok",
        "  http_reqs count>1 -> 3  ok", "  run stopped early: abort_on_fail: x"]


def test_an_interrupted_run_is_judged_on_nothing() -> None:
    v = judge(THS, store(), 1.0, interrupted=True)
    assert v.outcomes == () and v.outcome == "interrupted"


def test_verdict_round_trips_through_json() -> None:
    v = judge(THS, store(), 1.0, aborted="stop")
    assert Verdict.from_dict(json.loads(json.dumps(v.to_dict()))) == v


def test_abort_check_waits_for_the_delay_and_names_the_threshold() -> None:
    ths = tuple(parse_thresholds({"http_req_duration": [
        {"threshold": "p(95)<100", "abort_on_fail": True, "delay_abort_eval": "10s"}],
        "http_reqs": ["count<2"]}))   # not abort_on_fail: never stops a run
    assert abort_check(ths, store(), 9.9) is None
    reason = abort_check(ths, store(), 10.0)
    assert reason is not None and reason.startswith("abort_on_fail: http_req_duration p(95)<100")


def test_abort_check_never_aborts_on_no_samples_and_skips_summed_gauges() -> None:
    ths = tuple(parse_thresholds({
        "ws_connecting": [{"threshold": "p(95)<1", "abort_on_fail": True}],
        "vus": [{"threshold": "value<10", "abort_on_fail": True}]}))
    s = store()
    s.define("ws_connecting", "trend")
    assert abort_check(ths, s, 5.0) == "abort_on_fail: vus value<10 -> 40  FAILED"
    assert abort_check(ths, s, 5.0, skip_gauges=True) is None


def test_summary_thresholds_are_the_one_outcome_serializer() -> None:
    from pytest_novaload.engine.runner import Measurements
    from pytest_novaload.metrics.errors import ErrorLog
    from pytest_novaload.session import build_result
    from pytest_novaload.thresholds import Outcome

    ths = (*THS, *parse_thresholds({"nope": ["count>0"], "http_reqs": [
        {"threshold": "count<2", "abort_on_fail": True, "delay_abort_eval": "1s"}]}))
    s = store()
    verdict = judge(ths, s, 1.0)
    result = build_result("t.py::t", {"type": "constant-vus"},
                          Measurements(s, ErrorLog(), 0.0, 1.0, 1.0), verdict, shards=1)
    entries = json.loads(json.dumps(result.to_dict()["thresholds"]))
    assert [Outcome.from_dict(e) for e in entries] == list(verdict.outcomes)
    first, *_, missing, aborting = entries
    assert first["display"] == verdict.outcomes[0].format_observed()
    assert "reason" not in first and "abort_on_fail" not in first
    assert missing["reason"].startswith("metric 'nope' was never recorded")
    assert (aborting["abort_on_fail"], aborting["delay_abort_eval"]) == (True, 1.0)
