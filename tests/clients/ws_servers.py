"""Servers and helpers of the fast WebSocket transport tests (test_ws_fast*.py).

`ws_server`: a websockets server on 127.0.0.1 whose paths script what a test needs;
`raw_server`: a hand-written one for what websockets' server never sends (invalid UTF-8,
masked or reserved frames, pings between fragments, a silent peer), recording what it reads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from pytest_novaload.clients.base import ClientContext
from pytest_novaload.clients.websocket import WsClient
from pytest_novaload.metrics import MetricStore
from tests.timing import scaled

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, list[Any]], Awaitable[None]]


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
