"""parse_duration under any input: a duration within the limit or its own ConfigError."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pytest_novaload.errors import ConfigError
from pytest_novaload.units import MAX_DURATION, format_duration, parse_duration
from tests.unit.hostile import VALUES, deep_list

_PARTS = st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["h", "m", "s", "ms", "us",
                                                                       "ns"])),
                  min_size=1, max_size=6)
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def _check_error(e: ConfigError, what: str) -> None:
    message = str(e)
    assert message.startswith(f"{what} '")
    assert ("expected a duration such as '500ms'" in message
            or "longer than the limit of 168h0m0s (7 days)" in message)
    assert len(message) < 600


@settings(max_examples=2000, deadline=None)
@given(VALUES)
@example(10**400)
@example(1e306)
@example(math.nan)
@example(-math.inf)
@example(["1s"])
@example("9" * 100_000)
@example(True)
def test_any_value_is_a_duration_or_a_config_error(value: object) -> None:
    try:
        seconds = parse_duration(value, what="stages[0] duration")  # type: ignore[arg-type]
    except ConfigError as e:
        _check_error(e, "stages[0] duration")
    else:
        assert type(seconds) is float
        assert 0.0 <= seconds <= MAX_DURATION
        assert math.copysign(1.0, seconds) == 1.0  # never -0.0


@settings(max_examples=2000, deadline=None)
@given(_PARTS)
def test_k6_strings_give_their_sum(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    total = sum(n * _SECONDS[unit] for n, unit in parts)
    if total > MAX_DURATION:
        with pytest.raises(ConfigError, match="longer than the limit"):
            parse_duration(text)
    else:
        assert parse_duration(text) == pytest.approx(total, rel=1e-9, abs=1e-12)


@settings(max_examples=2000, deadline=None)
@given(st.floats(0, MAX_DURATION))
def test_format_then_parse_round_trips_up_to_the_limit(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-3, abs=1e-6)
    assert parse_duration(seconds) == seconds


@settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=int(MAX_DURATION) + 1) | st.floats(MAX_DURATION, exclude_min=True,
                                                                 allow_infinity=False))
def test_over_the_limit_names_it_and_the_reason(value: float) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value, what="duration")
    message = str(info.value)
    assert re.match(r"duration '[^']+': longer than the limit of 168h0m0s \(7 days\): no load "
                    r"test runs that long \(CI jobs stop first\)", message)
    assert "e.g. '30m'" in message


def test_limit_itself_is_accepted_and_can_be_tightened() -> None:
    assert parse_duration("168h") == MAX_DURATION
    assert parse_duration(604800) == MAX_DURATION
    with pytest.raises(ConfigError, match=r"'2m': longer than the limit of 1m0s; write a"):
        parse_duration("2m", max_seconds=60)


@pytest.mark.parametrize(("value", "shown"), [
    (10**400, "<an integer of about 401 digits>"), ("9" * 100, "9" * 60 + "... (100 characters)"),
    (1e306, "1e+306"), ("1e400", "1e400"),
])
def test_huge_values_are_named_in_short(value: object, shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value)  # type: ignore[arg-type]
    assert str(info.value).startswith(f"duration '{shown}': ")


@pytest.mark.parametrize(("value", "kind"), [
    (["1s"], "a list"), (None, "None"), (True, "a bool"), ({"s": 1}, "a dict"), (b"1s", "a bytes"),
    (deep_list(100_000), "a list"),
])
def test_wrong_types_say_what_they_got(value: object, kind: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value)  # type: ignore[arg-type]
    assert str(info.value).endswith(f"or a number of seconds, not {kind}")


@pytest.mark.parametrize("value", ["١٢s", "１s", "1_0s", "1_0", "٣"])
def test_only_ascii_digits(value: str) -> None:
    with pytest.raises(ConfigError, match="expected a duration"):
        parse_duration(value)
