"""An HTTP/1.1 server that answers every request after a fixed delay (uvloop + httptools).

    python bench/_delay_server.py PORT DELAY_MS          (listens on 127.0.0.1 only)

`GET /_held` answers at once with the p50/p99/max (ms) and count of how long the server
actually held the requests since the previous `/_held` (its timers fire late by up to ~1 ms
under uvloop): the part of a client's latency that is the server's own.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import cast

import httptools
import uvloop


def main() -> None:
    port, delay = int(sys.argv[1]), float(sys.argv[2]) / 1000.0
    body = b'{"ok":true}'
    ok = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
          % (len(body), body))
    held: list[float] = []

    def held_stats() -> bytes:
        xs = sorted(held)
        held.clear()

        def q(p: float) -> float:
            return round(xs[min(len(xs) - 1, int(len(xs) * p))] * 1000, 3) if xs else 0.0

        out = json.dumps({"count": len(xs), "p50": q(0.5), "p99": q(0.99),
                          "max": q(1.0)}).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out)

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)
            self.parser = httptools.HttpRequestParser(self)
            self.url = b""
            self.loop = asyncio.get_running_loop()

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

        def on_url(self, url: bytes) -> None:
            self.url = url

        def on_message_complete(self) -> None:
            if self.url == b"/_held":
                self.transport.write(held_stats())
                return
            self.loop.call_later(delay, self.answer, time.perf_counter())

        def answer(self, t0: float) -> None:
            if len(held) < 2_000_000:
                held.append(time.perf_counter() - t0)
            if not self.transport.is_closing():
                self.transport.write(ok)

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(
            Server, "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()

    uvloop.run(serve())


if __name__ == "__main__":
    main()
