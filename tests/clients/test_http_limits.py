"""Response body limits against a hostile loopback server: an endless chunked body, a 100 MB
body, an endless head, compressed bodies that inflate to 100 MB (zip bombs). The generator's
peak memory stays bounded and the failure is classified (BodyTooLarge in http_req_failed), on
both transports and both parsers; discard_bodies keeps nothing but still counts the bytes."""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_novaload.clients.base import ClientContext
from pytest_novaload.clients.http import HttpClient, validate_http_options
from pytest_novaload.clients.http.options import DEFAULT_MAX_BODY
from pytest_novaload.metrics import MetricStore

MB = 1024 * 1024
_BLOCK = b"x" * (64 * 1024)
_CHUNK = b"%x\r\n" % len(_BLOCK) + _BLOCK + b"\r\n"


def _bomb(wbits: int, size: int = 100 * MB) -> bytes:
    """``size`` zero bytes compressed (gzip: wbits 31, zlib: 15, raw deflate: -15), made
    block by block: about 100 KB on the wire."""
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(MB)
    return b"".join([*(c.compress(zeros) for _ in range(size // MB)), c.flush()])


BOMBS = {"/bomb-gzip": (b"gzip", _bomb(31)), "/bomb-deflate": (b"deflate", _bomb(15)),
         "/bomb-rawdeflate": (b"deflate", _bomb(-15)),
         "/gzip-small": (b"gzip", zlib.compress(b"y" * 3000, wbits=31))}


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            if path == "/endless":  # chunked, never ends
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                while True:
                    writer.write(_CHUNK)
                    await writer.drain()
            elif path.startswith("/huge"):  # Content-Length: 100 MB, all of it sent
                size = 100 * MB
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                for _ in range(size // len(_BLOCK)):
                    writer.write(_BLOCK)
                    await writer.drain()
            elif path == "/eof":  # no length: body until close, never closed
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                while True:
                    writer.write(_BLOCK)
                    await writer.drain()
            elif path in BOMBS:  # compressed, sent whatever was asked
                encoding, body = BOMBS[path]
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\n"
                             b"Content-Length: %d\r\n\r\n" % (encoding, len(body)) + body)
                await writer.drain()
            elif path == "/endless-head":
                writer.write(b"HTTP/1.1 200 OK\r\n")
                while True:
                    writer.write(b"X-Pad: " + _BLOCK[:1000] + b"\r\n")
                    await writer.drain()
            else:  # /small: 2 KB
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2048\r\n\r\n" + _BLOCK[:2048])
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, OSError):
        pass
    finally:
        writer.close()


@pytest.fixture(scope="module")
def hostile_url() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []

    async def start() -> None:
        server = await asyncio.start_server(_serve, "127.0.0.1", 0)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()),
                                              loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{port[0]}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(field)


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pytest.skip("cannot reset the peak RSS (/proc/self/clear_refs)")


def _fetch(url: str, path: str, *, loop: str = "asyncio", call: dict[str, str] | None = None,
           read: bool = False, **opts: Any) -> tuple[Any, MetricStore]:
    """One GET (``call``: the call's own headers); ``read``: the body read in the same loop
    (as a scenario reads it), returned as (response, content or the exception, store)."""
    store = MetricStore()

    async def main() -> Any:
        client = HttpClient(ClientContext(store=store, vu_id=1, env={}, options={"http": opts}))
        try:
            r = await asyncio.wait_for(client.get(url + path, timeout=20, headers=call), 30)
            if read:
                try:
                    return r, r.content
                except Exception as exc:
                    return r, exc
            return r
        finally:
            await client.aclose()

    if loop == "uvloop":
        import uvloop

        return uvloop.run(main()), store
    return asyncio.run(main()), store


FLAVORS = [pytest.param({"parser": "auto"}, id="fast-httptools"),
           pytest.param({"parser": "python"}, id="fast-pure"),
           pytest.param({"transport": "httpx"}, id="httpx")]


@pytest.mark.parametrize("opts", FLAVORS)
@pytest.mark.parametrize("path", ["/endless", "/huge", "/eof"])
def test_body_over_the_limit_fails_fast_and_keeps_nothing(hostile_url: str, path: str,
                                                          opts: dict[str, Any]) -> None:
    _reset_peak()
    before = _rss("VmRSS")
    t0 = time.monotonic()
    response, store = _fetch(hostile_url, path, **opts)
    elapsed = time.monotonic() - t0
    grown = _rss("VmHWM") - before
    assert response.status_code == 0
    assert response.error.startswith("BodyTooLarge: response body over 16777216 bytes")
    assert response.content == b""
    # The default limit (16 MiB) is what a VU may hold: a whole 100 MB body (plus the join
    # of its chunks) would take 200 MB, an endless one everything until the 20 s timeout.
    assert grown < 80 * MB, f"peak RSS grew {grown / MB:.0f} MB"
    assert elapsed < 15, "the read stops at the limit, not at the timeout"
    failed = store.aggregate("http_req_failed", {"error": "BodyTooLarge"}).stats(1.0)
    assert failed["passes"] == 1
    received = store.aggregate("data_received").value("count")
    assert DEFAULT_MAX_BODY < received < DEFAULT_MAX_BODY + 16 * MB


ASKED = [pytest.param({"headers": {"Accept-Encoding": "gzip, deflate"}}, {}, id="option"),
         pytest.param({}, {"accept-encoding": "gzip"}, id="call")]


@pytest.mark.parametrize("opts", FLAVORS)
@pytest.mark.parametrize(("option", "call"), ASKED)
@pytest.mark.parametrize("path", ["/bomb-gzip", "/bomb-deflate", "/bomb-rawdeflate"])
def test_a_compressed_body_over_the_limit_once_decoded_is_a_failed_request(
        hostile_url: str, path: str, opts: dict[str, Any], option: dict[str, Any],
        call: dict[str, str]) -> None:
    """The user asked for compression (their own Accept-Encoding): the limit holds for the
    decoded body, which is never inflated past it."""
    _reset_peak()
    before = _rss("VmRSS")
    (response, content), store = _fetch(hostile_url, path, call=call or None, read=True,
                                        **option, **opts)
    grown = _rss("VmHWM") - before
    assert response.status_code == 0, (response, content)
    assert response.error.startswith("BodyTooLarge: response body over 16777216 bytes"), \
        response.error
    assert content == b""
    assert grown < 60 * MB, f"peak RSS grew {grown / MB:.0f} MB"
    failed = store.aggregate("http_req_failed", {"error": "BodyTooLarge"}).stats(1.0)
    assert failed["passes"] == 1


@pytest.mark.parametrize("opts", FLAVORS)
def test_a_compressed_body_under_the_limit_is_decoded(hostile_url: str,
                                                      opts: dict[str, Any]) -> None:
    for call in ({"Accept-Encoding": "gzip"}, None):
        (response, content), store = _fetch(hostile_url, "/gzip-small", call=call, read=True,
                                            **opts)
        assert response.status_code == 200 and content == b"y" * 3000, (call, content)
        assert store.aggregate("http_req_failed").stats(1.0)["passes"] == 0
    (response, content), _ = _fetch(hostile_url, "/gzip-small", read=True, max_body_size=2999,
                                    call={"Accept-Encoding": "gzip"}, **opts)
    assert response.error.startswith("BodyTooLarge: response body over 2999 bytes"), response


def test_an_unasked_compressed_body_is_never_inflated_past_the_limit(hostile_url: str) -> None:
    """A server that compresses without being asked (no Accept-Encoding sent, the fast
    transport's default): the request is the server's answer as it came; reading ``content``
    inflates at most the limit, then raises BodyTooLarge (an httpx.DecodingError) in the
    scenario, which counts it as the iteration's failure."""
    import httpx

    from pytest_novaload.clients.http.response import BodyTooLarge

    _reset_peak()
    before = _rss("VmRSS")
    (response, content), _ = _fetch(hostile_url, "/bomb-gzip", read=True)
    assert _rss("VmHWM") - before < 60 * MB
    assert response.status_code == 200
    assert isinstance(content, BodyTooLarge) and isinstance(content, httpx.DecodingError)
    assert "over 16777216 bytes once decoded (gzip)" in str(content), str(content)


@pytest.mark.parametrize("opts", FLAVORS)
def test_max_body_size_is_settable(hostile_url: str, opts: dict[str, Any]) -> None:
    response, _ = _fetch(hostile_url, "/small", max_body_size=1024, **opts)
    assert response.error.startswith("BodyTooLarge: response body over 1024 bytes")
    response, _ = _fetch(hostile_url, "/small", max_body_size=2048, **opts)
    assert response.status_code == 200 and len(response.content) == 2048


@pytest.mark.parametrize("opts", FLAVORS)
def test_discard_bodies_keeps_nothing_but_counts_bytes(hostile_url: str,
                                                       opts: dict[str, Any]) -> None:
    response, store = _fetch(hostile_url, "/small", discard_bodies=True, **opts)
    assert response.status_code == 200
    assert response.content == b""
    assert store.aggregate("data_received").value("count") > 2048
    assert store.aggregate("http_req_failed").stats(1.0)["passes"] == 0


def test_discarded_bodies_still_have_the_limit(hostile_url: str) -> None:
    response, _ = _fetch(hostile_url, "/endless", discard_bodies=True, max_body_size=MB)
    assert response.error.startswith("BodyTooLarge")


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_endless_head_is_a_protocol_error(hostile_url: str, loop: str) -> None:
    _reset_peak()
    before = _rss("VmRSS")
    response, _ = _fetch(hostile_url, "/endless-head", loop=loop)
    assert response.status_code == 0
    assert "RemoteProtocolError" in response.error
    assert _rss("VmHWM") - before < 40 * MB


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "16MiB", 2**41, 10**400, None])
def test_max_body_size_validation(value: object) -> None:
    problems = validate_http_options({"max_body_size": value})
    assert len(problems) == 1 and problems[0].startswith("max_body_size=")
    assert "16 MiB" in problems[0]


def test_discard_bodies_validation() -> None:
    assert validate_http_options({"discard_bodies": "yes"}) == [
        "discard_bodies='yes': expected True or False"]
    assert validate_http_options({"discard_bodies": True, "max_body_size": 1}) == []
