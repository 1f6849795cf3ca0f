"""vu.ws with ``ws={"transport": "fast"}`` against real servers on 127.0.0.1.

Most tests run on both transports with one expectation: the fast client must behave as
websockets does (close codes, exceptions, metrics). What websockets' own server never sends
(invalid UTF-8, masked or reserved frames, pings between fragments, a silent peer) comes from
a hand-written raw server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.http11 import Request, Response

from pytest_novaload.clients.base import ClientContext
from pytest_novaload.clients.websocket import WsClient, WsConnectError, validate_ws_options
from pytest_novaload.clients.ws_fast import FastWsConnection
from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import MetricStore
from tests.timing import scaled

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, list[Any]], Awaitable[None]]


@pytest.fixture(params=["websockets", "fast"])
def transport(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def store(metric_store: MetricStore) -> MetricStore:
    return metric_store


def client(store: MetricStore, transport: str, url: str = "ws://127.0.0.1:9",
           errors: list[tuple[str, str]] | None = None, **ws: Any) -> WsClient:
    def on_error(metric: str, kind: str, message: str) -> None:
        if errors is not None:
            errors.append((kind, message))

    return WsClient(ClientContext(store=store, vu_id=1, env={"WS_URL": url},
                                  options={"ws": {"transport": transport, **ws}},
                                  on_error=on_error))


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, scaled(20)))


def passes_fails(store: MetricStore, metric: str = "ws_failed") -> tuple[int, int]:
    stats = store.aggregate(metric, {}).stats(1.0)
    return int(stats["passes"]), int(stats["fails"])


def count(store: MetricStore, metric: str) -> float:
    return store.aggregate(metric, {}).value("count")


# --- servers ---------------------------------------------------------------------------------

async def _handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else "/"
    if path == "/echo":
        async for msg in ws:
            await ws.send(msg)
    elif path == "/frag":  # one text message in three frames
        await ws.send(["ab", "cd", "ef"])
        await ws.wait_closed()
    elif path == "/pingme":  # the server pings: "answered" once the client's pong came back
        pong = await ws.ping(b"srv")
        await asyncio.wait_for(pong, 5)
        await ws.send("answered")
        await ws.wait_closed()
    elif path.startswith("/big/"):
        await ws.send(b"x" * int(path.rsplit("/", 1)[1]))
        await ws.wait_closed()
    elif path == "/drop":  # reads one message, then drops TCP without a closing handshake
        await ws.recv()
        ws.transport.abort()
    elif path == "/push":
        for i in range(100):
            await ws.send(str(i))
        await ws.wait_closed()
    elif path == "/proto":
        await ws.send(ws.subprotocol or "-")
        await ws.wait_closed()


def _forbid(conn: ServerConnection, request: Request) -> Response | None:
    if request.path == "/forbidden":
        return conn.respond(HTTPStatus.FORBIDDEN, "no\n")
    return None


@contextlib.asynccontextmanager
async def ws_server(**kw: Any) -> AsyncIterator[str]:
    async with serve(_handler, "127.0.0.1", 0, process_request=_forbid, **kw) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One client frame, unmasked (client frames must be masked)."""
    b0, b1 = await reader.readexactly(2)
    assert b1 & 0x80, "a client frame must be masked"
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    mask = await reader.readexactly(4)
    data = await reader.readexactly(n)
    return b0 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def read_close(reader: asyncio.StreamReader, seen: list[Any],
                     writer: asyncio.StreamWriter | None = None) -> None:
    """Read until the client's close frame; record its code (and echo it with ``writer``)."""
    while True:
        op, data = await read_frame(reader)
        if op == 8:
            seen.append(("close", int.from_bytes(data[:2], "big")))
            if writer is not None:
                writer.write(bytes((0x88, len(data))) + data)
                await writer.drain()
            return
        seen.append((op, data))


