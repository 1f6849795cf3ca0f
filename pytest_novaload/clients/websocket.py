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

Options (``options["ws"]``, checked by `validate_ws_options`): see ``WS_OPTIONS``. Failed
connects and abnormal session ends call ``ctx.on_error(type, message)`` with "WsConnectError"
or websockets' close exception name (e.g. "ConnectionClosedError") and a message naming the URL.
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosedOK
from websockets.frames import OK_CLOSE_CODES
from websockets.protocol import State
from websockets.typing import Subprotocol

from pytest_novaload.clients._options import seconds, unknown_option
from pytest_novaload.errors import ConfigError, NovaloadError
from pytest_novaload.metrics.builtins import define_builtins
from pytest_novaload.metrics.errors import error_tag

if TYPE_CHECKING:
    from pytest_novaload.clients.base import ClientContext
    from pytest_novaload.metrics import MetricStore
    from pytest_novaload.metrics.sinks import Counter, Rate, Trend

__all__ = ["WsClient", "WsConnect", "WsConnectError", "WsConnection", "resolve_ws_url",
           "validate_ws_options"]

Message: TypeAlias = str | bytes
Match: TypeAlias = Callable[[Any], object] | Mapping[str, Any] | None

#: keys accepted in ``options["ws"]`` (defaults for every connection of the run).
WS_OPTIONS = frozenset({
    "open_timeout", "close_timeout", "ping_interval", "ping_timeout", "max_size", "max_queue",
    "compression", "local_addrs",
})

DEFAULT_OPEN_TIMEOUT = 10.0
DEFAULT_REQUEST_TIMEOUT = 10.0


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


def resolve_ws_url(path_or_url: str, env: Mapping[str, str], *, dwcp: bool = False) -> str:
    """Turn what a scenario passed to ``vu.ws`` into a full ws:// or wss:// URL."""
    if "://" in path_or_url:
        scheme = path_or_url.split("://", 1)[0].lower()
        if scheme not in ("ws", "wss"):
            raise ConfigError(f"vu.ws url {path_or_url!r}: expected a ws:// or wss:// URL or a "
                              f"path such as '/ws'; use the ws scheme for WebSocket targets")
        return path_or_url
    dwcp_base = env.get("DWCP_WS_URL", "")
    if dwcp:
        if not dwcp_base:
            raise ConfigError("vu.ws(..., dwcp=True): DWCP_WS_URL is not set; set it to the DWCP "
                              "WebSocket endpoint, e.g. ws://localhost:8080/dwcp/v3")
        return _join(dwcp_base, path_or_url)
    if dwcp_base:
        parts = urlsplit(dwcp_base)
        prefix = parts.path.rstrip("/")
        if prefix and (path_or_url == prefix or path_or_url.startswith(prefix + "/")):
            return f"{parts.scheme}://{parts.netloc}{path_or_url}"
    base = env.get("WS_URL", "")
    if not base:
        api = env.get("API_URL", "")
        if api.startswith(("http://", "https://")):
            base = "ws" + api[4:]
        else:
            raise ConfigError(f"vu.ws({path_or_url!r}): WS_URL is not set; set WS_URL (e.g. "
                              f"ws://localhost:8080) or pass a full ws:// URL")
    return _join(base, path_or_url)


def _join(base: str, path: str) -> str:
    if not path:
        return base
    return base.rstrip("/") + "/" + path.lstrip("/")


def _default_name(url: str) -> str:
    return urlsplit(url).path or "/"


def _decode(message: Message) -> Any:
    """JSON-decode a message when it is JSON; otherwise return it unchanged."""
    try:
        return json.loads(message)
    except ValueError:
        return message


def _matcher(match: Match) -> Callable[[Any], bool]:
    if match is None:
        return lambda _msg: True
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


def _encode(message: object) -> Message:
    if isinstance(message, str | bytes):
        return message
    if isinstance(message, bytearray | memoryview):
        return bytes(message)
    if isinstance(message, dict | list):
        return json.dumps(message, separators=(",", ":"))
    raise TypeError(f"ws send: cannot send a {type(message).__name__}; expected str, bytes, "
                    f"or a dict/list to JSON-encode")


