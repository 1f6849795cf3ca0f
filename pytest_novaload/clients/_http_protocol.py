"""The fast HTTP/1.1 transport: one asyncio.Protocol per keep-alive connection.

A connection carries one request at a time. The response is parsed by httptools (llhttp)
when it is importable, else by `PyResponseParser`, a pure-Python parser with the same
callbacks; both handle Content-Length, chunked and read-until-close bodies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, cast

from pytest_novaload.clients._http_response import parse_head

_httptools: Any
try:
    import httptools as _httptools_module

    _httptools = _httptools_module
except ImportError:  # pragma: no cover - depends on the environment
    _httptools = None

_MAX_HEAD = 256 * 1024  # a response head larger than this is a protocol error


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
                    if len(buf) > _MAX_HEAD:
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


class Failure:
    """Why an exchange failed: an httpx exception name and a message (never raised)."""

    __slots__ = ("kind", "message", "stale")

    def __init__(self, kind: str, message: str, *, stale: bool = False) -> None:
        self.kind = kind
        self.message = message
        # True: the peer closed before one response byte came back, as a server does with an
        # idle keep-alive socket; a reused connection may then be retried once.
        self.stale = stale

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}" if self.message else self.kind


class Connection(asyncio.Protocol):
    """One keep-alive connection; `exchange` sends a request and resolves when it ends."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pure_parser: bool) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.requests = 0  # requests started on this connection (> 0: a reused connection)
        self._pure = pure_parser
        self._parser = make_parser(self, pure=pure_parser)
        self._waiter: asyncio.Future[Failure | None] | None = None
        self._head_request = False
        self._reset_parser = False
        self._headers_done = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._deadline = 0.0
        # Parts of the response being read: the raw bytes up to the end of the head (parsed
        # lazily by the Response) and the body chunks.
        self.status = 0
        self.head_chunks: list[bytes] = []
        self.body: list[bytes] = []
        self.received = 0
        self.keep_alive = True

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self._waiter is None:
            return  # bytes nobody asked for (e.g. after a HEAD): ignored, as llhttp would reject
        if not self._headers_done:
            self.head_chunks.append(data)
        try:
            self._parser.feed_data(data)
        except PARSER_ERRORS as exc:
            self._fail(Failure("RemoteProtocolError", str(exc) or type(exc).__name__))
            self.abort()
            return
        if self._reset_parser:
            self._reset_parser = False
            self._parser = make_parser(self, pure=self._pure)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        waiter = self._waiter
        if waiter is None:
            return
        if self._headers_done and self._reads_until_eof():
            self._finish()
        elif exc is not None:
            self._fail(Failure("ReadError", str(exc) or type(exc).__name__,
                               stale=self.received == 0))
        elif self.received == 0:
            self._fail(Failure("RemoteProtocolError",
                               "Server disconnected without sending a response.", stale=True))
        else:
            self._fail(Failure("RemoteProtocolError",
                               "peer closed connection without sending complete message body"))

    # -- parser callbacks ----------------------------------------------------------------
    def on_headers_complete(self) -> None:
        self._headers_done = True
        if self._head_request:
            # llhttp cannot be told that a HEAD response has no body: end the message here
            # and give the next request a fresh parser.
            self._reset_parser = True
            self._finish()

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # an interim response: the real one follows
            self._headers_done = False  # parse_head skips the interim head later
            return
        self._finish()

    # -- used by the client ---------------------------------------------------------------
    def exchange(self, request: bytes, head: bool,
                 deadline: float) -> asyncio.Future[Failure | None]:
        """Send ``request``; the future resolves to None (response read) or a Failure."""
        waiter = self.loop.create_future()
        self._waiter = waiter
        self._head_request = head
        self._headers_done = False
        self.head_chunks = []
        self.body = []
        self.received = 0
        self.requests += 1
        self._deadline = deadline
        if self._timer is None or self._timer_when > deadline:
            self._arm(deadline)
        transport = self.transport
        if transport is None or self.closed:  # closed: connection_lost or our close()
            self._fail(Failure("RemoteProtocolError",
                               "Server disconnected without sending a response.", stale=True))
            return waiter
        transport.write(request)
        return waiter

    def abort(self) -> None:
        """Close at once (timeouts, cancellation, protocol errors): the state is unknown."""
        self.closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()

    # -- internals --------------------------------------------------------------------------
    def _finish(self) -> None:
        waiter = self._waiter
        if waiter is None:
            return
        self._waiter = None
        parser = self._parser
        self.status = parser.get_status_code()
        self.keep_alive = not self.closed and parser.should_keep_alive()
        waiter.set_result(None)

    def _fail(self, failure: Failure) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set_result(failure)

    def _reads_until_eof(self) -> bool:
        """A body delimited by the end of the connection (no Content-Length, not chunked)."""
        if self._head_request:
            return False
        status = self._parser.get_status_code()
        if status < 200 or status in (204, 304):
            return False
        for name, value in parse_head(b"".join(self.head_chunks))[2]:
            lname = name.lower()
            if lname == b"content-length" or (
                lname == b"transfer-encoding" and value.lower().endswith(b"chunked")
            ):
                return False
        return True

    def _arm(self, when: float) -> None:
        # One timer per connection, re-armed lazily: a request in flight costs no heap push
        # unless its deadline is earlier than the pending timer.
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._on_timer)
        self._timer_when = when

    def _on_timer(self) -> None:
        self._timer = None
        if self._waiter is None:
            return
        if self.loop.time() + 1e-4 >= self._deadline:
            self._fail(Failure("ReadTimeout", ""))
            self.abort()
        else:
            self._arm(self._deadline)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
