"""A value as error messages show it: bounded in length and never raising.

Marker and option values can be anything (a list nested 100,000 deep, ``10**400``, a
megabyte string); the message that names them must still be built. ``show`` gives the
value's text when it is short and a bounded summary otherwise, without recursing past a few
levels or converting huge integers to decimal.
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = ["show"]

_LIMIT = 60
_MAX_INT_BITS = 200  # ~60 decimal digits: longer integers are summarised, never converted


class _Repr(reprlib.Repr):
    """reprlib's bounded repr, with integers that are never converted in full."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxother = self.maxlong = limit
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = self.maxfrozenset = 6

    def repr_int(self, x: int, level: int) -> str:
        return _int_text(x)


def _int_text(x: int) -> str:
    if x.bit_length() <= _MAX_INT_BITS:
        return str(x)
    digits = int(x.bit_length() * 0.30103) + 1
    return f"{'-' if x < 0 else ''}<an integer of about {digits} digits>"


def show(value: object, limit: int = _LIMIT) -> str:
    """``value`` for a message: a short ``str`` as it is, a long one cut with its length, numbers,
    bools and None as ``str()`` gives them, containers and other objects as a bounded repr."""
    try:
        if isinstance(value, str):
            if len(value) <= limit:
                return value
            return f"{value[:limit]}... ({len(value)} characters)"
        if isinstance(value, bool) or value is None:
            return str(value)
        if isinstance(value, int):
            return _int_text(value)
        if isinstance(value, float):
            return repr(value)
        text = _Repr(limit).repr(value)
        return text if len(text) <= 2 * limit else f"{text[:2 * limit]}..."
    except Exception:  # a hostile __repr__ or something reprlib cannot bound
        return f"<{_type_name(value)}>"


def _type_name(value: Any) -> str:
    try:
        return type(value).__name__
    except Exception:  # pragma: no cover - type() of anything has a name
        return "object"
