"""The fast transport: plain HTTP/1.1 on asyncio.Protocol connections, pooled per host.

Each `Connection` carries one request at a time; `FastTransport` keeps the idle keep-alive
connections of each (host, port), so concurrent requests of one VU each take their own and
give it back once the response is read (PERF-FACTS: ~10x Locust per core).
"""

from __future__ import annotations

import asyncio
import zlib
from time import perf_counter
from typing import TYPE_CHECKING, cast

from pytest_novaload.clients.http.options import DEFAULT_MAX_BODY
from pytest_novaload.clients.http.parser import MAX_HEAD, PARSER_ERRORS, make_parser
from pytest_novaload.clients.http.response import BodyTooLarge, Response, parse_head
from pytest_novaload.clients.http.transport import Failure
from pytest_novaload.metrics.errors import error_tag

if TYPE_CHECKING:
    from pytest_novaload.clients.http.encoding import Request, Target
    from pytest_novaload.clients.http.measure import Expected, HttpMeter

__all__ = ["Connection", "FastTransport"]

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class FastTransport:
    """The lean transport of one client: its pool of idle connections per (host, port)."""

    def __init__(self, meter: HttpMeter, pure_parser: bool, *,
                 max_body: int = DEFAULT_MAX_BODY, discard: bool = False) -> None:
        self._meter = meter
        self._pure_parser = pure_parser
        self._max_body = max_body
        self._discard = discard
        self._idle: dict[tuple[str, int], list[Connection]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def send(self, target: Target, request: Request | None, name: str,
                   expected: Expected, timeout: float) -> Response:
        """One exchange, with one retry of a stale keep-alive socket (idempotent methods)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._idle = {}  # connections of another (finished) loop are unusable
            self._loop = loop
        if request is None:
            data, url = target.simple, target.url
        else:
            data, url = request.wire(), request.url
        method = target.method
        deadline = loop.time() + timeout
        conn: Connection | None = None
        idle = self._idle.get(target.key)
        while idle:
            candidate = idle.pop()
            if not candidate.closed:
                conn = candidate
                break
        retried = False
        while True:
            if conn is None:
                t0 = perf_counter()
                got = await self._connect(loop, target, deadline)
                if isinstance(got, Failure):
                    return self._meter.failure(method, url, name, got, perf_counter() - t0,
                                               0, 0, timeout)
                conn = got
            t0 = perf_counter()
            waiter = conn.exchange(data, target.head, deadline)
            try:
                failure = await waiter
            except asyncio.CancelledError:
                conn.abort()
                raise
            if failure is None:
                break
            conn.abort()
            if (failure.stale and conn.requests > 1 and not retried
                    and method in _IDEMPOTENT):
                retried = True  # the server closed an idle keep-alive socket: try a fresh one
                conn = None
                continue
            return self._meter.failure(method, url, name, failure, perf_counter() - t0,
                                       len(data), conn.received, timeout)
        elapsed = perf_counter() - t0
        body = conn.body
        content = body[0] if len(body) == 1 else b"".join(body)
        status = conn.status
        response = Response(status, None, content, elapsed, method, url, head=conn.head_chunks,
                            max_body=self._max_body)
        if conn.keep_alive and not conn.closed and not self._closed:
            if idle is None:
                self._idle[target.key] = [conn]
            else:
                idle.append(conn)
        else:
            conn.close()
        if content and "accept-encoding" in (
                target.defaults if request is None or request.headers is None
                else request.headers):
            # The user asked for compression: decode now, so that a body over the limit once
            # decoded fails as a too large one does (unasked, ``content`` decodes on demand).
            try:
                response.content  # noqa: B018  (decodes, bounded)
            except BodyTooLarge as exc:
                return self._meter.failure(method, url, name, Failure("BodyTooLarge", str(exc)),
                                           elapsed, len(data), conn.received, timeout)
            except zlib.error:
                pass  # not valid: reading ``content`` raises it in the scenario, as before
        self._meter.exchange(method, url, name, expected, status, elapsed, len(data),
                             conn.received, content)
        return response

    def release(self, key: tuple[str, int], conn: Connection) -> None:
        """Put an open connection in the pool of ``key``: the next request there reuses it
        (the pool follows the loop of the connections it is given)."""
        if conn.loop is not self._loop:
            self._idle = {}
            self._loop = conn.loop
        self._idle.setdefault(key, []).append(conn)

    @property
    def idle(self) -> int:
        """How many open connections wait in the pool."""
        return sum(len(conns) for conns in self._idle.values())

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    async def _connect(self, loop: asyncio.AbstractEventLoop, target: Target,
                       deadline: float) -> Connection | Failure:
        conn = Connection(loop, self._pure_parser, self._max_body, self._discard)
        try:
            async with asyncio.timeout_at(deadline):
                await loop.create_connection(lambda: conn, target.host, target.port)
        except asyncio.CancelledError:
            conn.abort()
            raise
        except OSError as exc:  # TimeoutError included
            if isinstance(exc, TimeoutError):
                conn.abort()
            return Failure.of(error_tag(exc, "connect"))
        return conn


class Connection(asyncio.Protocol):
    """One keep-alive connection; `exchange` sends a request and resolves when it ends.

    A body longer than ``max_body`` bytes fails the exchange as ``BodyTooLarge`` and closes
    the connection at once (nothing more is read or kept: an endless chunked body costs at
    most ``max_body`` bytes); with ``discard`` the body is counted but not kept.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, pure_parser: bool,
                 max_body: int = DEFAULT_MAX_BODY, discard: bool = False) -> None:
        self.loop = loop
        self._max_body = max_body
        self._body_size = 0
        if discard:  # before make_parser: httptools looks the callbacks up once
            self.on_body = self._count_body  # type: ignore[method-assign]
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
            if self.received > MAX_HEAD:  # a head without end: bounded as the body is
                self._fail(Failure("RemoteProtocolError",
                                   f"response head over {MAX_HEAD} bytes"))
                self.abort()
                return
        try:
            self._parser.feed_data(data)
        except PARSER_ERRORS as exc:
            self._fail(Failure.of(error_tag(exc, "protocol")))
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
            tag = error_tag(exc, "read")
            self._fail(Failure(tag.type, tag.message, stale=self.received == 0))
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
        size = self._body_size = self._body_size + len(chunk)
        if size > self._max_body:  # the one comparison per chunk of the body limit
            self._too_large()
            return
        self.body.append(chunk)

    def _count_body(self, chunk: bytes) -> None:
        """on_body with discarded bodies: only the limit is checked, nothing is kept."""
        size = self._body_size = self._body_size + len(chunk)
        if size > self._max_body:
            self._too_large()

    def _too_large(self) -> None:
        self.body = []
        if self._waiter is not None:
            self._fail(Failure("BodyTooLarge", f"response body over {self._max_body} bytes "
                               "(the http= option max_body_size; raise it or set "
                               "discard_bodies=True)"))
        self.abort()

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
        self._body_size = 0
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
