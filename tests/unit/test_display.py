"""show(): any value, a bounded text, never an exception."""

from __future__ import annotations

from hypothesis import given, settings

from pytest_novaload.display import show
from tests.unit.hostile import VALUES, deep_list


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no")


def test_show_examples() -> None:
    assert show("30s") == "30s"
    assert show("x" * 61) == "x" * 60 + "... (61 characters)"
    assert show(10**400) == "<an integer of about 401 digits>"
    assert show(-(10**400)) == "-<an integer of about 401 digits>"
    assert show(12) == "12" and show(True) == "True" and show(None) == "None"
    assert show(float("nan")) == "nan" and show(1e306) == "1e+306"
    assert show([1, "a"]) == "[1, 'a']" and show({"a": [10**400]}) == \
        "{'a': [<an integer of about 401 digits>]}"
    assert show(deep_list(100_000)) == "[[[[...]]]]"
    assert show(Hostile()).startswith("<Hostile")
    assert show(list(range(100))) == "[0, 1, 2, 3, 4, 5, ...]"


@settings(max_examples=500, deadline=None)
@given(VALUES)
def test_show_is_bounded(value: object) -> None:
    assert len(show(value)) <= 200