class _Sinks:
    """The sinks of one ``name`` tag, looked up once."""

    __slots__ = ("connecting", "duration", "failed", "latency", "ping", "received", "sent",
                 "sessions")

    def __init__(self, store: MetricStore, name: str) -> None:
        tags = (("name", name),)
        self.connecting: Trend = store.trend("ws_connecting", tags)
        self.sessions: Counter = store.counter("ws_sessions", tags)
        self.duration: Trend = store.trend("ws_session_duration", tags)
        self.sent: Counter = store.counter("ws_msgs_sent", tags)
        self.received: Counter = store.counter("ws_msgs_received", tags)
        self.ping: Trend = store.trend("ws_ping", tags)
        self.latency: Trend = store.trend("ws_msg_latency", tags)
        self.failed: Rate = store.rate("ws_failed", tags)


class WsConnection:
    """One open WebSocket session; every message and ping is counted under its ``name``."""

    def __init__(self, client: WsClient, ws: ClientConnection, url: str, name: str,
                 sinks: _Sinks, keep_key: tuple[str, str] | None) -> None:
        self.url = url
        self.name = name
        self._client = client
        self._ws = ws
        self._sinks = sinks
        self._keep_key = keep_key
        self._pending: deque[Message] = deque()
        self._opened = time.perf_counter()
        self._finished = False

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
    def raw(self) -> ClientConnection:
        """The underlying ``websockets`` connection, for what this wrapper does not offer."""
        return self._ws

    async def send(self, message: object) -> None:
        """Send str or bytes as they are; dicts and lists as compact JSON text."""
        await self._ws.send(_encode(message))
        self._sinks.sent.add()

    async def recv(self, timeout: float | None = None) -> Message:
        """The next message (those skipped by ``request`` first); TimeoutError after timeout s."""
        if self._pending:
            return self._pending.popleft()
        if timeout is None:
            message = await self._ws.recv()
        else:
            async with asyncio.timeout(timeout):
                message = await self._ws.recv()
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
        accept = _matcher(match)
        skipped = 0
        last: Message | None = None
        start = time.perf_counter()
        await self.send(message)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    raw = await self._ws.recv()
                    self._sinks.received.add()
                    decoded = _decode(raw)
                    if accept(decoded):
                        self._sinks.latency.add((time.perf_counter() - start) * 1000.0)
                        return decoded
                    self._pending.append(raw)
                    skipped += 1
                    last = raw
        except TimeoutError:
            seen = f"; last one: {last[:200]!r}" if last is not None else ""
            raise TimeoutError(f"ws request on {self.name}: no reply matching {match!r} within "
                               f"{timeout}s ({skipped} other messages queued{seen})") from None

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
        self._defaults = _connect_defaults(ctx.options.get("ws") or {}, ctx.vu_id)
        self._auth: dict[str, str] = {}
        token = ctx.env.get("API_TOKEN")
        if token:
            self._auth["Authorization"] = f"Bearer {token}"
        self._sinks: dict[str, _Sinks] = {}
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
            kw["compression"] = _check_compression(compression)
        if open_timeout is not DEFAULT:
            kw["open_timeout"] = open_timeout
        keep_key = None
        if keep is not False:
            keep_key = (url, "" if keep is True else str(keep))
        return WsConnect(self, url, name or _default_name(url), kw, keep_key)

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

    def _sinks_for(self, name: str) -> _Sinks:
        sinks = self._sinks.get(name)
        if sinks is None:
            sinks = self._sinks[name] = _Sinks(self._store, name)
        return sinks

    async def _get(self, url: str, name: str, kw: dict[str, Any],
                   keep_key: tuple[str, str] | None) -> WsConnection:
        if keep_key is not None:
            kept = self._kept.get(keep_key)
            if kept is not None:
                if not kept.closed:
                    return kept
                await kept.close()  # the peer dropped it: record the outcome, then reopen
        sinks = self._sinks_for(name)
        start = time.perf_counter()
        try:
            ws = await ws_connect(url, **kw)
        except Exception as exc:
            sinks.failed.add(True)
            error = WsConnectError(url, name, exc)
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


