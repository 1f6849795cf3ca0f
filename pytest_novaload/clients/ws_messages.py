"""WebSocket messages as ``vu.ws`` handles them: what ``send`` accepts, and how ``request``
decodes and matches replies."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from pytest_novaload.errors import ConfigError

__all__ = ["Match", "Message", "decode", "encode", "matcher"]

Message: TypeAlias = str | bytes
Match: TypeAlias = Callable[[Any], object] | Mapping[str, Any] | None


# What a JSON text can start with (json.loads also takes NaN/Infinity and leading blanks;
# bytes may also start with a UTF-8/16/32 byte order mark or a UTF-16/32 zero byte).
_JSON_START = frozenset('{["-0123456789tfnNI \t\r\n')
_JSON_START_BYTES = frozenset(ord(c) for c in _JSON_START) | {0x00, 0xEF, 0xFE, 0xFF}  # BOMs


def decode(message: Message) -> Any:
    """JSON-decode a message when it is JSON; otherwise return it unchanged.

    The first character is checked before parsing: raising and catching JSONDecodeError for
    an obviously non-JSON reply costs ~2.6 us, as much as the rest of ``request()``."""
    if not message:
        return message
    first = message[0]
    if first not in (_JSON_START_BYTES if isinstance(first, int) else _JSON_START):
        return message
    try:
        return json.loads(message)
    except ValueError:
        return message


def _any(_msg: Any) -> bool:
    return True


def matcher(match: Match) -> Callable[[Any], bool]:
    if match is None:
        return _any
    if isinstance(match, Mapping):
        items = tuple(match.items())

        def by_items(msg: Any) -> bool:
            return isinstance(msg, dict) and all(
                k in msg and msg[k] == v for k, v in items)
        return by_items
    if callable(match):
        predicate = match

        def by_call(msg: Any) -> bool:
            try:
                return bool(predicate(msg))
            except (KeyError, IndexError, TypeError):  # a message of another shape
                return False
        return by_call
    raise ConfigError(f"ws request match={match!r}: expected a callable taking the decoded "
                      f"message, a dict of key/values the reply must contain, or None")


def encode(message: object) -> Message:
    if isinstance(message, str | bytes):
        return message
    if isinstance(message, bytearray | memoryview):
        return bytes(message)
    if isinstance(message, dict | list):
        return json.dumps(message, separators=(",", ":"))
    raise TypeError(f"ws send: cannot send a {type(message).__name__}; expected str, bytes, "
                    f"or a dict/list to JSON-encode")