@contextlib.asynccontextmanager
async def raw_server(script: Script | None = None, *, extra: bytes = b"",
                     accept: bytes | None = None, status: bytes = b"101 Switching Protocols",
                     answer: bool = True) -> AsyncIterator[tuple[str, list[Any]]]:
    """A hand-written server: handshake (or none, with answer=False), then ``script``."""
    seen: list[Any] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(head)
            if not answer:
                await reader.read()  # until the client gives up
                return
            found = re.search(rb"Sec-WebSocket-Key: *(\S+)", head, re.I)
            assert found is not None
            key = accept or base64.b64encode(hashlib.sha1(found.group(1) + GUID).digest())
            writer.write(b"HTTP/1.1 " + status + b"\r\nUpgrade: websocket\r\nConnection: "
                         b"Upgrade\r\nSec-WebSocket-Accept: " + key + b"\r\n" + extra + b"\r\n")
            if script is not None:
                await script(reader, writer, seen)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen


def sends_then_reads_close(frames: bytes) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: list[Any]) -> None:
        writer.write(frames)
        await read_close(reader, seen)
    return script


# --- the transport itself --------------------------------------------------------------------

def test_fast_transport_is_chosen_and_offers_no_extension(store: MetricStore) -> None:
    heads: list[bytes] = []

    async def main() -> None:
        for _ in range(2):
            async with raw_server(sends_then_reads_close(b"\x81\x02hi")) as (url, seen), \
                    client(store, "fast", url)("/x?q=1") as ws:
                assert isinstance(ws.raw, FastWsConnection)
                assert ws.extensions == [] and ws.subprotocol is None
                assert await ws.recv() == "hi"
            heads.append(seen[0])

    run(main())
    for head in heads:
        assert head.startswith(b"GET /x?q=1 HTTP/1.1\r\n")
        assert b"Sec-WebSocket-Version: 13\r\n" in head and b"Upgrade: websocket\r\n" in head
        assert b"Sec-WebSocket-Extensions" not in head
    keys = [re.search(rb"Sec-WebSocket-Key: (\S+)", h).group(1) for h in heads]  # type: ignore[union-attr]
    assert keys[0] != keys[1] and len(base64.b64decode(keys[0])) == 16


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_and_binary_echo_at_every_length_encoding(store: MetricStore, transport: str,
                                                        size: int) -> None:
    text = ("é" * size)[:size] if size < 1000 else "a" * size

    async def main() -> None:
        async with ws_server() as url, client(store, transport, url)("/echo") as ws:
            await ws.send(text)
            assert await ws.recv() == text
            await ws.send(b"\x01" * size)
            assert await ws.recv() == b"\x01" * size

    run(main())
    assert count(store, "ws_msgs_sent") == 2 and count(store, "ws_msgs_received") == 2


