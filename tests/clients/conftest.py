"""Loopback servers and a metric store for the client tests.

`http_server`: a scripted HTTP/1.1 server on 127.0.0.1 (asyncio in a background thread) whose
routes exercise every framing the client must read; it counts requests and connections.
Other client tests may ADD fixtures here.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Received:
    """One request as the server read it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)


def _response(status: int, body: bytes = b"", *, reason: str = "OK",
              headers: dict[str, str] | None = None, length: bool = True) -> bytes:
    head = [f"HTTP/1.1 {status} {reason}"]
    for k, v in (headers or {}).items():
        head.append(f"{k}: {v}")
    if length:
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class LoopbackHTTPServer:
    """Routes (by path): /echo (JSON of the request), /json, /chunked, /close, /large?size=N,
    /status/<code>, /eof (body ends at close), /reset (RST), /hang (never answers),
    /slowbody (headers, then the body after 0.3 s), /redirect (302 to /echo), /drop (closes
    the keep-alive socket after answering), /garbage (not HTTP), /text-latin1."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.AbstractServer | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def served(self) -> int:
        return len(self.requests)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="loopback-http", daemon=True)
        self._thread.start()
        ready.wait(5)

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        assert self._thread is not None
        self._thread.join(5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                body = b""
                if "content-length" in headers:
                    body = await reader.readexactly(int(headers["content-length"]))
                req = Received(method, target, headers, body)
                self.requests.append(req)
                keep = await self._route(req, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    writer.close()
                    return
        except asyncio.CancelledError:
            return  # server shutdown (a cancelled handler would log an error on 3.11)
        finally:
            self._writers.discard(writer)

    async def _route(self, req: Received, writer: asyncio.StreamWriter) -> bool:
        path = req.path
        head_only = req.method == "HEAD"

        def send(data: bytes) -> None:
            if head_only:
                data = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            writer.write(data)

        if path == "/echo" or path.startswith("/echo/"):
            payload = {"method": req.method, "path": req.path, "query": req.query,
                       "headers": req.headers, "body": req.body.decode("utf-8", "replace")}
            send(_response(200, json.dumps(payload).encode(),
                           headers={"Content-Type": "application/json"}))
        elif path == "/json":
            send(_response(200, b'{"ok": true}', headers={"Content-Type": "application/json"}))
        elif path == "/text-latin1":
            send(_response(200, "café".encode("latin-1"),
                           headers={"Content-Type": "text/plain; charset=iso-8859-1"}))
        elif path == "/chunked":
            parts = [b"hello ", b"chunked ", b"world"]
            data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                         b"Content-Type: text/plain\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)  # make the client see the body in several packets
            writer.write(data[:7])
            await writer.drain()
            await asyncio.sleep(0.01)
            writer.write(data[7:])
        elif path == "/close":
            send(_response(200, b"bye", headers={"Connection": "close"}))
            await writer.drain()
            return False
        elif path == "/large":
            size = int(req.query.get("size", ["1000000"])[0])
            send(_response(200, bytes(i % 251 for i in range(size))))
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            if code in (204, 304):
                send(_response(code, reason="No Content", length=False))
            else:
                send(_response(code, b"status", reason="Whatever"))
        elif path == "/eof":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
            await writer.drain()
            return False
        elif path == "/reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        elif path == "/hang":
            await asyncio.sleep(3600)
        elif path == "/slowbody":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.write(b"cd")
        elif path == "/redirect":
            send(_response(302, b"", reason="Found", headers={"Location": "/echo?from=redirect"}))
        elif path == "/drop":  # a keep-alive response, then the server drops the idle socket
            send(_response(200, b"dropped"))
            await writer.drain()
            await asyncio.sleep(0.05)
            return False
        elif path == "/garbage":
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            await writer.drain()
            return False
        else:
            send(_response(404, b"not found", reason="Not Found"))
        await writer.drain()
        return True


@pytest.fixture
def http_server() -> Iterator[LoopbackHTTPServer]:
    """A fresh scripted loopback HTTP server for one test."""
    server = LoopbackHTTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def free_port() -> int:
    """A loopback port with nothing listening on it (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def metric_store() -> Any:
    """A fresh MetricStore (pytest_novaload.metrics)."""
    from pytest_novaload.metrics import MetricStore

    return MetricStore()


# --- PostgreSQL (added by the ws/pg client tests) -------------------------------------------


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (novacron_sim.pg; skips when not installed)."""
    from novacron_sim.pg import PostgresNotFound, start_postgres

    try:
        cluster = start_postgres()
    except PostgresNotFound as exc:
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_dsn(pg_cluster: Any) -> str:
    """DSN of the cluster's `novacron` database (left empty: each test makes its own tables)."""
    dsn: str = pg_cluster.dsn
    return dsn



# --- WebSocket transports (added by the fast ws transport tests) ----------------------------


@pytest.fixture(params=["websockets", "fast"])
def transport(request: pytest.FixtureRequest) -> str:
    """``ws={"transport": ...}``: a connecting test runs on both, one expectation for both
    (the fast transport must behave as websockets does)."""
    name: str = request.param
    return name
