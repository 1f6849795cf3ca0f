"""The threshold parsers under any input: thresholds, or their own error; never another one."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pytest_novaload.errors import ConfigError, ThresholdSyntaxError
from pytest_novaload.thresholds import (
    AGGREGATIONS,
    OPERATORS,
    parse_expression,
    parse_thresholds,
)
from pytest_novaload.thresholds.parser import MAX_EXPRESSION, MAX_PROBLEMS
from tests.unit.hostile import VALUES, deep_list

_TEXT = st.text(max_size=80) | st.text("p() <>=!.0123456789e+-avgminrate", max_size=60)
_NUMBERS = (st.floats(allow_nan=False, allow_infinity=False).map(repr)
            | st.integers(-(10**30), 10**30).map(str))
_PERCENTILES = st.integers(1, 100_000).map(lambda k: f"p({k / 1000!r})")


@settings(max_examples=2000, deadline=None)
@given(st.one_of(_TEXT, VALUES))
@example("p(" + " " * 100_000)
@example("avg<" + "9" * 400)
@example("avg<1e400")
@example("p(" + "9" * 400 + ")<1")
@example(10**400)
def test_any_expression_parses_or_is_a_syntax_error(expr: object) -> None:
    try:
        agg, op, limit = parse_expression(expr, metric="m")  # type: ignore[arg-type]
    except ThresholdSyntaxError as e:
        message = str(e)
        assert message.startswith("threshold ") and " on m: " in message
        assert "expected 'agg op number'" in message
        assert len(message) < 1000
    else:
        assert agg in AGGREGATIONS or agg.startswith("p(")
        assert op in OPERATORS and math.isfinite(limit)


@settings(max_examples=2000, deadline=None)
@given(agg=st.sampled_from(AGGREGATIONS) | _PERCENTILES, op=st.sampled_from(OPERATORS),
       number=_NUMBERS, pad=st.sampled_from(["", " ", "  "]))
def test_valid_expressions_parse_to_their_parts(agg: str, op: str, number: str, pad: str) -> None:
    got_agg, got_op, limit = parse_expression(f"{pad}{agg}{pad}{op}{pad}{number}{pad}")
    assert got_op == op and limit == float(number)
    if not agg.startswith("p("):
        assert got_agg == agg


@settings(max_examples=2000, deadline=None)
@given(st.one_of(VALUES, st.dictionaries(
    st.text(max_size=20) | st.integers() | st.floats() | st.none() | st.booleans()
    | st.tuples(st.integers(), st.text(max_size=3)) | st.integers(500, 2000).map(lambda n: "k" * n),
    VALUES, max_size=4)))
@example({"http_req_duration": [{"threshold": "p(95)<1", "delay_abort_eval": 10**400}]})
@example({"x" * 100_000: "avg<1"})
def test_any_thresholds_value_parses_or_is_a_config_error(spec: object) -> None:
    try:
        out = parse_thresholds(spec)  # type: ignore[arg-type]
    except ConfigError as e:
        assert e.problems and len(e.problems) <= MAX_PROBLEMS + 1
        assert all(len(p) < 1500 for p in e.problems)
    else:
        assert isinstance(out, list)


@pytest.mark.parametrize("value", [
    deep_list(100_000), {"http_req_duration": deep_list(100_000)},
    {"http_req_duration": [{"threshold": "p(95)<1", "abort_on_fail": deep_list(50_000)}]},
    {"http_req_duration": [{"threshold": deep_list(50_000)}]},
    {"m": [{"threshold": "p(95)<1", deep_list(3)[0] and (1, (2, (3,))): 1}]},
])
def test_deep_values_are_config_errors(value: object) -> None:
    """Here, not as Hypothesis examples: Hypothesis itself cannot print values this deep."""
    with pytest.raises(ConfigError) as info:
        if isinstance(value, list):
            parse_expression(value)  # type: ignore[arg-type]
        parse_thresholds(value)  # type: ignore[arg-type]
    assert len(str(info.value)) < 1500


def test_expression_length_is_bounded_with_the_reason() -> None:
    with pytest.raises(ThresholdSyntaxError, match=rf"201 characters long, more than a threshold "
                                                   rf"ever is \(at most {MAX_EXPRESSION}\)"):
        parse_expression("avg<1" + " " * 196)
    assert parse_expression("avg<1" + " " * 195) == ("avg", "<", 1.0)


def test_infinite_limit_is_out_of_range() -> None:
    with pytest.raises(ThresholdSyntaxError, match=r"the number '1e400' after 'avg<' is out of "
                                                   r"range"):
        parse_expression("avg<1e400")


def test_bad_keys_and_values_are_named_in_short() -> None:
    with pytest.raises(ConfigError) as info:
        parse_thresholds({("a", "b"): "avg<1", 5: "avg<1", "k" * 600: "avg<1",
                          "ok": deep_list(100_000), "fine": [10**400]})
    problems = info.value.problems
    assert len(problems) == 5
    assert problems[0].startswith("thresholds key ('a', 'b'): expected a metric key")
    assert problems[1].startswith("thresholds key 5: expected a metric key")
    assert problems[2].startswith("thresholds key '" + "k" * 60 + "... (600 characters)'")
    assert problems[3].startswith("thresholds['ok']: entry [[[[...]]]]: expected an expression")
    assert problems[4].startswith("thresholds['fine']: entry <an integer of about 401 digits>")


def test_many_problems_are_capped() -> None:
    with pytest.raises(ConfigError) as info:
        parse_thresholds({f"m{i}": "bad" for i in range(500)})
    problems = info.value.problems
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == f"... and {500 - MAX_PROBLEMS} more problem(s) like these"
