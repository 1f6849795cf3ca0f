"""HTTP/1.1 response parsing for the fast transport: httptools (llhttp) when importable,
else `PyResponseParser`, a pure-Python parser with the same callbacks; both handle
Content-Length, chunked and read-until-close bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

_httptools: Any
try:
    import httptools as _httptools_module

    _httptools = _httptools_module
except ImportError:  # pragma: no cover - depends on the environment
    _httptools = None

MAX_HEAD = 256 * 1024  # a response head larger than this is a protocol error


class ParserError(Exception):
    """Malformed HTTP response seen by the pure-Python parser."""


class ResponseParser(Protocol):
    """What the connection needs from a parser (httptools.HttpResponseParser's shape)."""

    def feed_data(self, data: bytes) -> None: ...
    def get_status_code(self) -> int: ...
    def get_http_version(self) -> str: ...
    def should_keep_alive(self) -> bool: ...


if _httptools is not None:
    PARSER_ERRORS: tuple[type[Exception], ...] = (_httptools.HttpParserError, ParserError)
else:  # pragma: no cover - depends on the environment
    PARSER_ERRORS = (ParserError,)


# States of the pure-Python parser.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_EOF = range(7)


class PyResponseParser:
    """Pure-Python response parser with httptools' callbacks: used when httptools is absent."""

    def __init__(self, protocol: Any) -> None:
        # Optional callbacks, as in httptools: without on_header the head is not split into
        # lines at all (the connection parses it lazily), only the framing fields are read.
        self._on_status: Callable[[bytes], None] | None = getattr(protocol, "on_status", None)
        self._on_header: Callable[[bytes, bytes], None] | None = getattr(
            protocol, "on_header", None)
        self._on_headers_complete: Callable[[], None] = protocol.on_headers_complete
        self._on_body: Callable[[bytes], None] = protocol.on_body
        self._on_message_complete: Callable[[], None] = protocol.on_message_complete
        self._buf = bytearray()
        self._state = _HEAD
        self._remaining = 0
        self._status = 0
        self._version = "1.1"
        self._keep_alive = True

    def get_status_code(self) -> int:
        return self._status

    def get_http_version(self) -> str:
        return self._version

    def should_keep_alive(self) -> bool:
        return self._keep_alive

    def feed_data(self, data: bytes) -> None:
        if self._state == _HEAD and not self._buf:
            # The common case: a whole small response in one packet, parsed without copies.
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                self._parse_head(data[:end])
                data = data[end + 4:]
                if not data:
                    return
        if self._state == _LENGTH and not self._buf and len(data) <= self._remaining:
            # The common large-body case: hand the packet over without copying it.
            self._remaining -= len(data)
            if data:
                self._on_body(bytes(data))
            if self._remaining == 0:
                self._complete()
            return
        self._buf += data
        buf = self._buf
        while True:
            state = self._state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        raise ParserError("response head too large")
                    return
                head = bytes(buf[:end])
                del buf[: end + 4]
                self._parse_head(head)
            elif state == _LENGTH:
                if not buf:
                    return
                if self._take_body(buf):
                    self._complete()
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > 1024:
                        raise ParserError("chunk size line too long")
                    return
                line = bytes(buf[:end]).split(b";", 1)[0].strip()
                del buf[: end + 2]
                try:
                    size = int(line, 16)
                except ValueError:
                    raise ParserError(f"invalid chunk size {line!r}") from None
                if size < 0:
                    raise ParserError(f"invalid chunk size {line!r}")
                self._remaining = size
                self._state = _CHUNK_DATA if size else _TRAILERS
            elif state == _CHUNK_DATA:
                if not buf:
                    return
                if self._take_body(buf):
                    self._state = _CHUNK_END
            elif state == _CHUNK_END:
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    raise ParserError("missing CRLF after chunk data")
                del buf[:2]
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                del buf[: end + 2]
                if end == 0:  # the empty line that ends the trailers
                    self._complete()
            else:  # _UNTIL_EOF: everything is body until the connection closes
                if buf:
                    self._on_body(bytes(buf))
                    buf.clear()
                return

    def _take_body(self, buf: bytearray) -> bool:
        """Pass up to ``_remaining`` body bytes on; True when the body (or chunk) is complete."""
        n = min(len(buf), self._remaining)
        self._on_body(bytes(buf[:n]))
        del buf[:n]
        self._remaining -= n
        return self._remaining == 0

    def _parse_head(self, head: bytes) -> None:
        first, _, fields = head.partition(b"\r\n")
        version, _, rest = first.partition(b" ")
        if not version.startswith(b"HTTP/") or len(rest) < 3 or not rest[:3].isdigit():
            raise ParserError(f"invalid status line {first[:100]!r}")
        self._version = "1.1" if version == b"HTTP/1.1" else version[5:].decode("ascii",
                                                                                "replace")
        status = self._status = int(rest[:3])
        if self._on_status is not None:
            self._on_status(rest[4:])
        length: int | None = None
        chunked = False
        connection = b""
        on_header = self._on_header
        if on_header is None:
            lower = b"\r\n" + fields.lower()
            value = _field(lower, b"\r\ncontent-length:")
            if value is not None:
                if not value.isdigit() or lower.count(b"\r\ncontent-length:") > 1:
                    raise ParserError(f"invalid Content-Length {value[:40]!r}")
                length = int(value)
            value = _field(lower, b"\r\ntransfer-encoding:")
            chunked = value is not None and value.endswith(b"chunked")
            connection = _field(lower, b"\r\nconnection:") or b""
        else:
            for line in fields.split(b"\r\n") if fields else ():
                name, sep, value = line.partition(b":")
                if not sep or not name or name != name.strip():
                    raise ParserError(f"invalid header line {line[:100]!r}")
                value = value.strip()
                lname = name.lower()
                if lname == b"content-length":
                    if not value.isdigit() or (length is not None and int(value) != length):
                        raise ParserError(f"invalid Content-Length {value[:40]!r}")
                    length = int(value)
                elif lname == b"transfer-encoding":
                    chunked = value.lower().endswith(b"chunked")
                elif lname == b"connection":
                    connection = value.lower()
                on_header(name, value)
        if self._version == "1.1":
            self._keep_alive = b"close" not in connection
        else:
            self._keep_alive = b"keep-alive" in connection
        self._on_headers_complete()
        if 100 <= status < 200 or status in (204, 304):
            self._complete()
        elif chunked:
            self._state = _CHUNK_SIZE
        elif length is not None:
            self._remaining = length
            if length == 0:
                self._complete()
            else:
                self._state = _LENGTH
        else:
            self._keep_alive = False
            self._state = _UNTIL_EOF

    def _complete(self) -> None:
        self._state = _HEAD
        self._on_message_complete()


def _field(lower_head: bytes, key: bytes) -> bytes | None:
    """The stripped value of the first header ``key`` (b"\\r\\nname:") in a lowercased head."""
    at = lower_head.find(key)
    if at < 0:
        return None
    end = lower_head.find(b"\r\n", at + 2)
    return lower_head[at + len(key): end if end >= 0 else None].strip()


def make_parser(protocol: Any, *, pure: bool = False) -> ResponseParser:
    """httptools' parser when importable (and not ``pure``), else the pure-Python one."""
    if _httptools is not None and not pure:
        parser: ResponseParser = _httptools.HttpResponseParser(protocol)
        return parser
    return PyResponseParser(protocol)
