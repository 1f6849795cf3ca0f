"""A minimal uvloop + httptools HTTP/1.1 server: the bench target when nginx is absent.

    python bench/_target_server.py PORT PATH BODY     (listens on 127.0.0.1 only)
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

import httptools
import uvloop


def main() -> None:
    port, path, body = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()
    ok = (b"HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
            self.parser = httptools.HttpRequestParser(self)
            self.url = b""

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

        def on_url(self, url: bytes) -> None:
            self.url = url

        def on_message_complete(self) -> None:
            self.transport.write(ok if self.url.split(b"?", 1)[0] == path else missing)

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(
            Server, "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()

    uvloop.run(serve())


if __name__ == "__main__":
    main()
