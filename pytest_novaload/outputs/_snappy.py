"""Snappy block format (what Prometheus remote write requires), with no required dependency.

``compress`` uses cramjam's real Snappy when it is installed (the ``prom`` extra) and otherwise
writes a valid Snappy block made of literal chunks only: no compression, but every Snappy
decoder (Prometheus' included) reads it, so remote write works on a bare install.
``decompress`` reads any Snappy block (literals and copies); tests use it to read payloads back.
"""

from __future__ import annotations

from typing import Any

__all__ = ["backend", "compress", "decompress"]

_MAX_LITERAL = 1 << 16  # literal chunk size written by the fallback (fits a 2-byte length)


def _cramjam() -> Any:
    try:
        import cramjam  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return cramjam


def backend() -> str:
    """``"cramjam"`` when real Snappy compression is available, else ``"literal"``."""
    return "cramjam" if _cramjam() is not None else "literal"


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def compress_literal(data: bytes) -> bytes:
    """A Snappy block holding ``data`` as literal chunks (valid, uncompressed)."""
    out = bytearray(_uvarint(len(data)))
    view = memoryview(data)
    for i in range(0, len(data), _MAX_LITERAL):
        chunk = view[i:i + _MAX_LITERAL]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 0x100:
            out += bytes((60 << 2, n))
        else:
            out += bytes((61 << 2, n & 0xFF, n >> 8))
        out += chunk
    return bytes(out)


def compress(data: bytes) -> bytes:
    """``data`` as one Snappy block (cramjam's encoder when installed)."""
    cj = _cramjam()
    if cj is not None:
        return bytes(cj.snappy.compress_raw(data))
    return compress_literal(data)


def decompress(block: bytes) -> bytes:
    """Decode one Snappy block; ValueError on a malformed block."""
    length = shift = pos = 0
    while True:
        if pos >= len(block):
            raise ValueError("snappy block: truncated length header")
        b = block[pos]
        pos += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    out = bytearray()
    while pos < len(block):
        tag = block[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            n = tag >> 2
            if n >= 60:
                extra = n - 59
                n = int.from_bytes(block[pos:pos + extra], "little")
                pos += extra
            n += 1
            if pos + n > len(block):
                raise ValueError("snappy block: literal runs past the end")
            out += block[pos:pos + n]
            pos += n
            continue
        if kind == 1:
            n = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | block[pos]
            pos += 1
        elif kind == 2:
            n = (tag >> 2) + 1
            offset = int.from_bytes(block[pos:pos + 2], "little")
            pos += 2
        else:
            n = (tag >> 2) + 1
            offset = int.from_bytes(block[pos:pos + 4], "little")
            pos += 4
        if offset == 0 or offset > len(out):
            raise ValueError(f"snappy block: copy offset {offset} outside the output")
        start = len(out) - offset
        for i in range(n):  # copies may overlap their own output
            out.append(out[start + i])
    if len(out) != length:
        raise ValueError(f"snappy block: decoded {len(out)} bytes, header says {length}")
    return bytes(out)
