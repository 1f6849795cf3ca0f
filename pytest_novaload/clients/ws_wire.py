"""RFC 6455 pieces of the fast WebSocket transport (`ws_fast`), pure: no I/O.

The opening handshake (request bytes, response checks raising websockets' own handshake
exceptions so that failures read the same on both transports), client frame heads, and the
masking keys. Client frames must be masked with an unpredictable key (RFC 6455 10.3);
``secrets.token_bytes(4)`` per frame is one getrandom syscall per message, so keys are sliced
from a pool of ``os.urandom(4096)``: one syscall per 1024 frames, still unpredictable.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Callable, Mapping, Sequence

from websockets.datastructures import Headers
from websockets.exceptions import (
    InvalidHeader,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidStatus,
    InvalidUpgrade,
    NegotiationError,
)
from websockets.http11 import Response

__all__ = ["MAX_HEAD", "accept_key", "apply_mask", "check_response", "frame_head",
           "handshake_request", "new_key", "take_mask"]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: a handshake response head longer than this is refused (websockets' own limit is 8 KiB
#: per line and 128 headers).
MAX_HEAD = 64 * 1024
_POOL_SIZE = 4096


def _apply_mask_py(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask`` (the fallback of the C speedup)."""
    n = len(data)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def _speedup() -> Callable[[bytes, bytes], bytes]:
    """websockets' C extension (~20x the pure XOR on large payloads), else the fallback."""
    try:
        from websockets.speedups import apply_mask as c_apply_mask
    except ImportError:  # pragma: no cover - the wheel ships it; a source build may not
        return _apply_mask_py
    return c_apply_mask


apply_mask = _speedup()

_masks = os.urandom(_POOL_SIZE)
_pos = 0


def take_mask() -> bytes:
    """The next 4 unpredictable bytes of the pool (refilled from os.urandom when used up)."""
    global _masks, _pos
    i = _pos
    if i >= _POOL_SIZE:
        _masks = os.urandom(_POOL_SIZE)
        i = 0
    _pos = i + 4
    return _masks[i:i + 4]


def _after_fork() -> None:
    global _pos
    _pos = _POOL_SIZE  # a forked child must not reuse its parent's keys


os.register_at_fork(after_in_child=_after_fork)

#: the heads of final masked frames with payloads under 126 bytes, by opcode then length.
_SMALL = {op: tuple(bytes((0x80 | op, 0x80 | n)) for n in range(126)) for op in (1, 2, 8, 9, 10)}


def frame_head(opcode: int, n: int) -> bytes:
    """The head of a final, masked client frame of ``n`` payload bytes (mask key not included)."""
    if n < 126:
        return _SMALL[opcode][n]
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    return struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def _safe(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"ws header {what}: line breaks are not allowed in a header")
    return value


def handshake_request(host: str, port: int, secure: bool, resource: str, key: str,
                      headers: Mapping[str, str] | Sequence[tuple[str, str]] | None,
                      subprotocols: Sequence[str] | None) -> bytes:
    """The HTTP/1.1 upgrade request; no extension is offered (no permessage-deflate)."""
    shown_host = f"[{host}]" if ":" in host else host
    if port != (443 if secure else 80):
        shown_host = f"{shown_host}:{port}"
    lines = [f"GET {_safe(resource, 'path')} HTTP/1.1", f"Host: {shown_host}",
             "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
             "Sec-WebSocket-Version: 13"]
    if subprotocols:
        lines.append(f"Sec-WebSocket-Protocol: {_safe(', '.join(subprotocols), 'protocol')}")
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in items:
        lines.append(f"{_safe(name, repr(name))}: {_safe(str(value), repr(name))}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _tokens(value: str) -> list[str]:
    return [t.strip().lower() for t in value.split(",") if t.strip()]


def check_response(head: bytes, key: str, subprotocols: Sequence[str] | None) -> str | None:
    """Check the server's response head (up to the blank line); return the subprotocol.

    Raises websockets' exceptions: InvalidMessage (not HTTP), InvalidStatus (not 101),
    InvalidUpgrade, InvalidHeader(Value) (a bad accept key), NegotiationError (an extension
    negotiated though none was offered, or a subprotocol that was not offered).
    """
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise InvalidMessage(f"did not receive a valid HTTP response: {lines[0][:100]!r}")
    status = int(parts[1])
    headers = Headers()
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise InvalidMessage(f"invalid HTTP header line: {line[:100]!r}")
        headers[name.strip()] = value.strip()
    if status != 101:
        raise InvalidStatus(Response(status, parts[2] if len(parts) > 2 else "", headers))
    connection = [t for v in headers.get_all("Connection") for t in _tokens(v)]
    if "upgrade" not in connection:
        raise InvalidUpgrade("Connection", ", ".join(headers.get_all("Connection")))
    upgrade = [t for v in headers.get_all("Upgrade") for t in _tokens(v)]
    if upgrade != ["websocket"]:
        raise InvalidUpgrade("Upgrade", ", ".join(headers.get_all("Upgrade")))
    accepts = headers.get_all("Sec-WebSocket-Accept")
    if not accepts:
        raise InvalidHeader("Sec-WebSocket-Accept")
    if len(accepts) > 1 or accepts[0] != accept_key(key):
        raise InvalidHeaderValue("Sec-WebSocket-Accept", ", ".join(accepts))
    extensions = headers.get_all("Sec-WebSocket-Extensions")
    if extensions:
        raise NegotiationError(f"no extensions supported by the fast transport; the server "
                               f"negotiated {', '.join(extensions)[:200]}")
    protocols = [t.strip() for v in headers.get_all("Sec-WebSocket-Protocol")
                 for t in v.split(",") if t.strip()]
    if not protocols:
        return None
    if len(protocols) > 1 or not subprotocols or protocols[0] not in subprotocols:
        raise NegotiationError(f"unsupported subprotocol: {', '.join(protocols)[:200]}")
    return protocols[0]
