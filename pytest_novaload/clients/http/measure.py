"""HTTP's measuring, the same for both transports: one sample per exchange, the bytes moved,
and the cause of every failed one on the run's error path.

An exchange records ``http_req_duration`` (ms), ``http_reqs`` and ``http_req_failed`` tagged
name, method, status and expected_response (plus ``error`` for a transport error), and adds to
``data_sent`` / ``data_received``. ``expected`` decides what failed, as k6's response callback:
200-399 unless it names a status, a range or a collection of statuses.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, TypeAlias

from pytest_novaload.clients.base import Tags, with_tags
from pytest_novaload.clients.http.response import Response
from pytest_novaload.clients.measure import CallSinks
from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics.builtins import define_builtins
from pytest_novaload.metrics.errors import GENERATOR, RESOURCE_ERROR

if TYPE_CHECKING:
    from pytest_novaload.clients.base import ClientContext
    from pytest_novaload.clients.http.transport import Failure
    from pytest_novaload.metrics.sinks import Counter

__all__ = ["FAILED", "Expected", "HttpMeter", "error_code", "matches"]

Expected: TypeAlias = "int | range | Collection[int] | None"
FAILED = "http_req_failed"
_CALL = ("http_req_duration", "http_reqs", FAILED)
_SINKS_MAX = 512  # per VU: with 50 VUs x 4096 the caches alone held ~100 MB of distinct names


def matches(status: int, expected: Expected) -> bool:
    """Whether ``status`` is an expected one (``expected`` None: 200-399)."""
    if expected is None:
        return 200 <= status < 400
    if isinstance(expected, int) and not isinstance(expected, bool):
        return status == expected
    if isinstance(expected, range):
        return status in expected
    if isinstance(expected, (set, frozenset, list, tuple)) and all(
            isinstance(s, int) and not isinstance(s, bool) for s in expected):
        return status in expected
    raise ConfigError(f"expected={expected!r}: expected a status (201), a range "
                      "(range(200, 300)) or a collection of statuses ({200, 404})")


def error_code(kind: str, message: str) -> int:
    """k6's error_code for a transport error (lib/netext/httpext/error_codes.go)."""
    if kind == "ConnectError":
        if "refused" in message.lower():
            return 1212
        if "name or service" in message.lower() or "nodename" in message.lower():
            return 1101
        return 1210
    if kind == "ConnectTimeout":
        return 1211
    if kind.endswith("Timeout"):
        return 1050
    if kind == "ReadError" and "reset" in message.lower():
        return 1220
    if kind == "WriteError":
        return 1201
    return 1000


class HttpMeter:
    """One per client: the sinks of each (name, method, status, outcome) looked up once."""

    def __init__(self, ctx: ClientContext) -> None:
        store = self._store = ctx.store
        define_builtins(store, "http")  # thresholds on them never see a missing metric
        self._ctx = ctx
        self._reporting = ctx.on_error is not None
        self._base = ctx.base_tags   # the VU's scenario (and group) tags, as k6 tags samples
        self._sinks: dict[tuple[Tags, str, str, int, bool, str | None], CallSinks] = {}
        self._data: dict[Tags, tuple[Counter, Counter]] = {}

    def exchange(self, method: str, url: str, name: str, expected: Expected, status: int,
                 elapsed: float, sent: int, received: int, content: bytes) -> None:
        """A response was read: record it; an unexpected status is a failure whose cause is
        "HTTP <status>" with the start of the body (the reason a server gives, e.g. a 422's
        validation message). Once per request: kept to one call, the sinks' adds inlined."""
        ok = 200 <= status < 400 if expected is None else matches(status, expected)
        base = self._base()
        sinks = self._sinks.get((base, name, method, status, ok, None))
        if sinks is None:
            sinks = self._new_sinks(base, name, method, status, ok, None)
        sinks.duration.add(elapsed * 1000.0)
        sinks.count.add()
        sinks.failed.add(not ok)
        data = self._data.get(base) or self._new_data(base)
        if sent:
            data[0].add(sent)
        if received:
            data[1].add(received)
        if not ok and self._reporting:
            text = content[:300].decode("utf-8", "replace").strip()
            self._ctx.report(FAILED, f"HTTP {status}",
                             f"{method} {url} -> {status} {text}".rstrip())

    def failure(self, method: str, url: str, name: str, failure: Failure, elapsed: float,
                sent: int, received: int, timeout: float) -> Response:
        """A transport error: record it, report it and return the status-0 response."""
        message = failure.message
        if not message and failure.type.endswith("Timeout"):
            message = f"no response within {timeout:g}s"
        error = f"{failure.type}: {message}" if message else failure.type
        if failure.type == RESOURCE_ERROR:  # the generator's shortage, not the server's fault
            self._ctx.report(GENERATOR, failure.type, f"{error} ({method} {url})")
            return Response(0, [], b"", elapsed, method, url, reason="", error=error,
                            error_code=1000)
        base = self._base()
        sinks = self._sinks.get((base, name, method, 0, False, failure.type))
        if sinks is None:
            sinks = self._new_sinks(base, name, method, 0, False, failure.type)
        sinks.record(elapsed * 1000.0, True)
        data = self._data.get(base) or self._new_data(base)
        data[0].add(sent)
        data[1].add(received)
        self._ctx.report(FAILED, failure.type, f"{error} ({method} {url})")
        return Response(0, [], b"", elapsed, method, url, reason="", error=error,
                        error_code=error_code(failure.type, message))

    def _new_sinks(self, base: Tags, name: str, method: str, status: int, ok: bool,
                   error: str | None) -> CallSinks:
        tags: tuple[tuple[str, str], ...] = (
            ("expected_response", "true" if ok else "false"), ("method", method),
            ("name", name), ("status", str(status)))
        if error is not None:
            tags = (("error", error), *tags)  # sorted: "error" < "expected_response"
        if len(self._sinks) >= _SINKS_MAX:
            self._sinks.clear()  # distinct names (ids in paths): the store folds them anyway
        sinks = self._sinks[(base, name, method, status, ok, error)] = CallSinks(
            self._store, _CALL, with_tags(base, tags))
        return sinks

    def _new_data(self, base: Tags) -> tuple[Counter, Counter]:
        data = self._data[base] = (self._store.counter("data_sent", base),
                                   self._store.counter("data_received", base))
        return data
