"""The one error path: every failure, whatever its protocol, is counted here with its cause.

`error_tag` is the one exception -> (error type, message) map, used by every client and for
scenario exceptions. Exceptions of the protocol libraries keep their own class names
(httpx.ReadTimeout, websockets' ConnectionClosedError, asyncpg's UniqueViolationError...);
bare OS exceptions seen at a known phase of an exchange get httpx's names, as httpcore's
``map_exceptions`` gives them (a timeout while connecting is "ConnectTimeout", an OSError while
reading is "ReadError"...), so both HTTP transports report alike.

`ErrorLog` counts failures by (metric, type) and keeps the first example of each. The metric
is the rate whose failed sample the error explains: ``iteration_failed`` for scenario
exceptions, ``http_req_failed``, ``ws_failed``, ``db_query_failed`` for the clients (and any
other rate later, e.g. ``checks``), so every failed sample can be listed with its cause. It
merges like the metrics do (xdist) and round-trips through plain lists. It is where every
example and traceback is captured, so it is where they are redacted (``redact.Redactor``: the
API token, target passwords, echoed Authorization/Cookie values), once per kept example,
never per failure: nothing unredacted is ever stored, merged or sent over the xdist wire.
"""

from __future__ import annotations

import errno
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from pytest_novaload.redact import Redactor, redactor_from_env

__all__ = ["GENERATOR", "ITERATION_FAILED", "LISTED", "RESOURCE_ERROR", "ErrorInfo", "ErrorLog",
           "ErrorTag", "Phase", "error_tag", "resource_error"]

ITERATION_FAILED = "iteration_failed"
#: The metrics whose errors the result's ``errors`` list shows: every built-in rate, so each
#: failed sample is listed with its cause and the counts of a metric's entries add up to its
#: failed samples (``passes`` of the *_failed rates, ``fails`` of checks). A ws or db failure
#: that raises into the scenario is listed twice, as it failed two samples: once under its
#: client's metric, once under iteration_failed (with the traceback).
LISTED = frozenset({ITERATION_FAILED, "http_req_failed", "ws_failed", "db_query_failed",
                    "checks"})
#: The error type of the generator's own shortage (file descriptors, ephemeral ports): not the
#: server's failure, so counted under GENERATOR, apart from the rates, and shown with the fix.
RESOURCE_ERROR = "GeneratorResourceError"
GENERATOR = "generator"
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.EADDRNOTAVAIL})
_RESOURCE_TEXTS = ("too many open files", "cannot assign requested address")
EXAMPLE_MAX = 500          # characters kept of a client's example message
TRACEBACK_MAX = 4000       # characters kept of a scenario exception's first traceback

Phase: TypeAlias = Literal["connect", "read", "write", "protocol"]
_PHASES: dict[str, tuple[str, str]] = {
    "connect": ("ConnectTimeout", "ConnectError"),
    "read": ("ReadTimeout", "ReadError"),
    "write": ("WriteTimeout", "WriteError"),
}


class ErrorTag:
    """An error's type (the ``error`` tag of the sample) and message; ``str()`` joins them."""

    __slots__ = ("message", "type")

    def __init__(self, type: str, message: str = "") -> None:
        self.type = type
        self.message = message

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type

    def __repr__(self) -> str:
        return f"ErrorTag({self.type!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ErrorTag) and other.type == self.type
                and other.message == self.message)

    def __hash__(self) -> int:
        return hash((self.type, self.message))


def error_tag(exc: BaseException, phase: Phase | None = None) -> ErrorTag:
    """The error type and message of ``exc``; ``phase`` names where in an exchange an OS-level
    exception happened ("protocol": the peer's bytes could not be parsed)."""
    if resource_error(exc):
        return ErrorTag(RESOURCE_ERROR, _os_message(exc) if isinstance(exc, OSError)
                        else str(exc) or type(exc).__name__)
    if phase == "protocol":
        return ErrorTag("RemoteProtocolError", str(exc) or type(exc).__name__)
    if phase is not None:
        timeout, other = _PHASES[phase]
        if isinstance(exc, TimeoutError):
            return ErrorTag(timeout, "")
        if isinstance(exc, OSError):
            return ErrorTag(other, _os_message(exc))
    return ErrorTag(type(exc).__name__, str(exc))


