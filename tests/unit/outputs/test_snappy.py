"""Snappy blocks: the literal fallback and cramjam both decode to the input."""

from __future__ import annotations

import importlib.util
import os

import pytest

from pytest_novaload.outputs import _snappy

CASES = [b"", b"a", b"x" * 59, b"x" * 60, b"y" * 61, b"z" * 255, b"w" * 256,
         os.urandom(70_000), b"label" * 30_000]


@pytest.mark.parametrize("data", CASES, ids=lambda d: f"{len(d)}B")
def test_literal_block_round_trips(data: bytes) -> None:
    block = _snappy.compress_literal(data)
    assert _snappy.decompress(block) == data
    assert len(block) <= len(data) + 16 + len(data) // 65536 * 3


@pytest.mark.skipif(importlib.util.find_spec("cramjam") is None, reason="cramjam not installed")
@pytest.mark.parametrize("data", CASES, ids=lambda d: f"{len(d)}B")
def test_cramjam_blocks_decode_with_our_decoder(data: bytes) -> None:
    import cramjam  # type: ignore[import-not-found,unused-ignore]

    block = bytes(cramjam.snappy.compress_raw(data))
    assert _snappy.decompress(block) == data
    assert bytes(cramjam.snappy.decompress_raw(_snappy.compress_literal(data))) == data
    assert _snappy.backend() == "cramjam"
    if data == b"label" * 30_000:
        assert len(_snappy.compress(data)) < len(data) // 10  # really compressed


def test_fallback_without_cramjam(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_snappy, "_cramjam", lambda: None)
    assert _snappy.backend() == "literal"
    assert _snappy.decompress(_snappy.compress(b"abc" * 100)) == b"abc" * 100


@pytest.mark.parametrize("block", [b"", b"\x05\x10ab", b"\x04\x01\x05", b"\x80"])
def test_malformed_blocks_raise(block: bytes) -> None:
    with pytest.raises(ValueError, match="snappy block"):
        _snappy.decompress(block)