def test_fragmented_server_message_is_assembled(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url, client(store, transport, url)("/frag") as ws:
            assert await ws.recv() == "abcdef"

    run(main())


def test_ping_between_fragments_is_answered_with_its_payload(store: MetricStore,
                                                             transport: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: list[Any]) -> None:
        writer.write(b"\x01\x03abc" + b"\x89\x04ping" + b"\x00\x03def" + b"\x80\x03ghi")
        seen.append(await read_frame(reader))
        writer.write(b"\x82\x02\x00\xff")
        await read_close(reader, seen, writer)

    async def main() -> None:
        async with raw_server(script) as (url, seen):
            async with client(store, transport, url)("/") as ws:
                assert await ws.recv() == "abcdefghi"
                assert await ws.recv() == b"\x00\xff"
            assert seen[1] == (10, b"ping")
            assert seen[2] == ("close", 1000)

    run(main())
    assert passes_fails(store) == (0, 1)


def test_server_ping_is_answered(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url, client(store, transport, url)("/pingme") as ws:
            assert await ws.recv(timeout=5) == "answered"

    run(main())


def test_ping_waits_for_the_pong_with_its_own_payload(store: MetricStore, transport: str) -> None:
    delay = scaled(0.3)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: list[Any]) -> None:
        op, payload = await read_frame(reader)
        assert op == 9
        writer.write(b"\x8a\x04zzzz")  # an unsolicited pong first
        await asyncio.sleep(delay)
        writer.write(bytes((0x8A, len(payload))) + payload)
        await read_close(reader, seen)

    async def main() -> None:
        async with raw_server(script) as (url, _), client(store, transport, url)("/") as ws:
            ms = await ws.ping()
            assert ms >= delay * 1000 * 0.9

    run(main())
    assert count(store, "ws_ping") == 1


def test_ping_without_pong_times_out_unrecorded(store: MetricStore, transport: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: list[Any]) -> None:
        await read_close(reader, seen)  # reads the ping, never answers it

    async def main() -> None:
        async with raw_server(script) as (url, _), client(store, transport, url)("/") as ws:
            with pytest.raises(TimeoutError):
                await ws.ping(timeout=scaled(0.2))

    run(main())
    assert count(store, "ws_ping") == 0


@pytest.mark.parametrize(("code", "failed"), [(1000, False), (1001, False), (4000, True),
                                              (1011, True)])
def test_client_close_code_decides_ws_failed(store: MetricStore, transport: str, code: int,
                                             failed: bool) -> None:
    async def main() -> None:
        async with ws_server() as url:
            ws = await client(store, transport, url)("/echo")
            await ws.send("x")
            assert await ws.recv() == "x"
            await ws.close(code, "done")
            assert ws.closed and ws.raw.close_code == code
            with pytest.raises(ConnectionClosedOK if not failed else ConnectionClosedError):
                await ws.raw.recv()
            with pytest.raises(ConnectionClosedOK if not failed else ConnectionClosedError):
                await ws.send("after close")

    run(main())
    assert passes_fails(store) == ((1, 0) if failed else (0, 1))
    assert count(store, "ws_session_duration") == 1


def test_server_dropping_tcp_is_a_failed_session(store: MetricStore, transport: str) -> None:
    errors: list[tuple[str, str]] = []

    async def main() -> None:
        async with ws_server() as url:
            with pytest.raises(ConnectionClosedError):
                async with client(store, transport, url, errors)("/drop") as ws:
                    await ws.send("x")
                    await ws.recv()
            assert ws.raw.close_code == 1006

    run(main())
    assert passes_fails(store) == (1, 0)
    assert [kind for kind, _ in errors] == ["ConnectionClosedError"]
    assert "/drop" in errors[0][1]


def test_rejected_handshake_is_a_connect_error(store: MetricStore, transport: str) -> None:
    errors: list[tuple[str, str]] = []

    async def main() -> None:
        async with ws_server() as url:
            with pytest.raises(WsConnectError) as info:
                await client(store, transport, url, errors)("/forbidden")
            assert isinstance(info.value.cause, InvalidStatus)
            assert info.value.cause.response.status_code == 403

    run(main())
    assert passes_fails(store) == (1, 0) and count(store, "ws_sessions") == 0
    assert [kind for kind, _ in errors] == ["WsConnectError"]
    assert "HTTP 403" in errors[0][1]


@pytest.mark.parametrize(("extra", "accept", "status"), [
    (b"Sec-WebSocket-Extensions: permessage-deflate\r\n", None, b"101 Switching Protocols"),
    (b"", b"AAAAAAAAAAAAAAAAAAAAAAAAAAA=", b"101 Switching Protocols"),
    (b"", None, b"200 OK"),
    (b"Sec-WebSocket-Protocol: never.offered\r\n", None, b"101 Switching Protocols"),
], ids=["extension", "bad-accept", "status-200", "subprotocol"])
def test_bad_handshake_responses_are_refused(store: MetricStore, transport: str, extra: bytes,
                                            accept: bytes | None, status: bytes) -> None:
    async def main() -> None:
        async with raw_server(extra=extra, accept=accept, status=status) as (url, _):
            with pytest.raises(WsConnectError):
                await client(store, transport, url)("/")

    run(main())
    assert passes_fails(store) == (1, 0) and count(store, "ws_sessions") == 0


@pytest.mark.parametrize("frames", [b"\x81\x02\xc3\x28", b"\x01\x01\xc3\x80\x01\x28"],
                         ids=["frame", "fragments"])
def test_invalid_utf8_text_closes_with_1007(store: MetricStore, transport: str,
                                           frames: bytes) -> None:
    async def main() -> None:
        async with raw_server(sends_then_reads_close(frames)) as (url, seen):
            with pytest.raises(ConnectionClosedError) as info:
                async with client(store, transport, url)("/") as ws:
                    await ws.recv()
            assert info.value.sent is not None and info.value.sent.code == 1007
            assert seen[-1] == ("close", 1007)

    run(main())
    assert passes_fails(store) == (1, 0)


@pytest.mark.parametrize("frames", [
    b"\x81\x82\x01\x02\x03\x04" + bytes(b ^ m for b, m in zip(b"hi", b"\x01\x02", strict=True)),
    b"\xc1\x02hi",                      # reserved bit 1 set, no extension negotiated
    b"\x83\x00",                        # opcode 3 is reserved
    b"\x80\x02hi",                      # a continuation with nothing to continue
    b"\x09\x00",                        # a fragmented ping
    b"\x89\x7e\x00\x7e" + b"p" * 126,   # a ping longer than 125 bytes
    b"\x01\x01a\x81\x01b",              # a new message in the middle of a fragmented one
], ids=["masked", "reserved-bits", "opcode", "continuation", "fragmented-ping", "long-ping",
        "interleaved"])
def test_protocol_violations_close_with_1002(store: MetricStore, transport: str,
                                             frames: bytes) -> None:
    async def main() -> None:
        async with raw_server(sends_then_reads_close(frames)) as (url, seen):
            with pytest.raises(ConnectionClosedError) as info:
                async with client(store, transport, url)("/") as ws:
                    await ws.recv()
            assert info.value.sent is not None and info.value.sent.code == 1002
            assert seen[-1] == ("close", 1002)

    run(main())
    assert passes_fails(store) == (1, 0)


def test_oversize_message_closes_with_1009(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url:
            ws_client = client(store, transport, url, max_size=1000)
            async with ws_client("/big/1000") as ws:
                assert len(await ws.recv()) == 1000   # the limit itself is fine
            with pytest.raises(ConnectionClosedError) as info:
                async with ws_client("/big/1001") as ws:
                    await ws.recv()
            assert info.value.sent is not None and info.value.sent.code == 1009

    run(main())
    assert passes_fails(store) == (1, 1)


def test_oversize_fragmented_message_closes_with_1009(store: MetricStore,
                                                      transport: str) -> None:
    part = b"\x7e\x01\x90" + b"y" * 400          # 400-byte fragments: 1200 > 1000
    frames = b"\x02" + part + b"\x00" + part + b"\x80" + part

    async def main() -> None:
        async with raw_server(sends_then_reads_close(frames)) as (url, seen):
            with pytest.raises(ConnectionClosedError) as info:
                async with client(store, transport, url, max_size=1000)("/") as ws:
                    await ws.recv()
            assert info.value.sent is not None and info.value.sent.code == 1009
            assert seen[-1] == ("close", 1009)

    run(main())


def test_subprotocol_is_negotiated(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server(subprotocols=["chat.v2"]) as url:
            conn = client(store, transport, url)
            async with conn("/proto", subprotocols=["chat.v1", "chat.v2"]) as ws:
                assert ws.subprotocol == "chat.v2"
                assert await ws.recv() == "chat.v2"

    run(main())


def test_authorization_and_extra_headers_are_sent(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with raw_server(sends_then_reads_close(b"")) as (url, seen):
            conn = WsClient(ClientContext(store=store, vu_id=1,
                                          env={"WS_URL": url, "API_TOKEN": "s3cret"},
                                          options={"ws": {"transport": transport}}))
            async with conn("/", headers={"X-Trace": "7"}):
                pass
            head = seen[0].decode()
            assert "\r\nAuthorization: Bearer s3cret\r\n" in head
            assert "\r\nX-Trace: 7\r\n" in head

    run(main())


def test_open_timeout_against_a_server_that_never_answers(store: MetricStore,
                                                          transport: str) -> None:
    async def main() -> None:
        async with raw_server(answer=False) as (url, seen):
            t0 = time.perf_counter()
            with pytest.raises(WsConnectError) as info:
                await client(store, transport, url, open_timeout=scaled(0.3))("/")
            elapsed = time.perf_counter() - t0
            assert isinstance(info.value.cause, TimeoutError)
            assert scaled(0.25) <= elapsed < scaled(3)
            assert seen  # the upgrade request did arrive

    run(main())
    assert passes_fails(store) == (1, 0)


def test_close_timeout_against_a_server_that_never_closes(store: MetricStore,
                                                          transport: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: list[Any]) -> None:
        await reader.read()  # reads everything, answers nothing, until the client aborts

    async def main() -> None:
        async with raw_server(script) as (url, _):
            ws = await client(store, transport, url, close_timeout=scaled(0.2))("/")
            t0 = time.perf_counter()
            await ws.close()
            assert time.perf_counter() - t0 < scaled(3)
            assert ws.raw.close_code == 1006

    run(main())
    assert passes_fails(store) == (1, 0)


def test_max_queue_pauses_reading_and_loses_nothing(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url, client(store, transport, url, max_queue=4)("/push") as ws:
            await asyncio.sleep(scaled(0.1))  # let the queue fill up to its limit
            assert [await ws.recv(timeout=5) for _ in range(100)] == [str(i) for i in range(100)]

    run(main())


# --- options ---------------------------------------------------------------------------------

def test_transport_option_is_validated() -> None:
    problems = validate_ws_options({"transport": "uvloop"})
    assert problems == ["transport='uvloop': expected 'websockets' (the default) or 'fast' "
                        "(the lean client, no compression); fix the value or remove it"]
    assert validate_ws_options({"transport": "fast"}) == []
    assert validate_ws_options({"transport": "websockets", "compression": "deflate"}) == []
    both = validate_ws_options({"transport": "fast", "compression": "deflate"})
    assert len(both) == 1
    assert "compression='deflate' with transport='fast'" in both[0]
    assert "drop compression or use transport='websockets'" in both[0]


def test_compression_asked_with_the_fast_transport_is_a_config_error(store: MetricStore) -> None:
    with pytest.raises(ConfigError, match="compression='deflate' with transport='fast'"):
        WsClient(ClientContext(store=store, vu_id=1, options={"ws": {
            "transport": "fast", "compression": "deflate"}}))
    with pytest.raises(ConfigError, match="drop compression or use transport='websockets'"):
        client(store, "fast")("/echo", compression="deflate")
    client(store, "websockets")("/echo", compression="deflate")  # fine there


# --- through the runner ------------------------------------------------------------------------

@pytest.fixture
def threaded_ws_server() -> Iterator[str]:
    """The echo server in its own thread and loop (the runner runs its own loop)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    def serve_forever() -> None:
        async def main() -> None:
            async with ws_server() as url:
                state["url"] = url
                state["stop"] = asyncio.Event()
                ready.set()
                await state["stop"].wait()

        loop.run_until_complete(main())

    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield str(state["url"])
    loop.call_soon_threadsafe(state["stop"].set)
    thread.join(10)


def test_kept_fast_connections_across_iterations_in_a_load_run(threaded_ws_server: str) -> None:
    from pytest_novaload.engine.runner import LoadRunner
    from pytest_novaload.spec import LoadSpec

    kinds: list[str] = []

    async def user(vu: Any) -> None:
        ws = await vu.ws("/echo", keep=True)
        kinds.append(type(ws.raw).__name__)
        assert await ws.request({"id": vu.iteration}, match={"id": vu.iteration}) == {
            "id": vu.iteration}

    plan = LoadSpec.parse({"executor": "per-vu-iterations", "vus": 2, "iterations": 5}).plan()
    result = LoadRunner(plan, user, env={"WS_URL": threaded_ws_server},
                        client_options={"ws": {"transport": "fast"}}).run()
    store = result.store
    assert set(kinds) == {"FastWsConnection"} and len(kinds) == 10
    assert count(store, "ws_sessions") == 2           # one connection per VU, kept
    assert count(store, "ws_msg_latency") == 10
    assert passes_fails(store) == (0, 2)              # both closed cleanly at VU end
    assert passes_fails(store, "iteration_failed") == (0, 10)


def test_a_message_arriving_as_recv_is_cancelled_is_kept(store: MetricStore) -> None:
    """A timeout (the Deadline's cancel) landing after the message resolved the waiter but
    before recv resumed must not lose that message."""
    async def main() -> None:
        async with raw_server(sends_then_reads_close(b"")) as (url, _), \
                client(store, "fast", url)("/") as ws:
            conn = ws.raw
            assert isinstance(conn, FastWsConnection)
            task = asyncio.create_task(conn.recv())
            await asyncio.sleep(0)                 # recv now waits on its future
            conn.data_received(b"\x81\x01m")       # the message resolves it...
            task.cancel()                          # ...and the cancel comes first
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await ws.recv(timeout=1) == "m"

    run(main())


def test_keepalive_ping_without_pong_closes_with_1011(store: MetricStore,
                                                      transport: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: list[Any]) -> None:
        await read_close(reader, seen)  # records the keepalive pings, answers none

    async def main() -> None:
        async with raw_server(script) as (url, seen):
            conn = client(store, transport, url, ping_interval=scaled(0.1),
                          ping_timeout=scaled(0.2))
            with pytest.raises(ConnectionClosedError) as info:
                async with conn("/") as ws:
                    await ws.recv(timeout=scaled(5))
            assert info.value.sent is not None and info.value.sent.code == 1011
            assert seen[1][0] == 9 and seen[-1] == ("close", 1011)

    run(main())
    assert passes_fails(store) == (1, 0)


def test_keepalive_pings_answered_keep_the_session(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url:
            conn = client(store, transport, url, ping_interval=scaled(0.05),
                          ping_timeout=scaled(0.5))
            async with conn("/echo") as ws:
                await asyncio.sleep(scaled(0.4))  # several keepalive pings, all answered
                assert await ws.request("still here") == "still here"

    run(main())
    assert passes_fails(store) == (0, 1)


@pytest.fixture
def trusted_cert(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 that the default SSL context trusts here."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    return cert, key


def test_wss_through_tls(store: MetricStore, transport: str,
                         trusted_cert: tuple[str, str]) -> None:
    import ssl

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*trusted_cert)

    async def main() -> None:
        async with ws_server(ssl=server_ctx) as url:
            wss = url.replace("ws://", "wss://")
            async with client(store, transport, wss)("/echo") as ws:
                assert await ws.request("over tls") == "over tls"

    run(main())
    assert passes_fails(store) == (0, 1)


def test_the_marker_option_runs_the_fast_transport_end_to_end(
        pytester: pytest.Pytester, threaded_ws_server: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WS_URL", threaded_ws_server)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.load(executor="per-vu-iterations", vus=2, iterations=3,
                          ws={"transport": "fast"},
                          thresholds={"ws_failed": ["rate==0"], "ws_sessions": ["count==2"],
                                      "ws_msgs_received": ["count==6"],
                                      "iteration_failed": ["rate==0"]})
        def test_fast(load):
            async def user(vu):
                ws = await vu.ws("/echo", keep=True)
                assert type(ws.raw).__name__ == "FastWsConnection"
                assert await ws.request({"n": vu.iteration}, match={"n": vu.iteration})
            load.run(user)

        @pytest.mark.load(executor="per-vu-iterations", vus=1, iterations=1,
                          ws={"transport": "fast"}, thresholds={"ws_sessions": ["count==2"]})
        def test_threshold_fails(load):
            async def user(vu):
                async with vu.ws("/echo") as ws:
                    await ws.send("x")
            load.run(user)

        @pytest.mark.load(vus=1, iterations=1, ws={"transport": "fastest"})
        def test_bad_transport(load):
            load.run(lambda vu: None)
    """)
    result = pytester.runpytest("-p", "no:xdist", "-p", "no:cacheprovider",
                                "--continue-on-collection-errors", "--load-progress", "off",
                                "--load-results=off")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*transport='fastest': expected 'websockets' (the default) "
                                 "or 'fast'*"])
