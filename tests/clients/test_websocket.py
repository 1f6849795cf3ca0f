"""vu.ws against a real websockets server on 127.0.0.1: sessions, messages, round trips, pings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosedError

from pytest_novaload.clients.base import ClientContext
from pytest_novaload.clients.websocket import (
    WsClient,
    WsConnectError,
    auto_local_addr,
    resolve_ws_url,
    validate_ws_options,
)
from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import MetricStore


async def _handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else "/"
    if path.startswith("/echo"):
        async for msg in ws:
            await ws.send(msg)
    elif path == "/push":  # {"id": n, "push": k} -> k pushed messages, then the reply
        async for msg in ws:
            req = json.loads(msg)
            for seq in range(req.get("push", 0)):
                await ws.send(json.dumps({"type": "push", "seq": seq}))
            await ws.send(json.dumps({"type": "reply", "id": req["id"]}))
    elif path == "/headers":
        auth = ws.request.headers.get("Authorization") if ws.request is not None else None
        await ws.send(json.dumps({"authorization": auth}))
        await ws.wait_closed()
    elif path == "/bye":  # two messages, then a normal close from the server
        await ws.send("one")
        await ws.send("two")
        await ws.close(1000)
    elif path == "/abort":  # an error close from the server
        await ws.close(1011, "boom")


@contextlib.asynccontextmanager
async def ws_server() -> AsyncIterator[str]:
    async with serve(_handler, "127.0.0.1", 0) as server:  # compression offered by the server
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 10))

ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture
def store(metric_store: MetricStore) -> MetricStore:
    """The shared conftest's fresh MetricStore, under a short name."""
    return metric_store


def fast_or_not(transport: str) -> dict[str, Any]:
    return {"ws": {"transport": transport}}


def client_for(store: MetricStore, url: str, transport: str = "websockets",
               **env: str) -> WsClient:
    return WsClient(ClientContext(store=store, vu_id=1, env={"WS_URL": url, **env},
                                  options=fast_or_not(transport)))


def value(store: MetricStore, metric: str, agg: str, **tags: str) -> float:
    return store.aggregate(metric, tags).value(agg)


def passes_fails(store: MetricStore, metric: str, **tags: str) -> tuple[int, int]:
    stats = store.aggregate(metric, tags).stats(1.0)
    return int(stats["passes"]), int(stats["fails"])


