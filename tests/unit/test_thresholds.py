"""Thresholds: the k6 grammar, the marker dict, verdicts and their printed lines."""

from __future__ import annotations

import itertools
import json

import pytest

from pytest_novaload.errors import ConfigError, ThresholdSyntaxError
from pytest_novaload.metrics import MetricStore, make_tags
from pytest_novaload.thresholds import (
    AGGREGATIONS,
    OPERATORS,
    Outcome,
    Threshold,
    evaluate,
    evaluate_all,
    parse_expression,
    parse_thresholds,
)

ALLOWED = ("expected 'agg op number' with agg one of avg, min, max, med, count, rate, value, "
           "p(N) such as p(95)")
OPS_ALLOWED = "op one of <, <=, >, >=, ==, !="

# -- parse_expression -----------------------------------------------------------------------------


@pytest.mark.parametrize(("agg", "op"), list(itertools.product(
    [*AGGREGATIONS, "p(95)", "p(99.9)", "p(100)", "p(0.1)", "p(0)"], OPERATORS)))
def test_every_aggregation_and_operator(agg: str, op: str) -> None:
    assert parse_expression(f"{agg}{op}12.5") == (agg, op, 12.5)


@pytest.mark.parametrize(("expr", "parsed"), [
    ("p(99.9)<250", ("p(99.9)", "<", 250.0)),
    ("  p( 95 ) <=  500  ", ("p(95)", "<=", 500.0)),
    ("p (90)>1", ("p(90)", ">", 1.0)),
    ("p(95.0)<1", ("p(95)", "<", 1.0)),
    ("p(97.50)<1", ("p(97.5)", "<", 1.0)),
    ("rate < .01", ("rate", "<", 0.01)),
    ("count>=1e3", ("count", ">=", 1000.0)),
    ("value != -3", ("value", "!=", -3.0)),
    ("avg==+2", ("avg", "==", 2.0)),
    ("med===0", ("med", "==", 0.0)),       # k6's grammar has === for ==
    ("p(0) >= 0", ("p(0)", ">=", 0.0)),
])
def test_whitespace_and_number_forms(expr: str, parsed: tuple[str, str, float]) -> None:
    assert parse_expression(expr) == parsed


@pytest.mark.parametrize(("expr", "problem", "fix"), [
    ("p95<500", "unknown aggregation 'p95'", "p(95)<500"),
    ("p99.9 < 250", "unknown aggregation 'p99.9'", "p(99.9)<250"),
    ("p(-1)<1", "needs a number between 0 and 100", None),
    ("p(101)<1", "p(101) is out of range", None),
    ("p(x)<1", "needs a number between 0 and 100", None),
    ("avg<", "no number after 'avg<'", None),
    ("avg<<1", "'<1' after 'avg<' is not a number", "avg<1"),
    ("foo>1", "unknown aggregation 'foo'", None),
    ("avg<abc", "'abc' after 'avg<' is not a number", None),
    ("p(95)<500ms", "'500ms' after 'p(95)<' is not a number", "p(95)<500"),
    ("p(95)<2s", "is not a number", "p(95)<2000"),
    ("mean<5", "unknown aggregation 'mean'", "avg<5"),
    ("AVG<5", "unknown aggregation 'AVG'", "avg<5"),
    ("avg=5", "unknown operator '='", "avg==5"),
    ("avg=<5", "unknown operator '=<'", "avg<=5"),
    ("avg 5", "expected an operator after 'avg', found '5'", None),
    ("p(95)", "no operator and no number after 'p(95)'", None),
    ("", "the expression is empty", None),
    ("<5", "does not start with an aggregation", None),
    ("avg<5 extra", "'5 extra' after 'avg<' is not a number", None),
])
def test_bad_expressions_name_the_expression_and_what_is_allowed(
        expr: str, problem: str, fix: str | None) -> None:
    with pytest.raises(ThresholdSyntaxError) as info:
        parse_expression(expr, metric="http_req_duration")
    message = str(info.value)
    assert message.startswith(f"threshold '{expr}' on http_req_duration: ")
    assert problem in message
    assert ALLOWED in message and OPS_ALLOWED in message
    if fix is None:
        assert "Did you mean" not in message
    else:
        assert message.endswith(f"Did you mean '{fix}'?")


def test_error_message_for_the_common_typo_reads_well() -> None:
    with pytest.raises(ThresholdSyntaxError) as info:
        parse_expression("p95<500", metric="http_req_duration")
    assert str(info.value) == (
        "threshold 'p95<500' on http_req_duration: unknown aggregation 'p95' (percentiles are "
        "written p(N)); expected 'agg op number' with agg one of avg, min, max, med, count, "
        "rate, value, p(N) such as p(95) (0 <= N <= 100); op one of <, <=, >, >=, ==, !=. "
        "Did you mean 'p(95)<500'?")
    assert isinstance(info.value, ConfigError)


def test_non_string_expression() -> None:
    with pytest.raises(ThresholdSyntaxError, match="expected a string"):
        parse_expression(95)  # type: ignore[arg-type]


