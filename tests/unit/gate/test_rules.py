"""The regression rule grammar, its error messages, and which rules judge a test."""

from __future__ import annotations

import pytest

from pytest_novaload.errors import ConfigError, RuleSyntaxError
from pytest_novaload.gate.rules import (
    DEFAULT_RULES,
    parse_default_rules,
    parse_regressions,
    parse_rule,
    rules_for_test,
)


@pytest.mark.parametrize(("text", "stat", "direction", "relative", "absolute"), [
    ("p(95) +10% >2ms", "p(95)", 1, 0.10, 2.0),
    ("p(95)+10%>2ms", "p(95)", 1, 0.10, 2.0),
    ("  p( 99.9 ) +15 % > 0.5s ", "p(99.9)", 1, 0.15, 500.0),
    ("p(95.0) +10%", "p(95)", 1, 0.10, None),
    ("rate -5%", "rate", -1, 0.05, None),
    ("rate +0.01", "rate", 1, None, 0.01),
    ("p(99) +50ms", "p(99)", 1, None, 50.0),
    ("avg +250us", "avg", 1, None, 0.25),
    ("med +0%", "med", 1, 0.0, None),
    ("count -10%", "count", -1, 0.10, None),
])
def test_parse(text: str, stat: str, direction: int, relative: float | None,
               absolute: float | None) -> None:
    r = parse_rule(text)
    assert (r.stat, r.direction) == (stat, direction)
    assert r.relative == (pytest.approx(relative) if relative is not None else None)
    assert r.absolute == (pytest.approx(absolute) if absolute is not None else None)


def test_allowed_and_direction() -> None:
    r = parse_rule("p(95) +10% >2ms")
    assert r.allowed(2.0) == 2.0          # 10% of 2 ms is 0.2 ms: the 2 ms minimum wins
    assert r.allowed(100.0) == pytest.approx(10.0)
    assert r.worse_by(100.0, 112.0) == pytest.approx(12.0)
    t = parse_rule("rate -5%")
    assert t.worse_by(100.0, 90.0) == pytest.approx(10.0)
    assert t.worse_by(100.0, 110.0) == pytest.approx(-10.0)
    assert parse_rule("rate +0.01").allowed(0.0) == 0.01


@pytest.mark.parametrize(("text", "says", "fix"), [
    ("p95 +10%", "percentiles are written p(N)", "p(95) +10%"),
    ("p(95) 10%", "needs a sign", "p(95) +10%"),
    ("rate 5%", "needs a sign", "rate -5%"),
    ("p(95)<500", "not a limit", "p(95) +10%"),
    ("mean +10%", "unknown statistic 'mean'", "avg +10%"),
    ("p(101) +10%", "out of range", None),
    ("p(95) +2ms >1ms", "goes with a relative change", "p(95) +2ms"),
    ("rate +0.01ms", "is not a time", "rate +0.01"),
    ("p(95) +10% >2parsecs", "unknown unit 'parsecs'", None),
    ("p(95)", "no change", "p(95) +10%"),
    ("", "empty", None),
])
def test_errors_name_value_expectation_and_fix(text: str, says: str, fix: str | None) -> None:
    with pytest.raises(RuleSyntaxError) as exc:
        parse_rule(text, metric="http_req_duration")
    msg = str(exc.value)
    assert f"regression rule '{text}' on http_req_duration" in msg
    assert says in msg and "expected 'stat change [minimum]'" in msg
    if fix:
        assert f"Did you mean '{fix}'?" in msg


def test_not_a_string() -> None:
    with pytest.raises(RuleSyntaxError, match="expected a string"):
        parse_rule(95)  # type: ignore[arg-type]


def test_parse_regressions_reports_every_problem_at_once() -> None:
    rules = parse_regressions({"http_req_duration{ name: x }": "p(95) +5% >1ms",
                               "http_reqs": ["rate -5%"]})
    assert list(rules) == ["http_req_duration{name:x}", "http_reqs"]
    with pytest.raises(ConfigError) as exc:
        parse_regressions({"a": ["p95 +1%", "rate 5%"], "b": 3, "c{": "rate -1%"})
    assert len(exc.value.problems) == 4
    with pytest.raises(ConfigError, match="expected a dict"):
        parse_regressions(["p(95) +1%"])  # type: ignore[arg-type]


def test_default_rules_text() -> None:
    assert set(DEFAULT_RULES.by_kind) == {"trend"}
    assert [r.stat for r in DEFAULT_RULES.by_kind["trend"]] == ["p(95)", "p(99)"]
    assert [r.text for r in DEFAULT_RULES.by_metric["http_reqs"]] == ["rate -10%"]
    d = parse_default_rules("trend=p(95) +5%; db_query_duration{kind:read,name:x}=p(99) +1ms")
    assert list(d.by_metric) == ["db_query_duration{kind:read,name:x}"]
    with pytest.raises(ConfigError) as exc:
        parse_default_rules("trend; http_reqs=rate 5%; x=")
    assert len(exc.value.problems) == 3
    assert "load_regressions entry 'trend'" in exc.value.problems[0]


def test_rules_for_test_default_and_marker() -> None:
    kinds = {"http_req_duration": "trend", "http_req_failed": "rate", "http_reqs": "counter",
             "vm_creation_time": "trend", "iteration_duration": "trend"}
    keys = ["http_req_duration", "http_req_failed", "vm_creation_time", "http_req_duration"]
    got = rules_for_test(kinds, keys)
    assert list(got) == ["http_req_duration", "vm_creation_time", "http_reqs"]
    assert [r.stat for r in got["http_req_duration"]] == ["p(95)", "p(99)"]
    no_http = rules_for_test({"db_query_duration": "trend"}, ["db_query_duration"])
    assert list(no_http) == ["db_query_duration"]
    marker = parse_regressions({"http_req_failed": "rate +0.01"})
    assert list(rules_for_test(kinds, keys, marker)) == ["http_req_failed"]
    assert rules_for_test(kinds, keys, {}) == {}
