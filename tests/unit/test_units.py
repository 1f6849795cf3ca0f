"""Durations: k6 strings and numbers to seconds, and back."""

from __future__ import annotations

import math

import pytest

from pytest_novaload.errors import ConfigError
from pytest_novaload.units import format_duration, parse_duration


@pytest.mark.parametrize(("value", "seconds"), [
    ("500ms", 0.5),
    ("30s", 30.0),
    ("2m", 120.0),
    ("1h", 3600.0),
    ("1h30m", 5400.0),
    ("1m30.5s", 90.5),
    ("1h2m3s4ms", 3723.004),
    ("10us", 1e-5),
    ("10µs", 1e-5),
    ("250ns", 2.5e-7),
    (".5s", 0.5),
    (" 2m ", 120.0),
    ("30", 30.0),
    ("1.5", 1.5),
    ("0", 0.0),
    (0, 0.0),
    (3, 3.0),
    (1.25, 1.25),
])
def test_parse_duration_accepts_k6_strings_and_seconds(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds, rel=1e-12)
    assert isinstance(parse_duration(value), float)


@pytest.mark.parametrize("value", [
    "1x", "", "   ", "ms", "1 m", "1h 30m", "-5s", "5m-3s", "1h30", "s30", "1e3ms",
    -1, -0.5, math.nan, math.inf, True, False, None, [1], "nan", "inf",
])
def test_parse_duration_rejects_with_the_value_and_the_fix(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value, what="graceful_stop")  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"graceful_stop '{value}': expected a duration such as '500ms'")
    assert "or a number of seconds" in message


def test_parse_duration_default_what() -> None:
    with pytest.raises(ConfigError, match=r"^duration '1x': expected a duration such as "
                                          r"'500ms', '30s', '2m' or '1h30m', or a number of "
                                          r"seconds$"):
        parse_duration("1x")


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"),
    (0.5, "500ms"),
    (0.0015, "1.5ms"),
    (0.00025, "250us"),
    (1.5, "1.5s"),
    (30, "30s"),
    (90, "1m30s"),
    (90.5, "1m30.5s"),
    (120, "2m0s"),
    (5400, "1h30m0s"),
    (7200, "2h0m0s"),
    (0.9999999, "1s"),
    (-30, "-30s"),
])
def test_format_duration_is_compact_go_style(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0, 0.001, 0.25, 1, 59.999, 61, 3599, 3600, 5400.5, 86400])
def test_format_then_parse_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)