def resource_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps: httpx, websockets and asyncpg chain the OSError) is
    the generator running out of file descriptors or ephemeral ports."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 5:
        if isinstance(cur, OSError) and cur.errno in _RESOURCE_ERRNOS:
            return True
        text = str(cur).lower()
        if any(t in text for t in _RESOURCE_TEXTS):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


def _os_message(exc: OSError) -> str:
    """The OS error's text, with the words "Connection refused" whatever the event loop says."""
    text = str(exc)
    if isinstance(exc, ConnectionRefusedError) and "refused" not in text.lower():
        return f"[Errno {exc.errno}] Connection refused"
    return text or type(exc).__name__


@dataclass
class ErrorInfo:
    """One error type of one metric: how often, and the first example in full."""

    type: str
    count: int = 0
    example: str = ""
    traceback: str = ""
    metric: str = ITERATION_FAILED

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "count": self.count, "example": self.example}
        if self.traceback or self.metric == ITERATION_FAILED:
            d["traceback"] = self.traceback
        d["metric"] = self.metric
        return d


class ErrorLog:
    """Failures by (metric, type), each counted with its first example (see the module doc)."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        """``redactor``: hides secrets in examples (default: the environment's, at capture)."""
        self._by_key: dict[tuple[str, str], ErrorInfo] = {}
        self.redactor = redactor

    def _redactor(self) -> Redactor:
        return self.redactor if self.redactor is not None else redactor_from_env()

    def record(self, metric: str, type: str, example: str,
               count: int = 1) -> None:
        """Count ``count`` failed samples of ``metric`` caused by ``type``."""
        info = self._by_key.get((metric, type))
        if info is None:
            info = self._by_key[(metric, type)] = ErrorInfo(
                type, 0, self._redactor().clip(example, EXAMPLE_MAX), "", metric)
        info.count += count

    def add(self, exc: BaseException) -> None:
        """Count a scenario exception (a failed iteration), keeping the first traceback."""
        tag = error_tag(exc)
        info = self._by_key.get((ITERATION_FAILED, tag.type))
        if info is None:
            redactor = self._redactor()
            info = self._by_key[(ITERATION_FAILED, tag.type)] = ErrorInfo(
                tag.type, 0, redactor.redact(str(tag)),
                redactor.clip("".join(traceback.format_exception(exc)), TRACEBACK_MAX,
                              keep="tail"))
        info.count += 1

    def merge(self, other: ErrorLog) -> None:
        """Add ``other``'s counts; the first example seen of each error stays."""
        for key, info in other._by_key.items():
            mine = self._by_key.get(key)
            if mine is None:
                self._by_key[key] = ErrorInfo(info.type, info.count, info.example,
                                              info.traceback, info.metric)
            else:
                mine.count += info.count
                mine.traceback = mine.traceback or info.traceback

    def entries(self) -> list[ErrorInfo]:
        """Scenario exceptions first, then client failures, each by count (most first)."""
        return sorted(self._by_key.values(),
                      key=lambda e: (e.metric != ITERATION_FAILED, -e.count))

    def count(self, metric: str | None = None) -> int:
        """How many failures were counted (of ``metric`` only, when given)."""
        return sum(e.count for e in self._by_key.values() if metric in (None, e.metric))

    def of(self, metric: str) -> tuple[int, str]:
        """(failures counted for ``metric``, the first example of its most frequent type)."""
        mine = [e for e in self.entries() if e.metric == metric]
        return sum(e.count for e in mine), mine[0].example if mine else ""

    def summary(self, metrics: Iterable[str] = LISTED) -> list[dict[str, Any]]:
        """The result's ``errors`` list: the entries of ``metrics``, as `entries` orders them."""
        wanted = frozenset(metrics)
        return [e.to_dict() for e in self.entries() if e.metric in wanted]

    def to_list(self) -> list[dict[str, Any]]:
        """Every entry as plain dicts (the xdist wire format); `from_list` reads it back."""
        return [e.to_dict() for e in self.entries()]

    @classmethod
    def from_list(cls, items: Iterable[dict[str, Any]]) -> ErrorLog:
        log = cls()
        for d in items:
            info = ErrorInfo(d["type"], int(d["count"]), d.get("example", ""),
                             d.get("traceback", ""), d.get("metric", ITERATION_FAILED))
            log._by_key[(info.metric, info.type)] = info
        return log