def _check_compression(value: object) -> str | None:
    if value is None:
        return None
    if value == "deflate":
        return "deflate"
    raise ConfigError(f"ws compression={value!r}: expected None (off, the default) or 'deflate'")


_TIMEOUTS = ("open_timeout", "close_timeout", "ping_interval", "ping_timeout")


def validate_ws_options(opts: Mapping[str, Any]) -> list[str]:
    """Every problem in a ``ws=`` options dict (empty when valid). Pure: no I/O, no connection.

    Checks unknown keys (with a close-match hint); ``open_timeout``/``ping_interval`` (None, or
    a number or duration > 0), ``close_timeout``/``ping_timeout`` (None, or >= 0); ``max_size``
    (None or bytes >= 1); ``max_queue`` (None, a count >= 1, or a (high, low) pair);
    ``compression`` (None or 'deflate'); ``local_addrs`` (a list of address strings).
    Messages start with the key: the caller adds its prefix.
    """
    if not isinstance(opts, Mapping):
        return [f"{opts!r}: expected a dict of WebSocket options such as "
                f"{{'open_timeout': '5s'}} (accepted keys: {', '.join(sorted(WS_OPTIONS))})"]
    problems = [unknown_option(key, WS_OPTIONS) for key in opts if key not in WS_OPTIONS]
    for key in _TIMEOUTS:
        value = opts.get(key)
        if value is not None and seconds(
                value, allow_zero=key in ("close_timeout", "ping_timeout")) is None:
            least = "> 0" if key in ("open_timeout", "ping_interval") else ">= 0"
            problems.append(f"{key}={value!r}: expected seconds ({least}), a duration such as "
                            f"'10s', or None to disable it")
    max_size = opts.get("max_size")
    if max_size is not None and not _count(max_size):
        problems.append(f"max_size={max_size!r}: expected the largest message in bytes, a "
                        f"whole number >= 1 (e.g. 2**20), or None for no limit")
    max_queue = opts.get("max_queue")
    if max_queue is not None and not (
            _count(max_queue) or (isinstance(max_queue, tuple) and len(max_queue) == 2
                                  and all(q is None or _count(q) for q in max_queue))):
        problems.append(f"max_queue={max_queue!r}: expected a number of messages >= 1, a "
                        f"(high, low) pair of them, or None for no limit")
    compression = opts.get("compression")
    if compression not in (None, "deflate"):
        problems.append(f"compression={compression!r}: expected None (off, the default) or "
                        f"'deflate'")
    addrs = opts.get("local_addrs")
    if addrs is not None and (isinstance(addrs, str) or not isinstance(addrs, Sequence)
                              or not all(isinstance(a, str) and a for a in addrs)):
        problems.append(f"local_addrs={addrs!r}: expected a list of source addresses such as "
                        f"['127.0.0.1', '127.0.0.2']")
    return problems


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _connect_defaults(options: Mapping[str, Any], vu_id: int) -> dict[str, Any]:
    """Keyword arguments for ``websockets.connect`` from ``options["ws"]`` (validated first)."""
    problems = validate_ws_options(options)
    if problems:
        raise ConfigError([f"ws option {p}" for p in problems])
    kw: dict[str, Any] = {
        "compression": options.get("compression"),
        "open_timeout": DEFAULT_OPEN_TIMEOUT,
        "proxy": None,
    }
    for key in _TIMEOUTS:
        if key in options:
            value = options[key]
            kw[key] = None if value is None else seconds(value, allow_zero=True)
    for key in ("max_size", "max_queue"):
        if key in options:
            kw[key] = options[key]
    addrs = options.get("local_addrs")
    if addrs:
        kw["local_addr"] = (addrs[vu_id % len(addrs)], 0)
    return kw
