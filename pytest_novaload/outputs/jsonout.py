"""The ``json=PATH`` output: every sample as a line of k6's JSON output format.

Lines are exactly k6's (checked against k6 1.1.0's own ``--out json`` file in the tests):
a ``{"type":"Metric","data":{"name","type","contains","thresholds","submetrics"},"metric"}``
declaration the first time a metric appears, then one
``{"metric":...,"type":"Point","data":{"time":RFC3339,"value":...,"tags":{...}}}`` per sample.
``PATH`` ending in ``.gz`` is gzipped. A k6 tool (jq recipes, k6-to-InfluxDB scripts, the
k6 HTML report converters) reads it as it reads k6's.

Off the hot path: ``sample()`` appends one tuple to a list; every ``batch`` samples (and at each
``flush()``, once a second) the list is handed to the writer thread, which formats and writes.
A writer that falls behind drops whole batches, counted, and warns once. Names, tags, test ids
and thresholds are redacted (``redactor``, once per series) as every artifact is: a tag may
quote a token or a URL with user info.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics.builtins import BYTE_METRICS
from pytest_novaload.outputs.model import is_time_trend
from pytest_novaload.outputs.sender import Background, OutputReport
from pytest_novaload.redact import Redactor, redactor_from_env

__all__ = ["DATA_METRICS", "JsonOutput", "format_time", "metric_line", "point_line"]

DATA_METRICS = BYTE_METRICS
"""Counters of bytes: k6 declares them ``"contains": "data"``."""

_Sample = tuple[str, str, float, tuple[tuple[str, str], ...], float, str]
# (name, kind, value, tags, unix time, test id)
_Decl = tuple[str, str, str, tuple[str, ...]]  # (name, kind, contains, thresholds)
_Batch = tuple[list[_Sample], list[_Decl]]


def _dumps() -> Callable[[Any], str]:
    try:
        import orjson
    except ImportError:
        return lambda obj: json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return lambda obj: orjson.dumps(obj).decode()


_second_cache: dict[int, str] = {}


def format_time(t: float) -> str:
    """RFC 3339 in UTC, microseconds, trailing zeros cut (as Go's RFC3339Nano writes)."""
    sec, us = divmod(int(t * 1_000_000 + 0.5), 1_000_000)
    prefix = _second_cache.get(sec)
    if prefix is None:
        if len(_second_cache) > 64:
            _second_cache.clear()
        prefix = _second_cache[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if not us:
        return prefix + "Z"
    return f"{prefix}.{us:06d}".rstrip("0") + "Z"


def _number(value: float) -> float | int:
    """Whole values as integers (k6 writes ``1``, not ``1.0``)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def contains_of(name: str, kind: str, non_time_trends: frozenset[str] = frozenset()) -> str:
    """k6's ``contains``: ``time`` for trends in milliseconds, ``data`` for bytes."""
    if kind == "trend" and is_time_trend(name, non_time_trends):
        return "time"
    if name in DATA_METRICS:
        return "data"
    return "default"


def metric_line(name: str, kind: str, contains: str, thresholds: Sequence[str] = (),
                dumps: Callable[[Any], str] | None = None) -> str:
    """k6's ``"type":"Metric"`` declaration line (no newline)."""
    return (dumps or _dumps())({
        "type": "Metric",
        "data": {"name": name, "type": kind, "contains": contains,
                 "thresholds": list(thresholds), "submetrics": None},
        "metric": name})


def point_line(name: str, t: float, value: float, tags: dict[str, str],
               dumps: Callable[[Any], str] | None = None) -> str:
    """k6's ``"type":"Point"`` line (no newline)."""
    return (dumps or _dumps())({
        "metric": name, "type": "Point",
        "data": {"time": format_time(t), "value": _number(value), "tags": tags}})


def _open(path: Path) -> IO[str]:
    """The output file, gzipped when its name ends in ``.gz`` (the caller closes it)."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8", compresslevel=6)
    return open(path, "w", encoding="utf-8", buffering=1 << 20)


class JsonOutput:
    """Writes k6 JSON lines to ``path`` from its own thread."""

    kind = "json"

    def __init__(self, path: str | Path, *, batch: int = 4096, max_queue: int = 256,
                 non_time_trends: Iterable[str] = (),
                 warn: Callable[[str], None] | None = None,
                 redactor: Redactor | None = None) -> None:
        self.path = Path(path)
        #: Hides secrets in what is written; the session replaces it as it learns secrets.
        self.redactor = redactor if redactor is not None else redactor_from_env()
        self._redacted_by: Redactor | None = None
        if batch < 1:
            raise ValueError(f"batch={batch!r}: expected a positive number of samples")
        try:
            self._file: IO[str] = _open(self.path)
        except OSError as exc:
            raise ConfigError(f"json={str(path)!r}: cannot write the file ({exc.strerror}); "
                              "give a path in an existing, writable folder, e.g. "
                              "'json=results.json' or 'json=results.json.gz'") from None
        self._batch = batch
        self._buf: list[_Sample] = []
        self._decls: list[_Decl] = []
        self._test_id = ""
        self._non_time = frozenset(non_time_trends)
        self._declared: set[str] = set()
        self._parts: dict[tuple[str, tuple[tuple[str, str], ...], str], tuple[str, str]] = {}
        self._dumps = _dumps()
        self._bg: Background[_Batch] = Background(
            f"{self.kind} ({self.path})", self._write, max_items=max_queue,
            weight=lambda b: len(b[0]), unit="samples", warn=warn)

    # -- event-loop side (cheap) ----------------------------------------------------------------
    def set_test(self, test_id: str) -> None:
        """Tag the samples that follow with ``testid`` = ``test_id`` ("" for none)."""
        self._test_id = test_id

    def declare(self, name: str, kind: str, thresholds: Sequence[str] = ()) -> None:
        """Declare a metric before its first sample (so its thresholds are in the line)."""
        self._decls.append((name, kind, contains_of(name, kind, self._non_time),
                            tuple(thresholds)))

    def sample(self, name: str, kind: str, value: float,
               tags: tuple[tuple[str, str], ...] = (), t: float | None = None) -> None:
        """Record one sample (the hot path: one tuple appended)."""
        buf = self._buf
        buf.append((name, kind, value, tags, time.time() if t is None else t, self._test_id))
        if len(buf) >= self._batch:
            self.flush()

    def recorder(self, name: str, kind: str,
                 tags: tuple[tuple[str, str], ...] = ()) -> Callable[[float], None]:
        """One series' sample call (what a tapped sink calls per sample): ``sample`` with
        the name, kind and tags bound, in one call."""
        clock = time.time
        limit = self._batch

        def record(value: float) -> None:
            buf = self._buf
            buf.append((name, kind, value, tags, clock(), self._test_id))
            if len(buf) >= limit:
                self.flush()

        return record

    def flush(self) -> None:
        """Hand what is buffered to the writer thread (call once a second, and at the end)."""
        if self._buf or self._decls:
            batch, decls = self._buf, self._decls
            self._buf, self._decls = [], []
            self._bg.put((batch, decls))

    def close(self, timeout: float = 30.0) -> OutputReport:
        """Write what is left, close the file, and return the report."""
        self.flush()
        report = self._bg.close(timeout)
        if not any("gave up" in n for n in report.notes):
            try:
                self._file.close()
            except OSError as exc:
                report.notes.append(f"closing {self.path} failed: {exc}")
        return report

    # -- writer thread --------------------------------------------------------------------------
    def _write(self, batches: Sequence[_Batch]) -> None:
        dumps = self._dumps
        lines: list[str] = []
        declared = self._declared
        parts = self._parts
        r = self.redactor
        if r is not self._redacted_by:  # new secrets learnt: series made from now on hide them
            parts.clear()
            self._redacted_by = r
        for samples, decls in batches:
            for name, kind, contains, thresholds in decls:
                if name not in declared:
                    declared.add(name)
                    lines.append(metric_line(r.redact(name), kind, contains,
                                             [r.redact(t) for t in thresholds], dumps))
            for name, kind, value, tags, t, test_id in samples:
                key = (name, tags, test_id)
                fixed = parts.get(key)
                if fixed is None:
                    if name not in declared:
                        declared.add(name)
                        lines.append(metric_line(
                            r.redact(name), kind, contains_of(name, kind, self._non_time), (),
                            dumps))
                    fixed = parts[key] = _point_parts(r.redact(name), r.redact_tags(tags),
                                                      r.redact(test_id), dumps)
                lines.append(f"{fixed[0]}{format_time(t)}\",\"value\":{_json_number(value)}"
                             f"{fixed[1]}")
        if lines:
            lines.append("")
            self._file.write("\n".join(lines))


def _point_parts(name: str, tags: tuple[tuple[str, str], ...], test_id: str,
                 dumps: Callable[[Any], str]) -> tuple[str, str]:
    """The fixed text of a series' Point lines: before the time, and after the value."""
    d = dict(tags)
    if test_id:
        d["testid"] = test_id
    return (f'{{"metric":{dumps(name)},"type":"Point","data":{{"time":"',
            f',"tags":{dumps(dict(sorted(d.items())))}}}}}')


def _json_number(value: float) -> str:
    """A JSON number as Go writes it (``1`` for whole values); null for NaN/inf."""
    if value.__class__ is int:
        return str(value)
    v = float(value)
    if v % 1.0 == 0.0 and -1e15 < v < 1e15:
        return str(int(v))
    return repr(v) if math.isfinite(v) else "null"
