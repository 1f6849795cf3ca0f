"""Python cost of one `vu.http` request, with the kernel taken out.

Each connection gets an in-memory transport that answers every write with a canned nginx
response on the next loop iteration, so what is timed is our code plus the event loop:
request bytes, the future, parsing, the Response and the five metric samples. The peer is a
bare asyncio.Protocol that only waits for Content-Length bytes. Best of --repeat runs.

    python bench/http_overhead.py [--loop uvloop|asyncio] [--parser auto|python]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from pytest_novaload.clients.base import ClientContext
from pytest_novaload.clients.http import HttpClient
from pytest_novaload.clients.http.fast import Connection
from pytest_novaload.metrics import MetricStore

RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Fri, 27 Nov 2026 07:00:00 GMT\r\n"
            b"Content-Type: application/json\r\nContent-Length: 52\r\n"
            b"Connection: keep-alive\r\n\r\n"
            b'{"ok":true,"id":42,"name":"vm-42","state":"running"}')
TASKS = 50


class EchoTransport:
    """Answers every write with RESPONSE, as a server would, minus the sockets."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: Any) -> None:
        self.loop = loop
        self.protocol = protocol

    def write(self, data: bytes) -> None:
        self.loop.call_soon(self.protocol.data_received, RESPONSE)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


async def ours(requests: int, parser: str) -> float:
    loop = asyncio.get_running_loop()
    store = MetricStore()
    clients = []
    for i in range(TASKS):
        client = HttpClient(ClientContext(store=store, vu_id=i,
                                          env={"API_URL": "http://127.0.0.1:8080"},
                                          options={"http": {"parser": parser}}))
        conn = Connection(loop, parser == "python")
        conn.connection_made(EchoTransport(loop, conn))  # type: ignore[arg-type]
        client.fast_transport.release(("127.0.0.1", 8080), conn)  # its (fake) keep-alive connection
        clients.append(client)
    per = requests // TASKS

    async def vu(client: HttpClient) -> None:
        for _ in range(per):
            await client.get("/json")

    t0 = time.perf_counter()
    await asyncio.gather(*(vu(c) for c in clients))
    elapsed = time.perf_counter() - t0
    assert store.aggregate("http_reqs").value("count") == per * TASKS
    return elapsed / (per * TASKS) * 1e6


class Bare(asyncio.Protocol):
    """The least a client can do: wait for the head, then Content-Length bytes."""

    def __init__(self) -> None:
        self.buf = b""
        self.waiter: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        at = self.buf.find(b"Content-Length: ")
        length = int(self.buf[at + 16:self.buf.find(b"\r\n", at)])
        if len(self.buf) >= end + 4 + length and self.waiter is not None:
            self.buf = b""
            self.waiter.set_result(None)


async def bare(requests: int, parser: str) -> float:
    loop = asyncio.get_running_loop()
    request = b"GET /json HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
    per = requests // TASKS

    async def vu() -> None:
        protocol = Bare()
        transport = EchoTransport(loop, protocol)
        for _ in range(per):
            protocol.waiter = loop.create_future()
            transport.write(request)
            await protocol.waiter

    t0 = time.perf_counter()
    await asyncio.gather(*(vu() for _ in range(TASKS)))
    return (time.perf_counter() - t0) / (per * TASKS) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    ap.add_argument("--parser", choices=("auto", "python"), default="auto")
    ap.add_argument("--requests", type=int, default=40_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    run: Callable[[Coroutine[Any, Any, float]], float] = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        run = uvloop.run
    best = {"bare": float("inf"), "ours": float("inf")}
    for _ in range(args.repeat):
        best["bare"] = min(best["bare"], run(bare(args.requests, args.parser)))
        best["ours"] = min(best["ours"], run(ours(args.requests, args.parser)))
    print(f"{args.loop}, {args.parser} parser, best of {args.repeat} x {args.requests:,} "
          f"requests: bare protocol {best['bare']:.2f} us/request, vu.http "
          f"{best['ours']:.2f} us/request")


if __name__ == "__main__":
    main()
