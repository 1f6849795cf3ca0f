"""The pure-Python response parser (httptools' callbacks), fed bytes directly: no sockets."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_novaload.clients.http.parser import ParserError, PyResponseParser


@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_pure_parser_byte_by_byte(step: int) -> None:
    seen: dict[str, Any] = {"headers": [], "body": b"", "done": 0}

    class Sink:
        def on_header(self, name: bytes, value: bytes) -> None:
            seen["headers"].append((name, value))

        def on_headers_complete(self) -> None:
            seen["headers_done"] = True

        def on_body(self, chunk: bytes) -> None:
            seen["body"] += chunk

        def on_message_complete(self) -> None:
            seen["done"] += 1

    parser = PyResponseParser(Sink())
    data = (b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A:  b \r\n\r\n"
            b"5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nTrailer: x\r\n\r\n"
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    for i in range(0, len(data), step):
        parser.feed_data(data[i:i + step])
    assert seen["done"] == 3  # the 100, the chunked 200, the HTTP/1.0 200
    assert seen["body"] == b"hello!ok"
    assert (b"X-A", b"b") in seen["headers"]
    assert parser.get_http_version() == "1.0" and not parser.should_keep_alive()


def test_pure_parser_reads_framing_without_header_callbacks() -> None:
    class Sink:  # what the connection gives it: no on_header, no on_status
        def __init__(self) -> None:
            self.body = b""
            self.done = 0

        def on_headers_complete(self) -> None:
            pass

        def on_body(self, chunk: bytes) -> None:
            self.body += chunk

        def on_message_complete(self) -> None:
            self.done += 1

    sink = Sink()
    parser = PyResponseParser(sink)
    parser.feed_data(b"HTTP/1.1 200 OK\r\nX-Content-Length: 99\r\ncontent-LENGTH:  3 \r\n"
                     b"Connection: close\r\n\r\nabc")
    assert (sink.body, sink.done, parser.should_keep_alive()) == (b"abc", 1, False)
    parser = PyResponseParser(sink)
    with pytest.raises(ParserError, match="Content-Length"):
        parser.feed_data(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n")