def test_session_records_connect_messages_and_clean_close(store: MetricStore,
                                                          transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url:
            client = client_for(store, url, transport)
            async with client("/echo?x=1") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                await ws.send({"a": [1, 2]})
                assert await ws.recv_json() == {"a": [1, 2]}
                await ws.send(b"\x00\x01")
                assert await ws.recv(timeout=5) == b"\x00\x01"
            assert ws.closed
            await client.aclose()

    run(main())
    assert set(store.series("ws_sessions")) == {(("name", "/echo"),)}
    assert value(store, "ws_sessions", "count", name="/echo") == 1
    assert value(store, "ws_connecting", "count") == 1
    assert value(store, "ws_session_duration", "count") == 1
    assert value(store, "ws_msgs_sent", "count") == 3
    assert value(store, "ws_msgs_received", "count") == 3
    assert passes_fails(store, "ws_failed") == (0, 1)


def test_every_ws_metric_is_defined_by_the_client(store: MetricStore) -> None:
    client_for(store, "ws://127.0.0.1:9")
    for metric in ("ws_connecting", "ws_sessions", "ws_session_duration", "ws_msgs_sent",
                   "ws_msgs_received", "ws_ping", "ws_msg_latency", "ws_failed"):
        assert metric in store


def test_request_matches_and_keeps_pushed_messages_for_recv(store: MetricStore,
                                                            transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url:
            client = client_for(store, url, transport)
            async with client("/push", name="events") as ws:
                reply = await ws.request({"id": 1, "push": 3}, match={"id": 1})
                assert reply == {"type": "reply", "id": 1}
                # a callable that raises KeyError on pushed messages means "not this one"
                reply = await ws.request({"id": 2, "push": 1}, match=lambda m: m["id"] == 2)
                assert reply["id"] == 2
                pushed = [await ws.recv_json() for _ in range(4)]
                assert [p["seq"] for p in pushed] == [0, 1, 2, 0]
            await client.aclose()

    run(main())
    assert value(store, "ws_msg_latency", "count", name="events") == 2
    assert value(store, "ws_msgs_received", "count") == 6  # 4 pushes + 2 replies, each once
    assert value(store, "ws_msgs_sent", "count") == 2


def test_request_without_match_returns_the_next_message_decoded(store: MetricStore,
                                                                transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url, client_for(store, url, transport)("/echo") as ws:
            assert await ws.request("plain text") == "plain text"
            assert await ws.request([1, {"b": None}]) == [1, {"b": None}]

    run(main())
    assert value(store, "ws_msg_latency", "count") == 2


def test_request_timeout_names_what_was_queued(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url, client_for(store, url, transport)("/push") as ws:
            with pytest.raises(TimeoutError, match=r"2 other messages queued"):
                await ws.request({"id": 1, "push": 1}, match={"id": 99}, timeout=0.3)
            assert (await ws.recv_json())["type"] == "push"
            assert (await ws.recv_json())["type"] == "reply"

    run(main())
    assert value(store, "ws_msg_latency", "count") == 0


def test_recv_timeout_raises_and_the_connection_stays_usable(store: MetricStore,
                                                             transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url, client_for(store, url, transport)("/echo") as ws:
            with pytest.raises(TimeoutError, match=r"ws recv on /echo: nothing within 0.1s"):
                await ws.recv(timeout=0.1)
            assert await ws.request("again", timeout=5) == "again"

    run(main())


def test_ping_records_round_trip(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url, client_for(store, url, transport)("/echo") as ws:
            ms = await ws.ping()
            assert ms > 0

    run(main())
    assert value(store, "ws_ping", "count", name="/echo") == 1


def test_refused_connect_raises_ws_connect_error_and_counts_failure(store: MetricStore,
                                                                    transport: str,
                                                                  free_port: int) -> None:
    url = f"ws://127.0.0.1:{free_port}/ws"  # nothing listens there

    async def main() -> None:
        client = client_for(store, "ws://127.0.0.1:9/unused", transport)
        with pytest.raises(WsConnectError, match=r"ws connect to .*/ws \(name=/ws\) failed"):
            async with client(url):
                raise AssertionError("the body must not run")
        with pytest.raises(WsConnectError) as info:
            await client.connect(url, name="again")
        assert isinstance(info.value.cause, OSError)
        assert client.open_connections == 0

    run(main())
    assert passes_fails(store, "ws_failed") == (2, 0)
    assert value(store, "ws_sessions", "count") == 0
    assert value(store, "ws_connecting", "count") == 0


def test_error_close_from_server_counts_as_failed_session(store: MetricStore,
                                                          transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url:
            with pytest.raises(ConnectionClosedError):
                async with client_for(store, url, transport)("/abort") as ws:
                    await ws.recv()

    run(main())
    assert passes_fails(store, "ws_failed", name="/abort") == (1, 0)
    assert value(store, "ws_session_duration", "count") == 1


def test_async_for_ends_on_normal_close_from_server(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url, client_for(store, url, transport)("/bye") as ws:
            assert [m async for m in ws] == ["one", "two"]
            assert ws.closed

    run(main())
    assert passes_fails(store, "ws_failed") == (0, 1)


def test_scenario_exception_closes_the_session_cleanly(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url:
            client = client_for(store, url, transport)
            with pytest.raises(ValueError, match="scenario bug"):
                async with client("/echo"):
                    raise ValueError("scenario bug")
            assert client.open_connections == 0

    run(main())
    assert passes_fails(store, "ws_failed") == (0, 1)


def test_keep_reuses_one_connection_across_iterations_until_aclose(store: MetricStore,
                                                                   transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url:
            client = client_for(store, url, transport)
            first = await client("/echo", keep=True)           # iteration 1
            second = await client.connect("/echo", keep=True)  # iteration 2
            async with client("/echo", keep=True) as third:     # iteration 3: not closed on exit
                await third.send("x")
                assert await third.recv() == "x"
            assert first is second is third and not first.closed and first.kept
            other = await client("/echo", keep="slot-2")
            assert other is not first
            assert client.open_connections == 2
            await client.aclose()  # VU end
            assert first.closed and other.closed and client.open_connections == 0
            again = await client("/echo", keep=True)  # a new connection after aclose
            assert again is not first
            await client.aclose()

    run(main())
    assert value(store, "ws_sessions", "count") == 3
    assert value(store, "ws_session_duration", "count") == 3
    assert passes_fails(store, "ws_failed") == (0, 3)


def test_kept_connection_dropped_by_server_is_reopened(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url:
            client = client_for(store, url, transport)
            first = await client("/bye", keep=True)
            assert [m async for m in first] == ["one", "two"]
            second = await client("/bye", keep=True)
            assert second is not first
            assert [m async for m in second] == ["one", "two"]
            await client.aclose()

    run(main())
    assert value(store, "ws_sessions", "count") == 2


def test_compression_is_off_by_default(store: MetricStore) -> None:
    async def main() -> None:
        async with ws_server() as url:
            client = client_for(store, url)
            async with client("/echo") as plain:
                assert plain.extensions == []
            async with client("/echo", compression="deflate") as deflated:
                assert deflated.extensions == ["permessage-deflate"]

    run(main())


def test_api_token_becomes_a_bearer_header_unless_overridden(store: MetricStore,
                                                             transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url:
            client = client_for(store, url, transport, API_TOKEN="s3cret")
            async with client("/headers") as ws:
                assert (await ws.recv_json())["authorization"] == "Bearer s3cret"
            async with client("/headers", headers={"authorization": "Basic eA=="}) as ws:
                assert (await ws.recv_json())["authorization"] == "Basic eA=="

    run(main())


def test_send_rejects_what_it_cannot_encode(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url, client_for(store, url, transport)("/echo") as ws:
            with pytest.raises(TypeError, match="cannot send a set"):
                await ws.send({1, 2})

    run(main())
    assert value(store, "ws_msgs_sent", "count") == 0


ENV = {"WS_URL": "ws://127.0.0.2:1/base/", "DWCP_WS_URL": "ws://127.0.0.3:2/dwcp/v3", "API_URL": "http://127.0.0.4:3"}


@pytest.mark.parametrize(("path", "kw", "expected"), [
    ("/ws", {}, "ws://127.0.0.2:1/base/ws"),
    ("ws", {}, "ws://127.0.0.2:1/base/ws"),
    ("", {}, "ws://127.0.0.2:1/base/"),
    ("wss://127.0.0.5:4/x?q=1", {}, "wss://127.0.0.5:4/x?q=1"),
    ("/dwcp/v3/migrations/7", {}, "ws://127.0.0.3:2/dwcp/v3/migrations/7"),
    ("/dwcp/v30", {}, "ws://127.0.0.2:1/base/dwcp/v30"),
    ("/migrations", {"dwcp": True}, "ws://127.0.0.3:2/dwcp/v3/migrations"),
])
def test_resolve_ws_url(path: str, kw: dict[str, bool], expected: str) -> None:
    assert resolve_ws_url(path, ENV, **kw) == expected


def test_resolve_ws_url_falls_back_to_api_url_and_explains_what_is_missing() -> None:
    assert resolve_ws_url("/ws", {"API_URL": "https://127.0.0.4:3"}) == "wss://127.0.0.4:3/ws"
    with pytest.raises(ConfigError, match="WS_URL is not set"):
        resolve_ws_url("/ws", {})
    with pytest.raises(ConfigError, match="DWCP_WS_URL is not set"):
        resolve_ws_url("/m", {"WS_URL": "ws://127.0.0.2"}, dwcp=True)
    with pytest.raises(ConfigError, match="expected a ws:// or wss:// URL"):
        resolve_ws_url("http://127.0.0.2/ws", {})


def test_dwcp_helper_and_default_name(store: MetricStore) -> None:
    client = WsClient(ClientContext(store=store, vu_id=1, env=ENV))
    assert client.dwcp("/status")._url == "ws://127.0.0.3:2/dwcp/v3/status"
    assert client.dwcp("/status")._name == "/dwcp/v3/status"
    assert client("/ws?token=1")._name == "/base/ws"


def test_bad_ws_options_are_config_errors(store: MetricStore) -> None:
    with pytest.raises(ConfigError, match=r"ws option 'ping_intervall': unknown option; did you "
                                          r"mean 'ping_interval'\?"):
        WsClient(ClientContext(store=store, vu_id=1, options={"ws": {"ping_intervall": 1}}))
    with pytest.raises(ConfigError, match="compression='gzip'"):
        WsClient(ClientContext(store=store, vu_id=1, options={"ws": {"compression": "gzip"}}))
    with pytest.raises(ConfigError, match="open_timeout=-1"):
        WsClient(ClientContext(store=store, vu_id=1, options={"ws": {"open_timeout": -1}}))
    with pytest.raises(ConfigError, match="match=42"):
        from pytest_novaload.clients.ws_messages import matcher
        matcher(42)  # type: ignore[arg-type]


def test_validate_ws_options_reports_every_problem_at_once() -> None:
    problems = validate_ws_options({
        "open_timout": 1, "open_timeout": 0, "ping_interval": "soon", "close_timeout": -1,
        "max_size": -5, "max_queue": (8, "x"), "compression": "gzip", "local_addrs": "127.0.0.1"})
    text = "\n".join(problems)
    assert len(problems) == 8, text
    assert "'open_timout': unknown option; did you mean 'open_timeout'?" in text
    for fragment in ("open_timeout=0: expected seconds (> 0)", "ping_interval='soon'",
                     "close_timeout=-1: expected seconds (>= 0)", "max_size=-5: expected the "
                     "largest message in bytes", "max_queue=(8, 'x')", "compression='gzip'",
                     "local_addrs='127.0.0.1'"):
        assert fragment in text


@pytest.mark.parametrize("opts", [
    {}, {"open_timeout": "5s", "close_timeout": 0, "ping_interval": None, "ping_timeout": 2.5},
    {"max_size": 2**20, "max_queue": 16}, {"max_size": None, "max_queue": (32, None)},
    {"compression": "deflate", "local_addrs": ["127.0.0.1", "127.0.0.2"]},
])
def test_validate_ws_options_accepts_valid_dicts(opts: dict[str, Any]) -> None:
    assert validate_ws_options(opts) == []


def test_runtime_ws_options_use_the_validator_and_durations(store: MetricStore) -> None:
    with pytest.raises(ConfigError) as info:
        WsClient(ClientContext(store=store, vu_id=1, options={"ws": {"max_size": -1,
                                                                     "open_timeout": "zz"}}))
    assert info.value.problems == [f"ws option {p}" for p in validate_ws_options(
        {"max_size": -1, "open_timeout": "zz"})]
    assert len(info.value.problems) == 2
    client = WsClient(ClientContext(store=store, vu_id=1,
                                    options={"ws": {"open_timeout": "500ms",
                                                    "ping_interval": None}}))
    assert client._defaults["open_timeout"] == 0.5 and client._defaults["ping_interval"] is None


def test_connect_failures_and_abnormal_ends_reach_on_error(store: MetricStore, transport: str,
                                                           free_port: int) -> None:
    errors: list[tuple[str, ...]] = []

    def broken(metric: str, kind: str, message: str) -> None:
        errors.append((kind, message) if metric == "ws_failed" else (metric, kind, message))
        raise RuntimeError("callback bug")  # must not change what the scenario sees

    async def main() -> None:
        async with ws_server() as url:
            client = WsClient(ClientContext(store=store, vu_id=1, env={"WS_URL": url},
                                            options=fast_or_not(transport), on_error=broken))
            with pytest.raises(WsConnectError):
                await client.connect(f"ws://127.0.0.1:{free_port}/down")
            async with client("/echo") as ws:  # a clean session reports nothing
                await ws.send("hi")
                await ws.recv()
            with pytest.raises(ConnectionClosedError):
                async with client("/abort") as ws:
                    await ws.recv()

    run(main())
    assert [kind for kind, _ in errors] == ["WsConnectError", "ConnectionClosedError"]
    assert errors[0][1].startswith(f"ws connect to ws://127.0.0.1:{free_port}/down (name=/down)")
    assert "1011" in errors[1][1] and "boom" in errors[1][1] and "/abort" in errors[1][1]


def test_local_addrs_option_spreads_vus_over_source_addresses(store: MetricStore,
                                                              transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url:
            ctx = ClientContext(store=store, vu_id=3, env={"WS_URL": url},
                                options={"ws": {"local_addrs": ["127.0.0.1", "127.0.0.2"],
                                                    "transport": transport}})
            client = WsClient(ctx)
            async with client("/echo") as ws:
                assert ws.raw.local_address[0] == "127.0.0.2"

    run(main())


def test_vus_past_20k_connect_from_further_loopback_addresses(store: MetricStore,
                                                              transport: str) -> None:
    """One source address has ~28K ports per destination: VU 20001 on comes from 127.0.0.2,
    VU 40001 from 127.0.0.3; VUs up to 20000 and non-loopback targets are left alone."""
    seen: dict[int, str] = {}

    async def main() -> None:
        async with ws_server() as url:
            for vu_id in (1, 20_000, 20_001, 40_001):
                client = WsClient(ClientContext(store=store, vu_id=vu_id, env={"WS_URL": url},
                                                  options=fast_or_not(transport)))
                async with client("/echo") as ws:
                    seen[vu_id] = ws.raw.local_address[0]

    run(main())
    assert seen == {1: "127.0.0.1", 20_000: "127.0.0.1", 20_001: "127.0.0.2",
                    40_001: "127.0.0.3"}
    assert auto_local_addr("ws://10.1.2.3:80/ws", 50_000) is None
    assert auto_local_addr("ws://localhost:80/ws", 50_000) == ("127.0.0.3", 0)


def test_module_imports_without_asyncpg_or_pytest() -> None:
    code = ("import sys; sys.modules['asyncpg'] = None; "
            "import pytest_novaload.clients.websocket; "
            "assert 'pytest' not in sys.modules, 'the client must not import pytest'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": ROOT})
