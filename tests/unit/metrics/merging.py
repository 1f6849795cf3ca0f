"""Shared by the digest and store tests: merge three parts in both groupings."""

from __future__ import annotations

from typing import Protocol, TypeVar


class Mergeable(Protocol):
    def copy(self: M) -> M: ...
    def merge(self: M, other: M, /) -> None: ...


M = TypeVar("M", bound=Mergeable)


def both_groupings(a: M, b: M, c: M) -> tuple[M, M]:
    """``(a + b) + c`` and ``a + (b + c)``, built from copies (the parts are left alone)."""
    left = a.copy()
    left.merge(b)
    left.merge(c)
    bc = b.copy()
    bc.merge(c)
    right = a.copy()
    right.merge(bc)
    return left, right
