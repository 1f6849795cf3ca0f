"""A tiny decoder of Prometheus remote write requests, independent of the encoder under test."""

from __future__ import annotations

import struct
from typing import Any


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def fields(buf: bytes) -> list[tuple[int, Any]]:
    """(field number, value) pairs of one message: ints, floats (fixed64) or bytes."""
    out: list[tuple[int, Any]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            if value >= 1 << 63:
                value -= 1 << 64
        elif wire == 1:
            value = struct.unpack("<d", buf[pos:pos + 8])[0]
            pos += 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value = buf[pos:pos + n]
            pos += n
        else:
            raise ValueError(f"unexpected wire type {wire}")
        out.append((number, value))
    return out


def decode_write_request(buf: bytes) -> list[dict[str, Any]]:
    """``[{"labels": {name: value}, "label_order": [...], "samples": [(value, ts)]}]``."""
    series = []
    for number, ts_bytes in fields(buf):
        assert number == 1, f"WriteRequest field {number}"
        labels: dict[str, str] = {}
        order: list[str] = []
        samples: list[tuple[float, int]] = []
        for n, payload in fields(ts_bytes):
            if n == 1:
                lab = dict(fields(payload))
                name, value = lab[1].decode(), lab.get(2, b"").decode()
                labels[name] = value
                order.append(name)
            elif n == 2:
                s = dict(fields(payload))
                samples.append((s.get(1, 0.0), s.get(2, 0)))
            else:
                raise AssertionError(f"TimeSeries field {n}")
        series.append({"labels": labels, "label_order": order, "samples": samples})
    return series
