"""The receive side and state of the fast WebSocket transport (`ws_fast`).

`FrameProtocol` is the ``asyncio.Protocol`` under `FastWsConnection`: it reads the opening
handshake's response, then parses server frames straight from ``data_received`` (7/16/64-bit
lengths, fragments, control frames between them), answers pings, resolves pongs, echoes the
server's close, and fails the connection as websockets does (close 1002 on a masked frame,
reserved bits or an unknown opcode, 1007 on invalid UTF-8, 1009 past ``max_size``; then wait
``close_timeout`` for the server to end TCP). Messages go to a deque with one waiter.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidMessage,
    PayloadTooBig,
    ProtocolError,
)
from websockets.extensions import Extension
from websockets.frames import OK_CLOSE_CODES, Close
from websockets.protocol import State

from pytest_novaload.clients.ws_wire import (
    MAX_HEAD,
    apply_mask,
    check_response,
    frame_head,
    take_mask,
)

__all__ = ["CLOSED", "CLOSED_SENTINEL", "CLOSING", "CONNECTING", "OPEN", "FrameProtocol"]

OPEN, CLOSING, CLOSED, CONNECTING = State.OPEN, State.CLOSING, State.CLOSED, State.CONNECTING
#: what the recv waiter gets when the connection is gone
CLOSED_SENTINEL: Any = object()


class FrameProtocol(asyncio.Protocol):
    """Connection state and everything that arrives from the server (see the module doc)."""

    __slots__ = (
        "_buf", "_close_timeout", "_discard", "_drain", "_exc", "_frag_len", "_frag_op",
        "_frags", "_high", "_keepalive", "_key", "_lost", "_low", "_max_size", "_messages",
        "_opened", "_ping_interval", "_ping_timeout", "_ping_timer", "_pings", "_reading_paused",
        "_subprotocols", "_timer", "_transport", "_waiter", "_write_paused", "close_rcvd",
        "close_rcvd_then_sent", "close_sent", "extensions", "local_address", "loop",
        "remote_address", "state", "subprotocol")

    def __init__(self, loop: asyncio.AbstractEventLoop, key: str,
                 subprotocols: Sequence[str] | None, *, max_size: int | None,
                 max_queue: int | tuple[int | None, int | None] | None,
                 close_timeout: float | None, ping_interval: float | None,
                 ping_timeout: float | None) -> None:
        self.loop = loop
        self.state = CONNECTING
        self.subprotocol: str | None = None
        self.extensions: list[Extension] = []
        self.close_rcvd: Close | None = None
        self.close_sent: Close | None = None
        self.close_rcvd_then_sent: bool | None = None
        self.local_address: Any = None
        self.remote_address: Any = None
        self._key = key
        self._subprotocols = subprotocols
        self._max_size = max_size
        high, low = max_queue if isinstance(max_queue, tuple) else (max_queue, None)
        self._high = high
        self._low = low if low is not None else (high // 4 if high is not None else 0)
        self._close_timeout = close_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._discard = False
        self._exc: BaseException | None = None
        self._frag_op = 0
        self._frags: list[bytes] = []
        self._frag_len = 0
        self._messages: deque[str | bytes] = deque()
        self._waiter: asyncio.Future[Any] | None = None
        self._pings: dict[bytes, tuple[asyncio.Future[float] | None, float]] = {}
        self._opened: asyncio.Future[None] = loop.create_future()
        self._lost: asyncio.Future[None] = loop.create_future()
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False
        self._reading_paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._keepalive: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None

    @property
    def close_code(self) -> int | None:
        if self.state is not CLOSED:
            return None
        return 1006 if self.close_rcvd is None else self.close_rcvd.code

    @property
    def close_reason(self) -> str | None:
        if self.state is not CLOSED:
            return None
        return "" if self.close_rcvd is None else self.close_rcvd.reason

    @property
    def close_exc(self) -> ConnectionClosed:
        """What using the closed connection raises, as websockets builds it."""
        rcvd, sent = self.close_rcvd, self.close_sent
        ok = (rcvd is not None and sent is not None and rcvd.code in OK_CLOSE_CODES
              and sent.code in OK_CLOSE_CODES)
        exc = (ConnectionClosedOK if ok else ConnectionClosedError)(
            rcvd, sent, self.close_rcvd_then_sent)
        exc.__cause__ = self._exc
        return exc

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.local_address = transport.get_extra_info("sockname")
        self.remote_address = transport.get_extra_info("peername")

    def data_received(self, data: bytes) -> None:
        if self._discard:
            return
        if self.state is CONNECTING:
            self._handshake_received(data)
            return
        buf = self._buf
        if buf:
            buf += data
            data = bytes(buf)
            buf.clear()
        end = len(data)
        pos = 0
        max_size = self._max_size
        while end - pos >= 2:
            b0 = data[pos]
            n = data[pos + 1]
            head = 2
            if n >= 126:
                if n & 0x80:
                    return self._fail(1002, "incorrect masking")
                if n == 126:
                    if end - pos < 4:
                        break
                    n = int.from_bytes(data[pos + 2:pos + 4], "big")
                    head = 4
                else:
                    if end - pos < 10:
                        break
                    n = int.from_bytes(data[pos + 2:pos + 10], "big")
                    head = 10
            if b0 & 0x70:
                return self._fail(1002, "reserved bits must be 0")
            if b0 & 0x08:  # a control frame
                if not b0 & 0x80 or n > 125:
                    return self._fail(1002, "invalid control frame (fragmented or > 125 bytes)")
            elif max_size is not None and self._frag_len + n > max_size:
                return self._fail(1009, str(PayloadTooBig(n, max_size, self._frag_len)),
                                  PayloadTooBig(n, max_size, self._frag_len))
            stop = pos + head + n
            if stop > end:
                break
            payload = data[pos + head:stop]
            pos = stop
            if b0 == 0x81 and not self._frag_op:
                try:
                    text = payload.decode()
                except UnicodeDecodeError as exc:
                    return self._fail(1007, f"{exc.reason} at position {exc.start}", exc)
                self._deliver(text)
            elif b0 == 0x82 and not self._frag_op:
                self._deliver(payload)
            else:
                self._frame(b0, payload)
                if self._discard:
                    return
        if pos < end:
            buf += data[pos:]

    def eof_received(self) -> None:
        """The server ended TCP: CLOSED at once, as websockets' receive_eof (a send before
        connection_lost raises ConnectionClosed, not a closed transport's RuntimeError)."""
        self.state = CLOSED
        self._discard = True
        # returning None: the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = CLOSED
        self._discard = True
        for handle in (self._timer, self._keepalive, self._ping_timer):
            if handle is not None:
                handle.cancel()
        self._timer = self._keepalive = self._ping_timer = None
        if not self._opened.done():
            self._opened.set_exception(
                InvalidMessage("connection closed during the opening handshake"))
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(CLOSED_SENTINEL)
        pings, self._pings = self._pings, {}
        for pong, _ in pings.values():
            if pong is not None and not pong.done():
                pong.set_exception(self.close_exc)
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)
        if not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # --- internals ------------------------------------------------------------------------

    def _handshake_received(self, data: bytes) -> None:
        buf = self._buf
        start = max(0, len(buf) - 3)
        buf += data
        end = buf.find(b"\r\n\r\n", start)
        if end < 0:
            if len(buf) > MAX_HEAD:
                self._refuse(InvalidMessage(f"handshake response head over {MAX_HEAD} bytes"))
            return
        head, rest = bytes(buf[:end]), bytes(buf[end + 4:])
        buf.clear()
        try:
            self.subprotocol = check_response(head, self._key, self._subprotocols)
        except Exception as exc:
            self._refuse(exc)
            return
        self.state = OPEN
        self._opened.set_result(None)
        if self._ping_interval is not None:
            self._keepalive = self.loop.call_later(self._ping_interval, self._send_keepalive)
        if rest:
            self.data_received(rest)

    def _refuse(self, exc: Exception) -> None:
        self._discard = True
        if not self._opened.done():
            self._opened.set_exception(exc)
        self.abort()

    def _deliver(self, message: str | bytes) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(message)
                return
        messages = self._messages
        messages.append(message)
        high = self._high
        if high is not None and len(messages) >= high and not self._reading_paused:
            self._reading_paused = True
            assert self._transport is not None
            self._transport.pause_reading()

    def _frame(self, b0: int, payload: bytes) -> None:
        """Every frame but an unfragmented text/binary one: fragments and control frames."""
        opcode = b0 & 0x0F
        if opcode in (1, 2, 0):
            if (opcode == 0) != bool(self._frag_op):
                self._fail(1002, "unexpected continuation frame" if opcode == 0
                           else "expected a continuation frame")
                return
            if opcode:
                self._frag_op = opcode
            self._frags.append(payload)
            self._frag_len += len(payload)
            if not b0 & 0x80:
                return
            data = b"".join(self._frags)
            op, self._frag_op, self._frags, self._frag_len = self._frag_op, 0, [], 0
            if op == 2:
                self._deliver(data)
                return
            try:
                self._deliver(data.decode())
            except UnicodeDecodeError as exc:
                self._fail(1007, f"{exc.reason} at position {exc.start}", exc)
        elif opcode == 9:
            if self.state is OPEN:
                self._write(10, payload)
        elif opcode == 10:
            self._pong(payload)
        elif opcode == 8:
            self._close_frame(payload)
        else:
            self._fail(1002, f"invalid opcode: {opcode}")

    def _pong(self, payload: bytes) -> None:
        pings = self._pings
        if payload not in pings:
            return  # unsolicited
        now = self.loop.time()
        for key in list(pings):  # a pong acknowledges its ping and every earlier one
            pong, sent = pings.pop(key)
            if pong is not None and not pong.done():
                pong.set_result(now - sent)
            if key == payload:
                break

    def _close_frame(self, payload: bytes) -> None:
        try:
            close = Close.parse(payload) if payload else Close(1005, "")
        except UnicodeDecodeError as exc:
            self._fail(1007, f"{exc.reason} at position {exc.start}", exc)
            return
        except ProtocolError as exc:
            self._fail(1002, str(exc), exc)
            return
        self.close_rcvd = close
        self._discard = True
        if self.state is OPEN:  # the server closes first: echo its close frame
            self.close_sent = close
            self.close_rcvd_then_sent = True
            self._write(8, payload)
            self.state = CLOSING
        elif self.close_rcvd_then_sent is None:
            self.close_rcvd_then_sent = False
        self._await_eof()

    def _send_close(self, close: Close) -> None:
        self._write(8, close.serialize())
        self.close_sent = close
        self.state = CLOSING
        self._await_eof()

    def _fail(self, code: int, reason: str, cause: BaseException | None = None) -> None:
        """Fail the connection as websockets does: close frame, then wait for the server."""
        self._discard = True
        self._buf.clear()
        self._exc = cause if cause is not None else ProtocolError(reason)
        if self.state is OPEN:
            # a close frame's payload is at most 125 bytes: the code and 123 of reason
            self._send_close(Close(code, reason.encode()[:123].decode(errors="ignore")))
        else:
            self._await_eof()

    def _await_eof(self) -> None:
        """The server closes TCP after the closing handshake: abort if it does not in time."""
        if self._timer is None and self._close_timeout is not None and self.state is not CLOSED:
            self._timer = self.loop.call_later(self._close_timeout, self.abort)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _write(self, opcode: int, payload: bytes) -> None:
        mask = take_mask()
        assert self._transport is not None
        self._transport.write(frame_head(opcode, len(payload)) + mask + apply_mask(payload, mask))

    def _send_keepalive(self) -> None:
        self._keepalive = None
        if self.state is not OPEN:
            return
        payload = take_mask()
        while payload in self._pings:
            payload = take_mask()
        self._pings[payload] = (None, self.loop.time())
        self._write(9, payload)
        if self._ping_timeout is not None and self._ping_timer is None:  # one check at a time
            self._ping_timer = self.loop.call_later(self._ping_timeout, self._check_pong,
                                                    payload)
        assert self._ping_interval is not None
        self._keepalive = self.loop.call_later(self._ping_interval, self._send_keepalive)

    def _check_pong(self, payload: bytes) -> None:
        self._ping_timer = None
        if payload in self._pings and self.state is OPEN:
            self._fail(1011, "keepalive ping timeout")