# -- parse_thresholds -----------------------------------------------------------------------------


def test_parse_thresholds_all_forms() -> None:
    ths = parse_thresholds({
        "http_req_duration": ["p(95)<500", "p(99)<1000"],
        "http_req_failed": "rate<0.01",
        "http_req_duration{ name : create_vm }": ["p(95)<2000"],
        "vm_creation_time": [{"threshold": "p(95)<2000", "abort_on_fail": True,
                              "delay_abort_eval": "10s"}],
        "checks": ({"threshold": "rate>0.99"},),
        "http_req_duration{name:list_vms}": [],  # k6 idiom: sub-metric shown, nothing judged
    })
    assert ths == [
        Threshold("http_req_duration", "p(95)<500", "p(95)", "<", 500.0),
        Threshold("http_req_duration", "p(99)<1000", "p(99)", "<", 1000.0),
        Threshold("http_req_failed", "rate<0.01", "rate", "<", 0.01),
        Threshold("http_req_duration{name:create_vm}", "p(95)<2000", "p(95)", "<", 2000.0),
        Threshold("vm_creation_time", "p(95)<2000", "p(95)", "<", 2000.0,
                  abort_on_fail=True, delay_abort_eval=10.0),
        Threshold("checks", "rate>0.99", "rate", ">", 0.99),
    ]
    assert ths[3].name == "http_req_duration"
    assert ths[3].filters == {"name": "create_vm"}


def test_parse_thresholds_collects_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        parse_thresholds({
            "http_req_duration{name}": ["p(95)<500"],
            "http_req_duration": ["p95<500", "avg<", "p(99)<1000"],
            "vm_creation_time": [{"threshold": "p(95)<1", "abort": True,
                                  "delay_abort_eval": "10x", "abort_on_fail": "yes"}],
            "checks": [{"abort_on_fail": True}],
            "http_reqs": 5,
            "iterations": [["count>1"]],
        })
    problems = info.value.problems
    assert len(problems) == 9
    text = "\n".join(problems)
    for fragment in (
        "metric key 'http_req_duration{name}': tag filter 'name' must be 'tag:value'",
        "threshold 'p95<500' on http_req_duration",
        "threshold 'avg<' on http_req_duration",
        "unknown key(s) 'abort'",
        "allowed: threshold, abort_on_fail, delay_abort_eval",
        "thresholds['vm_creation_time'] delay_abort_eval '10x': expected a duration",
        "abort_on_fail='yes'",
        "has no 'threshold' key",
        "thresholds['http_reqs'] = 5: expected an expression",
        "thresholds['iterations']: entry ['count>1']: expected an expression",
    ):
        assert fragment in text


def test_parse_thresholds_needs_a_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a dict"):
        parse_thresholds(["p(95)<500"])  # type: ignore[arg-type]


def test_threshold_round_trips_through_json() -> None:
    th = Threshold("x{a:b}", "p(95)<1", "p(95)", "<", 1.0, True, 2.5)
    assert Threshold.from_dict(json.loads(json.dumps(th.to_dict()))) == th


# -- evaluate -------------------------------------------------------------------------------------


def th(metric: str, expr: str) -> Threshold:
    (parsed,) = parse_thresholds({metric: expr})
    return parsed


@pytest.fixture
def store() -> MetricStore:
    s = MetricStore()
    for i in range(100):
        name = "create_vm" if i % 4 == 0 else "list_vms"
        tags = make_tags(name=name, method="GET", status=200)
        s.trend("http_req_duration", tags).add(600.0 if name == "create_vm" else 10.0)
        s.counter("http_reqs", tags).add()
        s.rate("http_req_failed", tags).add(i % 50 == 0)
    s.gauge("vus").set(7)
    s.define("iterations", "counter")
    s.define("checks", "rate")
    s.trend("vm_creation_time")
    return s


@pytest.mark.parametrize(("metric", "expr", "observed", "ok"), [
    ("http_req_duration", "max<1000", 600.0, True),
    ("http_req_duration", "min>=10", 10.0, True),
    ("http_req_duration", "avg<100", 157.5, False),
    ("http_reqs", "count==100", 100.0, True),
    ("http_req_duration", "p(0)>=10", 10.0, True),   # p(0) is the minimum
    ("http_req_duration{name:create_vm}", "p(95)<500", 600.0, False),
    ("http_req_duration{name:list_vms}", "p(99.9)<=10", 10.0, True),
    ("http_req_duration{name:list_vms}", "med!=10", 10.0, False),
    ("http_req_failed", "rate<0.01", 0.02, False),
    ("http_req_failed", "rate<0.05", 0.02, True),
    ("http_reqs", "count>99", 100.0, True),
    ("http_reqs", "rate>=10", 10.0, True),  # 100 requests in 10 s
    ("http_reqs{name:create_vm}", "count==25", 25.0, True),
    ("vus", "value==7", 7.0, True),
    ("vus", "value<5", 7.0, False),
    ("iterations", "count<1", 0.0, True),  # counters are judged on their zero
    ("iterations", "count>0", 0.0, False),
])
def test_evaluate_verdicts(store: MetricStore, metric: str, expr: str, observed: float,
                           ok: bool) -> None:
    outcome = evaluate(th(metric, expr), store, 10.0)
    assert outcome.observed == pytest.approx(observed)
    assert outcome.ok is ok
    assert outcome.reason is None


