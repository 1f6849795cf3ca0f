"""WebSocket client behind ``vu.ws(...)``: timed sessions, messages, round trips and pings.

One ``WsClient`` per VU. ``vu.ws(path_or_url, ...)`` returns a ``WsConnect``, which is both an
async context manager and an awaitable, like ``websockets.connect``::

    async with vu.ws("/ws/events", name="events") as ws:       # one session per iteration
        await ws.send({"type": "subscribe", "channel": "vm_status"})
        reply = await ws.request({"type": "query", "id": 7}, match={"id": 7})
        rtt_ms = await ws.ping()
        pushed = await ws.recv_json()      # messages skipped by request() are still delivered

    ws = await vu.ws("/ws", keep=True)     # connection-count tests: opened on the VU's first
    await ws.send("hello")                 # iteration, reused by the next ones, closed at VU end

``await vu.ws(...)`` and ``await vu.ws.connect(...)`` are the same thing. Without ``keep`` the
caller closes the connection (``await ws.close()``); any connection still open when the VU stops
is closed by ``WsClient.aclose()``. ``keep=True`` keeps one connection per URL on the VU (the
options of the first open win); ``keep="slot"`` names the slot, so a VU can hold several
connections to one URL. ``async with vu.ws(..., keep=True)`` does not close on exit either.

URLs: ``ws://``/``wss://`` URLs are used as they are; a path whose start is the path of
``DWCP_WS_URL`` goes to the DWCP server; ``dwcp=True`` (or ``vu.ws.dwcp(path)``) appends the path
to ``DWCP_WS_URL``; any other path is appended to ``WS_URL`` (derived from ``API_URL`` with the
scheme swapped when ``WS_URL`` is unset). ``API_TOKEN`` becomes ``Authorization: Bearer ...``
unless ``headers`` sets Authorization. Compression (permessage-deflate) is off unless asked for:
it costs ~46 KB per connection. No proxy is used, whatever the environment says.

Metrics, all tagged ``name`` (default: the URL path without its query string):
``ws_connecting`` (trend, handshake ms), ``ws_sessions`` (counter, sessions opened),
``ws_session_duration`` (trend, ms from open to close), ``ws_msgs_sent`` / ``ws_msgs_received``
(counters), ``ws_ping`` (trend, ms), ``ws_msg_latency`` (trend, ms from send to the matching
reply in ``request()``), ``ws_failed`` (rate).

Failures: a connect that fails (refused, timeout, rejected handshake) records ``ws_failed`` True
and raises ``WsConnectError`` (the runner counts it as an iteration failure, so one refused
connection costs one iteration, not the run). A session ends cleanly (``ws_failed`` False) when
it closes with a closing handshake whose code is 1000, 1001 or 1005; a dropped connection or an
error close code records True. An exception raised by the scenario inside ``async with`` closes
the session normally and does not by itself make it failed. ``recv``/``send`` on a closed
connection raise websockets' own ``ConnectionClosed`` exceptions.

Options (``options["ws"]``, checked by `validate_ws_options`): see ``WS_OPTIONS`` in
`ws_config`; ``transport="fast"`` swaps websockets for the lean client of `ws_fast` (same
metrics, errors, exceptions; no compression). A failed connect or an abnormal session end
reports its cause on the one error path, ``ctx.report("ws_failed", type, message)``, with
"WsConnectError" or websockets' close exception name (e.g. "ConnectionClosedError") and a
message naming the URL.
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Generator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosedOK
from websockets.frames import OK_CLOSE_CODES
from websockets.protocol import State
from websockets.typing import Subprotocol

from pytest_novaload.clients.base import Tags
from pytest_novaload.clients.deadline import Deadline
from pytest_novaload.clients.measure import WsSinks
from pytest_novaload.clients.ws_config import (
    auto_local_addr,
    check_compression,
    connect_defaults,
    default_name,
    resolve_ws_url,
    validate_ws_options,
)
from pytest_novaload.clients.ws_fast import FastWsConnection
from pytest_novaload.clients.ws_fast import connect as fast_connect
from pytest_novaload.clients.ws_messages import Match, Message, decode, encode, matcher
from pytest_novaload.errors import NovaloadError
from pytest_novaload.metrics.builtins import define_builtins
from pytest_novaload.metrics.errors import GENERATOR, RESOURCE_ERROR, error_tag, resource_error

if TYPE_CHECKING:
    from pytest_novaload.clients.base import ClientContext

__all__ = ["WsClient", "WsConnect", "WsConnectError", "WsConnection", "auto_local_addr",
           "resolve_ws_url", "validate_ws_options"]


DEFAULT_REQUEST_TIMEOUT = 10.0
Transport = ClientConnection | FastWsConnection   # websockets' connection, or ws_fast's


class _Default(enum.Enum):
    token = 0


#: "not given": fall back to ``options["ws"]`` then the built-in default.
DEFAULT = _Default.token


class WsConnectError(NovaloadError):
    """Opening a WebSocket session failed (refused, timed out, handshake rejected)."""

    def __init__(self, url: str, name: str, cause: BaseException) -> None:
        self.url = url
        self.name = name
        self.cause = cause
        super().__init__(f"ws connect to {url} (name={name}) failed: {error_tag(cause)}")


class WsConnection:
    """One open WebSocket session; every message and ping is counted under its ``name``."""

    def __init__(self, client: WsClient, ws: Transport, url: str, name: str,
                 sinks: WsSinks, keep_key: tuple[str, str] | None) -> None:
        self.url = url
        self.name = name
        self._client = client
        self._ws = ws
        self._sinks = sinks
        self._keep_key = keep_key
        self._pending: deque[Message] = deque()
        self._opened = time.perf_counter()
        self._finished = False
        self._deadline = Deadline()

    @property
    def closed(self) -> bool:
        """True once the session is closing or closed (by either side)."""
        return self._finished or self._ws.state in (State.CLOSING, State.CLOSED)

    @property
    def kept(self) -> bool:
        """True when the connection stays open on the VU across iterations."""
        return self._keep_key is not None

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    @property
    def extensions(self) -> list[str]:
        """Names of the negotiated extensions (empty unless compression was asked for)."""
        return [ext.name for ext in self._ws.protocol.extensions]

    @property
    def raw(self) -> Transport:
        """The underlying connection (websockets', or ws_fast's), for what this does not offer."""
        return self._ws

    async def send(self, message: object) -> None:
        """Send str or bytes as they are; dicts and lists as compact JSON text."""
        await self._ws.send(encode(message))
        self._sinks.sent.add()

    async def recv(self, timeout: float | None = None) -> Message:
        """The next message (those skipped by ``request`` first); TimeoutError after timeout s."""
        if self._pending:
            return self._pending.popleft()
        if timeout is None:
            message = await self._ws.recv()
        else:
            deadline = self._deadline
            deadline.start(timeout)
            try:
                message = await self._ws.recv()
            except asyncio.CancelledError:
                if deadline.stop():
                    raise TimeoutError(f"ws recv on {self.name}: nothing within {timeout}s") \
                        from None
                raise
            finally:
                deadline.stop()
        self._sinks.received.add()
        return message

    async def recv_json(self, timeout: float | None = None) -> Any:
        """The next message, JSON-decoded (``json.JSONDecodeError`` when it is not JSON)."""
        return json.loads(await self.recv(timeout))

    async def request(self, message: object, match: Match = None,
                      timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> Any:
        """Send, then receive until ``match`` accepts a message; return it decoded.

        ``match`` is a callable on the decoded message (a KeyError/IndexError/TypeError inside
        it means "not this one"), a dict of key/values the decoded JSON object must hold, or
        None for the next message. Messages that do not match are queued for ``recv()``.
        Records ``ws_msg_latency`` (send to matching reply). One reader at a time per connection.
        """
        accept = matcher(match)
        skipped = 0
        last: Message | None = None
        start = time.perf_counter()
        await self.send(message)
        deadline = self._deadline  # not asyncio.timeout(): ~5 us per request (see deadline.py)
        if timeout is not None:
            deadline.start(timeout)
        try:
            while True:
                raw = await self._ws.recv()
                self._sinks.received.add()
                decoded = decode(raw)
                if accept(decoded):
                    self._sinks.latency.add((time.perf_counter() - start) * 1000.0)
                    return decoded
                self._pending.append(raw)
                skipped += 1
                last = raw
        except asyncio.CancelledError:
            if not deadline.stop():
                raise
            seen = f"; last one: {last[:200]!r}" if last is not None else ""
            raise TimeoutError(f"ws request on {self.name}: no reply matching {match!r} within "
                               f"{timeout}s ({skipped} other messages queued{seen})") from None
        finally:
            deadline.stop()

    async def ping(self, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> float:
        """Send a ping frame, wait for its pong; return and record the round trip in ms."""
        start = time.perf_counter()
        pong = await self._ws.ping()
        async with asyncio.timeout(timeout):
            await pong
        ms = (time.perf_counter() - start) * 1000.0
        self._sinks.ping.add(ms)
        return ms

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the session (idempotent) and record its duration and outcome."""
        if self._finished:
            return
        try:
            await self._ws.close(code, reason)
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._deadline.close()
        self._sinks.duration.add((time.perf_counter() - self._opened) * 1000.0)
        failed = self._ws.close_code not in OK_CLOSE_CODES
        self._sinks.failed.add(failed)
        self._client._forget(self)
        if failed:
            self._client._report(*self._abnormal_end())

    def _abnormal_end(self) -> tuple[str, str]:
        """(error type, message) of a session that did not end with a normal close."""
        where = f"(ws {self.url}, name={self.name})"
        if self._ws.state is State.CLOSED:
            tag = error_tag(self._ws.protocol.close_exc)
            return tag.type, f"{tag} {where}"
        return ("ConnectionClosedError", "ConnectionClosedError: session ended with close code "
                f"{self._ws.close_code} {where}")

    async def __aiter__(self) -> AsyncIterator[Message]:
        """Every message until the peer closes normally (queued ones first)."""
        try:
            while True:
                yield await self.recv()
        except ConnectionClosedOK:
            return

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<WsConnection {self.url} name={self.name} {state}>"


