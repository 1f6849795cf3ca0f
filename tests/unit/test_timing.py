"""The time factor of real-time tests: read from NOVALOAD_TIME_FACTOR, checked."""

from __future__ import annotations

import pytest

from tests import timing


def test_default_factor_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOVALOAD_TIME_FACTOR", raising=False)
    assert timing._factor() == 1.0


def test_factor_scales_waits_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing, "TIME_FACTOR", 2.5)
    assert timing.scaled(0.2) == pytest.approx(0.5)


@pytest.mark.parametrize("raw", ["fast", "0.5", "0", "-2", "nan"])
def test_a_bad_factor_says_what_is_expected(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("NOVALOAD_TIME_FACTOR", raw)
    with pytest.raises(ValueError, match=rf"NOVALOAD_TIME_FACTOR='{raw}': expected a number >= 1"):
        timing._factor()
