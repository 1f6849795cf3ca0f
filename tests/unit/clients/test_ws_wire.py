"""The pure RFC 6455 pieces of the fast WebSocket transport: masks, frame heads, handshake."""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest
from websockets.exceptions import (
    InvalidHeader,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidStatus,
    InvalidUpgrade,
    NegotiationError,
)

from pytest_novaload.clients import ws_wire
from pytest_novaload.clients.ws_wire import (
    accept_key,
    apply_mask,
    check_response,
    frame_head,
    handshake_request,
)


def test_accept_key_is_rfc_6455s_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 125, 1000, 65537])
def test_pure_mask_matches_the_c_speedup_and_the_definition(n: int) -> None:
    data, mask = os.urandom(n), os.urandom(4)
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert ws_wire._apply_mask_py(data, mask) == expected
    assert apply_mask(data, mask) == expected


def test_masks_come_from_a_pool_refilled_once_per_1024_frames(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.urandom

    def counting(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(ws_wire.os, "urandom", counting)
    monkeypatch.setattr(ws_wire, "_pos", ws_wire._POOL_SIZE)  # start on an empty pool
    masks = [ws_wire.take_mask() for _ in range(2048)]
    assert calls == [4096, 4096]
    assert all(len(m) == 4 for m in masks)
    assert len(set(masks)) > 2000  # 2048 draws of 32 random bits: collisions are rare


def test_after_fork_the_child_draws_a_fresh_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws_wire, "_pos", 8)
    ws_wire._after_fork()
    assert ws_wire._pos == ws_wire._POOL_SIZE


@pytest.mark.parametrize(("n", "head"), [
    (0, b"\x81\x80"), (125, b"\x81\xfd"), (126, b"\x81\xfe\x00\x7e"),
    (65535, b"\x81\xfe\xff\xff"), (65536, b"\x81\xff" + struct.pack("!Q", 65536)),
])
def test_frame_heads_use_the_shortest_length_encoding_and_set_the_mask_bit(
        n: int, head: bytes) -> None:
    assert frame_head(1, n) == head


def test_handshake_request_carries_key_host_protocols_and_headers() -> None:
    req = handshake_request("127.0.0.1", 8080, False, "/ws?x=1", "KEY", {"X-A": "1"},
                            ["chat"]).decode()
    assert req.startswith("GET /ws?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
    assert "Sec-WebSocket-Key: KEY\r\n" in req and "Sec-WebSocket-Protocol: chat\r\n" in req
    assert "X-A: 1\r\n" in req and req.endswith("\r\n\r\n")
    assert "Extensions" not in req
    assert "Host: [::1]\r\n" in handshake_request("::1", 80, False, "/", "K", None, None).decode()
    with pytest.raises(ValueError, match="line breaks"):
        handshake_request("h", 80, False, "/", "K", {"X": "a\r\nInjected: 1"}, None)


def _head(status: str = "101 Switching Protocols", **headers: str) -> bytes:
    base = {"Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Accept": accept_key("KEY")}
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in base.items() if v != "-"]
    return "\r\n".join(lines).encode()


def test_a_good_response_passes_and_gives_the_subprotocol() -> None:
    assert check_response(_head(), "KEY", None) is None
    assert check_response(_head(Sec_WebSocket_Protocol="b"), "KEY", ["a", "b"]) == "b"
    assert check_response(_head(Connection="keep-alive, Upgrade"), "KEY", None) is None


@pytest.mark.parametrize(("head", "exc"), [
    (b"garbage", InvalidMessage),
    (_head("403 Forbidden"), InvalidStatus),
    (_head(Upgrade="h2c"), InvalidUpgrade),
    (_head(Connection="close"), InvalidUpgrade),
    (_head(Sec_WebSocket_Accept="-"), InvalidHeader),
    (_head(Sec_WebSocket_Accept="bm9wZQ=="), InvalidHeaderValue),
    (_head(Sec_WebSocket_Extensions="permessage-deflate"), NegotiationError),
    (_head(Sec_WebSocket_Protocol="c"), NegotiationError),
    (b"HTTP/1.1 101 OK\r\nno colon here", InvalidMessage),
])
def test_bad_responses_raise_websockets_own_exceptions(head: bytes, exc: Any) -> None:
    with pytest.raises(exc):
        check_response(head, "KEY", ["a"])
