"""vu.ws with ``ws={"transport": "fast"}``: frames as the fast client reads and writes them.

Every length encoding, fragments, control frames between them, pings and pongs, keepalive,
the close codes of protocol violations (1002), invalid UTF-8 (1007) and oversize messages
(1009), max_queue; on both transports with one expectation (the fast one must behave as
websockets does).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedError

from pytest_novaload.clients.ws_fast import FastWsConnection
from pytest_novaload.metrics import MetricStore
from tests.clients.ws_servers import (
    client,
    count,
    passes_fails,
    raw_server,
    read_close,
    read_frame,
    run,
    sends_then_reads_close,
    ws_server,
)
from tests.timing import scaled


@pytest.fixture
def store(metric_store: MetricStore) -> MetricStore:
    return metric_store


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_and_binary_echo_at_every_length_encoding(store: MetricStore, transport: str,
                                                        size: int) -> None:
    text = ("é" * size)[:size] if size < 1000 else "a" * size

    async def main() -> None:
        async with ws_server() as url, client(store, transport, url)("/echo") as ws:
            await ws.send(text)
            assert await ws.recv() == text
            await ws.send(b"\x01" * size)
            assert await ws.recv() == b"\x01" * size

    run(main())
    assert count(store, "ws_msgs_sent") == 2 and count(store, "ws_msgs_received") == 2


def test_fragmented_server_message_is_assembled(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url, client(store, transport, url)("/frag") as ws:
            assert await ws.recv() == "abcdef"

    run(main())


def test_ping_between_fragments_is_answered_with_its_payload(store: MetricStore,
                                                             transport: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: list[Any]) -> None:
        writer.write(b"\x01\x03abc" + b"\x89\x04ping" + b"\x00\x03def" + b"\x80\x03ghi")
        seen.append(await read_frame(reader))
        writer.write(b"\x82\x02\x00\xff")
        await read_close(reader, seen, writer)

    async def main() -> None:
        async with raw_server(script) as (url, seen):
            async with client(store, transport, url)("/") as ws:
                assert await ws.recv() == "abcdefghi"
                assert await ws.recv() == b"\x00\xff"
            assert seen[1] == (10, b"ping")
            assert seen[2] == ("close", 1000)

    run(main())
    assert passes_fails(store) == (0, 1)


def test_server_ping_is_answered(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url, client(store, transport, url)("/pingme") as ws:
            assert await ws.recv(timeout=5) == "answered"

    run(main())


def test_ping_waits_for_the_pong_with_its_own_payload(store: MetricStore, transport: str) -> None:
    delay = scaled(0.3)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: list[Any]) -> None:
        op, payload = await read_frame(reader)
        assert op == 9
        writer.write(b"\x8a\x04zzzz")  # an unsolicited pong first
        await asyncio.sleep(delay)
        writer.write(bytes((0x8A, len(payload))) + payload)
        await read_close(reader, seen)

    async def main() -> None:
        async with raw_server(script) as (url, _), client(store, transport, url)("/") as ws:
            ms = await ws.ping()
            assert ms >= delay * 1000 * 0.9

    run(main())
    assert count(store, "ws_ping") == 1


def test_ping_without_pong_times_out_unrecorded(store: MetricStore, transport: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: list[Any]) -> None:
        await read_close(reader, seen)  # reads the ping, never answers it

    async def main() -> None:
        async with raw_server(script) as (url, _), client(store, transport, url)("/") as ws:
            with pytest.raises(TimeoutError):
                await ws.ping(timeout=scaled(0.2))

    run(main())
    assert count(store, "ws_ping") == 0


def _closes_with(store: MetricStore, transport: str, frames: bytes, code: int) -> None:
    """The server sends ``frames``; the client must fail the session with ``code``: its close
    frame carries it, the server reads it, and the session counts as failed."""
    async def main() -> None:
        async with raw_server(sends_then_reads_close(frames)) as (url, seen):
            with pytest.raises(ConnectionClosedError) as info:
                async with client(store, transport, url)("/") as ws:
                    await ws.recv()
            assert info.value.sent is not None and info.value.sent.code == code
            assert seen[-1] == ("close", code)

    run(main())
    assert passes_fails(store) == (1, 0)


@pytest.mark.parametrize("frames", [b"\x81\x02\xc3\x28", b"\x01\x01\xc3\x80\x01\x28"],
                         ids=["frame", "fragments"])
def test_invalid_utf8_text_closes_with_1007(store: MetricStore, transport: str,
                                           frames: bytes) -> None:
    _closes_with(store, transport, frames, 1007)


@pytest.mark.parametrize("frames", [
    b"\x81\x82\x01\x02\x03\x04" + bytes(b ^ m for b, m in zip(b"hi", b"\x01\x02", strict=True)),
    b"\xc1\x02hi",                      # reserved bit 1 set, no extension negotiated
    b"\x83\x00",                        # opcode 3 is reserved
    b"\x80\x02hi",                      # a continuation with nothing to continue
    b"\x09\x00",                        # a fragmented ping
    b"\x89\x7e\x00\x7e" + b"p" * 126,   # a ping longer than 125 bytes
    b"\x01\x01a\x81\x01b",              # a new message in the middle of a fragmented one
], ids=["masked", "reserved-bits", "opcode", "continuation", "fragmented-ping", "long-ping",
        "interleaved"])
def test_protocol_violations_close_with_1002(store: MetricStore, transport: str,
                                             frames: bytes) -> None:
    _closes_with(store, transport, frames, 1002)


def test_oversize_message_closes_with_1009(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url:
            ws_client = client(store, transport, url, max_size=1000)
            async with ws_client("/big/1000") as ws:
                assert len(await ws.recv()) == 1000   # the limit itself is fine
            with pytest.raises(ConnectionClosedError) as info:
                async with ws_client("/big/1001") as ws:
                    await ws.recv()
            assert info.value.sent is not None and info.value.sent.code == 1009

    run(main())
    assert passes_fails(store) == (1, 1)


def test_oversize_fragmented_message_closes_with_1009(store: MetricStore,
                                                      transport: str) -> None:
    part = b"\x7e\x01\x90" + b"y" * 400          # 400-byte fragments: 1200 > 1000
    frames = b"\x02" + part + b"\x00" + part + b"\x80" + part

    async def main() -> None:
        async with raw_server(sends_then_reads_close(frames)) as (url, seen):
            with pytest.raises(ConnectionClosedError) as info:
                async with client(store, transport, url, max_size=1000)("/") as ws:
                    await ws.recv()
            assert info.value.sent is not None and info.value.sent.code == 1009
            assert seen[-1] == ("close", 1009)

    run(main())


def test_max_queue_pauses_reading_and_loses_nothing(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url, client(store, transport, url, max_queue=4)("/push") as ws:
            await asyncio.sleep(scaled(0.1))  # let the queue fill up to its limit
            assert [await ws.recv(timeout=5) for _ in range(100)] == [str(i) for i in range(100)]

    run(main())


def test_a_message_arriving_as_recv_is_cancelled_is_kept(store: MetricStore) -> None:
    """A timeout (the Deadline's cancel) landing after the message resolved the waiter but
    before recv resumed must not lose that message."""
    async def main() -> None:
        async with raw_server(sends_then_reads_close(b"")) as (url, _), \
                client(store, "fast", url)("/") as ws:
            conn = ws.raw
            assert isinstance(conn, FastWsConnection)
            task = asyncio.create_task(conn.recv())
            await asyncio.sleep(0)                 # recv now waits on its future
            conn.data_received(b"\x81\x01m")       # the message resolves it...
            task.cancel()                          # ...and the cancel comes first
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await ws.recv(timeout=1) == "m"

    run(main())


def test_keepalive_ping_without_pong_closes_with_1011(store: MetricStore,
                                                      transport: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: list[Any]) -> None:
        await read_close(reader, seen)  # records the keepalive pings, answers none

    async def main() -> None:
        async with raw_server(script) as (url, seen):
            conn = client(store, transport, url, ping_interval=scaled(0.1),
                          ping_timeout=scaled(0.2))
            with pytest.raises(ConnectionClosedError) as info:
                async with conn("/") as ws:
                    await ws.recv(timeout=scaled(5))
            assert info.value.sent is not None and info.value.sent.code == 1011
            assert seen[1][0] == 9 and seen[-1] == ("close", 1011)

    run(main())
    assert passes_fails(store) == (1, 0)


def test_keepalive_pings_answered_keep_the_session(store: MetricStore, transport: str) -> None:
    async def main() -> None:
        async with ws_server() as url:
            conn = client(store, transport, url, ping_interval=scaled(0.05),
                          ping_timeout=scaled(0.5))
            async with conn("/echo") as ws:
                await asyncio.sleep(scaled(0.4))  # several keepalive pings, all answered
                assert await ws.request("still here") == "still here"

    run(main())
    assert passes_fails(store) == (0, 1)
