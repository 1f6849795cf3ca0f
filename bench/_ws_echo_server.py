"""A fast WebSocket echo server for `ws_rps.py`: raw `asyncio.Protocol` on uvloop.

Echoes every text/binary frame unmasked, answers pings, closes on close. Written by hand
(RFC 6455 subset, no extensions, no fragmentation) so that the server costs far less per
message than the clients under test; several processes share the port with SO_REUSEPORT.

    python bench/_ws_echo_server.py PORT [PROCESSES]      # loopback only
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import sys

from websockets.speedups import apply_mask  # type: ignore[import-not-found]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Echo(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.open = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        assert self.transport is not None
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            key = b""
            for line in bytes(buf[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept
                                 + b"\r\n\r\n")
            del buf[:end + 4]
            self.open = True
        out = []
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n = int.from_bytes(buf[2:4], "big")
                pos = 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n = int.from_bytes(buf[2:10], "big")
                pos = 10
            if len(buf) < pos + 4 + n:
                break
            payload = apply_mask(bytes(buf[pos + 4:pos + 4 + n]), bytes(buf[pos:pos + 4]))
            del buf[:pos + 4 + n]
            op = b0 & 0x0F
            if op == 9:
                b0 = 0x8A
            elif op == 8:
                self.transport.write(bytes([0x88, len(payload)]) + payload)
                self.transport.close()
                return
            elif op == 10:
                continue
            if n < 126:
                head = bytes([b0, n])
            elif n < 65536:
                head = bytes([b0, 126]) + n.to_bytes(2, "big")
            else:
                head = bytes([b0, 127]) + n.to_bytes(8, "big")
            out.append(head + payload)
        if out:
            self.transport.write(b"".join(out))


async def serve(port: int) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    server = await asyncio.get_running_loop().create_server(Echo, sock=sock)
    await server.serve_forever()


def main() -> None:
    import uvloop

    port = int(sys.argv[1])
    procs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    for _ in range(procs - 1):
        if os.fork() == 0:
            break
    uvloop.run(serve(port))


if __name__ == "__main__":
    main()
