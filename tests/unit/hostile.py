"""Hypothesis strategies for hostile marker values: any Python value a user can write."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

HUGE_INTS = (st.sampled_from([10**400, -(10**400), 2**63, 2**64, -1, 0, 10**19])
             | st.integers(4300, 6000).map(lambda n: 10**n))  # repr() of 10**5000 raises
SPECIAL_FLOATS = st.sampled_from([math.inf, -math.inf, math.nan, -0.0, 1e306, 5e-324, 1e308])
DURATION_TEXT = st.from_regex(r"\s?[+-]?[0-9]{0,400}(\.[0-9]*)?(e[+-]?[0-9]{1,4})?"
                              r"(ms|us|µs|ns|h|m|s|d|x)?([0-9]{1,3}(ms|s|m|h))?\s?",
                              fullmatch=True)
LONG_TEXT = st.integers(65, 20_000).map(lambda n: "9" * n) | st.integers(65, 5000).map(
    lambda n: "1h" * n)


def deep_list(depth: int) -> list[Any]:
    """``[[[...]]]`` nested ``depth`` deep, built without recursion."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


SCALARS = (st.none() | st.booleans() | st.integers() | HUGE_INTS | st.floats() | SPECIAL_FLOATS
           | st.text(max_size=30) | DURATION_TEXT | st.binary(max_size=8) | LONG_TEXT
           | st.sampled_from([50, 1_500]).map(deep_list))  # 1500: past the recursion limit
VALUES = st.recursive(
    SCALARS,
    lambda children: (st.lists(children, max_size=4) | st.tuples(children, children)
                      | st.dictionaries(st.text(max_size=10) | st.integers(), children,
                                        max_size=4)),
    max_leaves=12,
)
"""Any value: scalars of every kind, huge and special numbers, long and deep ones, containers."""