def test_missing_metric_fails_naming_the_metrics_that_exist(store: MetricStore) -> None:
    outcome = evaluate(th("http_req_durations", "p(95)<500"), store, 10.0)
    assert (outcome.ok, outcome.observed) == (False, None)
    assert outcome.reason == (
        "metric 'http_req_durations' was never recorded; metrics that exist: checks, "
        "http_req_duration, http_req_failed, http_reqs, iterations, vm_creation_time, vus")


@pytest.mark.parametrize(("metric", "expr"), [
    ("vm_creation_time", "p(95)<2000"),
    ("vm_creation_time", "max<1"),
    ("vm_creation_time", "p(0)<1"),
    ("checks", "rate>0.99"),
    ("checks", "rate<0.5"),
])
def test_empty_trend_or_rate_never_passes(store: MetricStore, metric: str, expr: str) -> None:
    outcome = evaluate(th(metric, expr), store, 10.0)
    assert (outcome.ok, outcome.observed, outcome.reason) == (False, None, "no samples")


def test_no_samples_for_a_tag_names_the_values_seen(store: MetricStore) -> None:
    outcome = evaluate(th("http_req_duration{name:delete_vm}", "p(95)<500"), store, 10.0)
    assert outcome.ok is False
    assert outcome.reason == ("no samples: no series of 'http_req_duration' has "
                              "name:delete_vm; name values recorded: create_vm, list_vms")


def test_aggregation_the_kind_does_not_support_fails(store: MetricStore) -> None:
    outcome = evaluate(th("http_reqs", "p(95)<500"), store, 10.0)
    assert (outcome.ok, outcome.observed) == (False, None)
    assert outcome.reason is not None
    assert outcome.reason == ("unsupported aggregation method p(95) on metric of type counter; "
                              "supported are: count, rate")


def test_evaluate_all_keeps_order(store: MetricStore) -> None:
    ths = parse_thresholds({"http_reqs": ["count>1", "count<1"]})
    assert [o.ok for o in evaluate_all(ths, store, 1.0)] == [True, False]


# -- Outcome.line ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("metric", "expr", "line"), [
    ("http_req_duration{name:create_vm}", "p(95)<500",
     "http_req_duration{name:create_vm} p(95)<500 -> 600.0 ms  FAILED"),
    ("http_req_duration", "avg<200", "http_req_duration avg<200 -> 157.5 ms  ok"),
    ("http_req_duration", "count>1",
     "http_req_duration count>1 -> n/a  FAILED (unsupported aggregation method count on metric "
     "of type trend; supported are: avg, min, max, med, p(N))"),
    ("http_req_failed", "rate<0.01", "http_req_failed rate<0.01 -> 0.02 (2%)  FAILED"),
    ("http_reqs", "count>1", "http_reqs count>1 -> 100  ok"),
    ("http_reqs", "rate>1", "http_reqs rate>1 -> 33.33/s  ok"),
    ("vus", "value>1", "vus value>1 -> 7  ok"),
    ("checks", "rate>0.99", "checks rate>0.99 -> n/a  FAILED (no samples)"),
    ("nope", "count>1",
     "nope count>1 -> n/a  FAILED (metric 'nope' was never recorded; metrics that exist: "
     "checks, http_req_duration, http_req_failed, http_reqs, iterations, vm_creation_time, "
     "vus)"),
])
def test_outcome_line(store: MetricStore, metric: str, expr: str, line: str) -> None:
    assert evaluate(th(metric, expr), store, 3.0).line() == line


def test_outcome_line_formats_trend_and_rate_values() -> None:
    t = Threshold("http_req_duration", "p(95)<500", "p(95)", "<", 500.0)
    assert Outcome(t, 612.44, False, "ms", kind="trend").line() == (
        "http_req_duration p(95)<500 -> 612.4 ms  FAILED")
    r = Threshold("http_req_failed", "rate<0.01", "rate", "<", 0.01)
    assert Outcome(r, 0.012345, False, "", kind="rate").line() == (
        "http_req_failed rate<0.01 -> 0.0123 (1.23%)  FAILED")
    assert Outcome(r, 0.0, True, "", kind="rate").line() == (
        "http_req_failed rate<0.01 -> 0 (0%)  ok")


def test_outcome_round_trips_through_json(store: MetricStore) -> None:
    for outcome in evaluate_all(parse_thresholds({"http_reqs": ["rate>1"],
                                                  "nope": ["count>1"]}), store, 3.0):
        data = json.loads(json.dumps(outcome.to_dict()))
        assert {"metric", "expression", "observed", "ok"} <= data.keys()
        assert Outcome.from_dict(data) == outcome
