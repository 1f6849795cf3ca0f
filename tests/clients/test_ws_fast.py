"""vu.ws with ``ws={"transport": "fast"}``: sessions, handshakes, options, the runner.

Most tests run on both transports (the ``transport`` fixture) with one expectation: the fast
client must behave as websockets does (close codes, exceptions, metrics). Frames:
test_ws_fast_frames.py; servers: ws_servers.py.
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from pytest_novaload.clients.base import ClientContext
from pytest_novaload.clients.websocket import WsClient, WsConnectError, validate_ws_options
from pytest_novaload.clients.ws_fast import FastWsConnection
from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import MetricStore
from tests.clients.ws_servers import (
    client,
    count,
    passes_fails,
    raw_server,
    run,
    sends_then_reads_close,
    ws_server,
)
from tests.timing import scaled


@pytest.fixture
def store(metric_store: MetricStore) -> MetricStore:
    return metric_store


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


def test_user_info_in_the_url_is_sent_as_basic_auth(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with raw_server(sends_then_reads_close(b"")) as (url, seen):
            with_user = url.replace("ws://", "ws://user:p%40ss@")
            async with client(store, transport, with_user)("/"):
                pass
            head = seen[0].decode()
            assert "\r\nAuthorization: Basic dXNlcjpwQHNz\r\n" in head  # user:p@ss
            assert "p%40ss" not in head

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