class WsConnect:
    """What ``vu.ws(...)`` returns: ``async with`` it, or ``await`` it for a connection."""

    def __init__(self, client: WsClient, url: str, name: str, connect_kw: dict[str, Any],
                 keep_key: tuple[str, str] | None) -> None:
        self._client = client
        self._url = url
        self._name = name
        self._kw = connect_kw
        self._keep_key = keep_key
        self._conn: WsConnection | None = None

    def __await__(self) -> Generator[Any, None, WsConnection]:
        return self._client._get(self._url, self._name, self._kw, self._keep_key).__await__()

    async def __aenter__(self) -> WsConnection:
        self._conn = await self
        return self._conn

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.kept:
            await conn.close()


class WsClient:
    """Per-VU WebSocket client: ``vu.ws``. The runner calls ``aclose()`` when the VU stops."""

    def __init__(self, ctx: ClientContext) -> None:
        self._ctx = ctx
        self._store = ctx.store
        define_builtins(ctx.store, "ws")
        ws_options = ctx.options.get("ws") or {}
        self._defaults = connect_defaults(ws_options, ctx.vu_id)
        self._transport = ws_options.get("transport", "websockets")
        self._auth: dict[str, str] = {}
        token = ctx.env.get("API_TOKEN")
        if token:
            self._auth["Authorization"] = f"Bearer {token}"
        self._sinks: dict[tuple[Tags, str], WsSinks] = {}
        self._open: set[WsConnection] = set()
        self._kept: dict[tuple[str, str], WsConnection] = {}

    def __call__(self, path_or_url: str = "", *, name: str | None = None,
                 headers: Mapping[str, str] | None = None,
                 subprotocols: Sequence[str] | None = None,
                 compression: str | _Default | None = DEFAULT,
                 open_timeout: float | _Default | None = DEFAULT,
                 keep: bool | str = False, dwcp: bool = False) -> WsConnect:
        """A session on ``path_or_url``: ``async with`` it, or ``await`` it (see module doc)."""
        url = resolve_ws_url(path_or_url, self._ctx.env, dwcp=dwcp)
        kw = dict(self._defaults)
        merged = dict(self._auth)
        if headers:
            if any(k.lower() == "authorization" for k in headers):
                merged.clear()
            merged.update(headers)
        if merged:
            kw["additional_headers"] = merged
        if subprotocols is not None:
            kw["subprotocols"] = [Subprotocol(p) for p in subprotocols]
        if compression is not DEFAULT:
            kw["compression"] = check_compression(compression, self._transport)
        if open_timeout is not DEFAULT:
            kw["open_timeout"] = open_timeout
        if "local_addr" not in kw and (auto := auto_local_addr(url, self._ctx.vu_id)):
            kw["local_addr"] = auto   # past 20K VUs: spread over 127.0.0.x (ws_config)
        keep_key = None
        if keep is not False:
            keep_key = (url, "" if keep is True else str(keep))
        return WsConnect(self, url, name or default_name(url), kw, keep_key)

    async def connect(self, path_or_url: str = "", **kw: Any) -> WsConnection:
        """Same as ``await vu.ws(path_or_url, **kw)``: an open (or kept) connection."""
        return await self(path_or_url, **kw)

    def dwcp(self, path: str = "", **kw: Any) -> WsConnect:
        """``vu.ws(path, dwcp=True)``: a session on ``DWCP_WS_URL`` + path."""
        return self(path, dwcp=True, **kw)

    async def aclose(self) -> None:
        """Close every connection still open on this VU, kept ones included."""
        conns = list(self._open)
        self._kept.clear()
        # Concurrently: each close may wait close_timeout for a silent peer. A connection that
        # dies while closing is recorded by close() and must not stop the others.
        await asyncio.gather(*(conn.close() for conn in conns), return_exceptions=True)

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def _sinks_for(self, name: str) -> WsSinks:
        key = (self._ctx.base_tags(), name)   # the VU's scenario and group at connect time
        sinks = self._sinks.get(key)
        if sinks is None:
            sinks = self._sinks[key] = WsSinks(self._store, name, key[0])
        return sinks

    async def _get(self, url: str, name: str, kw: dict[str, Any],
                   keep_key: tuple[str, str] | None) -> WsConnection:
        if keep_key is not None:
            kept = self._kept.get(keep_key)
            if kept is not None:
                if not kept.closed:
                    return kept
                await kept.close()  # the peer dropped it: record the outcome, then reopen
        # Once per connection, before DNS and connect (memoised per host in the allowlist).
        self._ctx.allowlist.check_url(url, what="vu.ws URL")
        sinks = self._sinks_for(name)
        start = time.perf_counter()
        try:
            ws: Transport = await (fast_connect(url, **kw) if self._transport == "fast"
                                   else ws_connect(url, **kw))
        except Exception as exc:
            error = WsConnectError(url, name, exc)
            if resource_error(exc):  # out of descriptors/ports: the generator's, not ws_failed
                self._ctx.report(GENERATOR, RESOURCE_ERROR, str(error))
            else:
                sinks.failed.add(True)
                self._report("WsConnectError", str(error))
            raise error from exc
        sinks.connecting.add((time.perf_counter() - start) * 1000.0)
        sinks.sessions.add()
        conn = WsConnection(self, ws, url, name, sinks, keep_key)
        self._open.add(conn)
        if keep_key is not None:
            self._kept[keep_key] = conn
        return conn

    def _report(self, error_type: str, message: str) -> None:
        """A failed ``ws_failed`` sample's cause, on the one error path."""
        self._ctx.report("ws_failed", error_type, message)

    def _forget(self, conn: WsConnection) -> None:
        self._open.discard(conn)
        if conn._keep_key is not None and self._kept.get(conn._keep_key) is conn:
            del self._kept[conn._keep_key]
