"""Append-only JSON lines kept in an unlinked temporary file instead of in memory.

A run's per-second time series (``timeseries.ndjson``, the report's charts) grows with its
duration: ten lines a second is ~5 KB/s as Python dicts, 17 MB an hour, 400 MB a day. The
runner and the session append each second's lines here as compact JSON (lines already
redacted: no secret reaches the file) and read them back once, for the artifacts, so a soak
run's memory stays flat. The file is unlinked at creation (``tempfile.TemporaryFile``) and
gone when the spool is.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

__all__ = ["LineSpool"]

_CHUNK = 1 << 16


class LineSpool:
    """A sequence of JSON-able dicts: ``extend``/``append``, iterate (in order), ``len``."""

    def __init__(self, lines: Iterable[dict[str, Any]] = ()) -> None:
        self._file: IO[bytes] | None = None
        self._count = 0
        self.extend(lines)

    def extend(self, lines: Iterable[dict[str, Any]]) -> None:
        data = bytearray()
        n = 0
        for line in lines:
            data += json.dumps(line, separators=(",", ":"), default=str).encode()
            data += b"\n"
            n += 1
        if not n:
            return
        if self._file is None:
            # lives as long as the spool (closed with it, or collected with it)
            self._file = tempfile.TemporaryFile(prefix="novaload-series-")  # noqa: SIM115
        self._file.seek(0, os.SEEK_END)
        self._file.write(data)
        self._count += n

    def append(self, line: dict[str, Any]) -> None:
        self.extend((line,))

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The lines in order (a snapshot: lines appended while iterating are not seen)."""
        if self._file is None:
            return
        self._file.flush()
        fd = self._file.fileno()
        end = os.fstat(fd).st_size
        offset = 0
        rest = b""
        while offset < end:
            chunk = os.pread(fd, min(_CHUNK, end - offset), offset)
            if not chunk:
                break
            offset += len(chunk)
            *full, rest = (rest + chunk).split(b"\n")
            for raw in full:
                yield json.loads(raw)
        if rest.strip():
            yield json.loads(rest)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._count = 0
