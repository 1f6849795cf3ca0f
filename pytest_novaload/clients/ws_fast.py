"""The fast WebSocket transport of ``vu.ws``: ``ws={"transport": "fast"}`` (opt-in).

A lean RFC 6455 client on one ``asyncio.Protocol`` per connection, as ``vu.http`` is lean
HTTP/1.1 (``http/fast.py``): websockets' per-message machinery (send context, Frame objects,
the parser generator, the assembler's queues, a getrandom syscall per mask) costs ~30 us CPU
per round trip, more than k6. Here a send is one head + masked payload and one
``transport.write``; a receive parses the frames straight from ``data_received`` into a deque
with one waiter.

`FastWsConnection` offers the part of websockets' ``ClientConnection`` that ``WsConnection``
uses: ``send``, ``recv``, ``ping`` (an awaitable pong giving the latency), ``close(code,
reason)``, ``state`` (websockets' ``State``), ``subprotocol``, ``protocol.extensions`` (always
empty), ``close_code``, ``protocol.close_exc`` (websockets' ``ConnectionClosedOK`` /
``ConnectionClosedError`` with ``frames.Close`` objects), ``local_address``. Its behaviour
follows websockets': the options ``open_timeout``, ``close_timeout``, ``ping_interval``,
``ping_timeout`` (keepalive pings), ``max_size`` (close 1009), ``max_queue`` (reading pauses
while that many messages wait), extra headers and subprotocols; a masked server frame, reserved
bits or an unknown opcode closes with 1002, invalid UTF-8 text with 1007. Not offered:
extensions (``compression`` is refused when this transport is chosen) and proxies.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Awaitable, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from websockets.exceptions import ConcurrencyError
from websockets.frames import Close

from pytest_novaload.clients.ws_protocol import CLOSED, CLOSED_SENTINEL, OPEN, FrameProtocol
from pytest_novaload.clients.ws_wire import (
    apply_mask,
    frame_head,
    handshake_request,
    new_key,
    take_mask,
)
from pytest_novaload.errors import ConfigError

__all__ = ["FastWsConnection", "connect"]


def _retrieve(fut: asyncio.Future[float]) -> None:
    if not fut.cancelled():
        fut.exception()  # a pong nobody awaits any more must not log "never retrieved"


class FastWsConnection(FrameProtocol):
    """One client connection with websockets' ClientConnection surface (see the module doc)."""

    __slots__ = ()

    # --- websockets' ClientConnection surface -----------------------------------------------

    @property
    def protocol(self) -> FastWsConnection:
        """Itself: websockets keeps ``extensions`` and ``close_exc`` on ``conn.protocol``."""
        return self

    async def send(self, message: str | bytes | bytearray | memoryview) -> None:
        """A text (str) or binary message in one frame and one write."""
        if self.state is not OPEN:
            await self._raise_closed()
        if isinstance(message, str):
            payload, op = message.encode(), 1
        elif isinstance(message, bytes | bytearray | memoryview):
            payload, op = bytes(message), 2
        else:
            raise TypeError(f"ws send: data must be str or bytes, not {type(message).__name__}")
        mask = take_mask()
        n = len(payload)
        assert self._transport is not None
        self._transport.write(frame_head(op, n) + mask + apply_mask(payload, mask))
        if self._write_paused:
            await self._wait_drain()

    async def recv(self) -> str | bytes:
        """The next message; websockets' ConnectionClosed once the connection is closed."""
        messages = self._messages
        if messages:
            message = messages.popleft()
            if self._reading_paused and len(messages) <= self._low:
                self._reading_paused = False
                assert self._transport is not None
                self._transport.resume_reading()
            return message
        if self.state is CLOSED:
            raise self.close_exc
        if self._waiter is not None:
            raise ConcurrencyError("cannot call recv while another coroutine is already "
                                   "running recv")
        waiter = self._waiter = self.loop.create_future()
        try:
            message = await waiter
        except asyncio.CancelledError:
            # resolved, then cancelled before this task ran again: keep the message
            if waiter.done() and not waiter.cancelled() and waiter.result() is not CLOSED_SENTINEL:
                messages.appendleft(waiter.result())
            raise
        finally:
            if self._waiter is waiter:
                self._waiter = None
        if message is CLOSED_SENTINEL:
            raise self.close_exc
        return message  # type: ignore[no-any-return]

    async def ping(self, data: str | bytes | None = None) -> Awaitable[float]:
        """Send a ping; return a future that gives the latency in s when its pong arrives."""
        if self.state is not OPEN:
            await self._raise_closed()
        payload = take_mask() if data is None else (
            data.encode() if isinstance(data, str) else bytes(data))
        if payload in self._pings:
            raise ConcurrencyError("already waiting for a pong with the same data")
        pong: asyncio.Future[float] = self.loop.create_future()
        pong.add_done_callback(_retrieve)
        self._pings[payload] = (pong, self.loop.time())
        self._write(9, payload)
        return pong

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The closing handshake: send a close frame, wait for the server's close and the end
        of the TCP connection (at most close_timeout s, then abort). Idempotent."""
        if self.state is OPEN:
            self._send_close(Close(code, reason))
        if self.state is not CLOSED:
            await asyncio.shield(self._lost)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._lost)

    async def _raise_closed(self) -> None:
        """Using a connection that is not open: wait until it is closed, then raise."""
        if self.state is not CLOSED:
            await asyncio.shield(self._lost)
        raise self.close_exc

    async def _wait_drain(self) -> None:
        if self._drain is None:
            self._drain = self.loop.create_future()
        await asyncio.shield(self._drain)




async def connect(url: str, *, additional_headers: Mapping[str, str] | None = None,
                  subprotocols: Sequence[str] | None = None, open_timeout: float | None = 10.0,
                  close_timeout: float | None = 10.0, ping_interval: float | None = 20.0,
                  ping_timeout: float | None = 20.0, max_size: int | None = 2**20,
                  max_queue: int | tuple[int | None, int | None] | None = 16,
                  local_addr: tuple[str, int] | None = None, compression: str | None = None,
                  proxy: None = None) -> FastWsConnection:
    """Open a connection: TCP (TLS for wss://), the upgrade handshake; the keywords and
    defaults are websockets.connect's. TimeoutError after open_timeout s."""
    if compression is not None:
        raise ConfigError(f"ws compression={compression!r} with transport='fast': the fast "
                          "transport offers no extensions; drop compression or use "
                          "transport='websockets'")
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = dict(additional_headers or {})
    if parts.username is not None and not any(k.lower() == "authorization" for k in headers):
        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(userinfo.encode()).decode()
    loop = asyncio.get_running_loop()
    key = new_key()
    conn = FastWsConnection(loop, key, subprotocols, max_size=max_size, max_queue=max_queue,
                            close_timeout=close_timeout, ping_interval=ping_interval,
                            ping_timeout=ping_timeout)
    request = handshake_request(host, port, secure, resource, key, headers, subprotocols)
    try:
        async with asyncio.timeout(open_timeout):
            await loop.create_connection(
                lambda: conn, host, port, local_addr=local_addr,
                ssl=ssl.create_default_context() if secure else None,
                server_hostname=host if secure else None)
            assert conn._transport is not None
            conn._transport.write(request)
            await conn._opened
    except TimeoutError as exc:
        conn.abort()
        raise TimeoutError("timed out during opening handshake") from exc
    except BaseException:
        conn.abort()
        raise
    return conn
