"""The one error path: the exception -> tag map and the log that counts failures by cause."""

from __future__ import annotations

import errno
import socket

import pytest

from pytest_novaload.metrics.errors import ITERATION_FAILED, ErrorLog, ErrorTag, error_tag


@pytest.mark.parametrize(("exc", "phase", "expected"), [
    (TimeoutError(), "connect", ErrorTag("ConnectTimeout", "")),
    (TimeoutError(), "read", ErrorTag("ReadTimeout", "")),
    (TimeoutError(), "write", ErrorTag("WriteTimeout", "")),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 9)"),
     "connect", ErrorTag("ConnectError", "[Errno 111] Connection refused")),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "connect",
     ErrorTag("ConnectError", "[Errno 111] Connection refused")),
    (socket.gaierror(-2, "Name or service not known"), "connect",
     ErrorTag("ConnectError", "[Errno -2] Name or service not known")),
    (ConnectionResetError(104, "Connection reset by peer"), "read",
     ErrorTag("ReadError", "[Errno 104] Connection reset by peer")),
    (ConnectionResetError(), "read", ErrorTag("ReadError", "ConnectionResetError")),
    (BrokenPipeError(32, "Broken pipe"), "write", ErrorTag("WriteError", "[Errno 32] Broken pipe")),
    (ValueError("bad chunk"), "protocol", ErrorTag("RemoteProtocolError", "bad chunk")),
    (ValueError(), "protocol", ErrorTag("RemoteProtocolError", "ValueError")),
    # without a phase, and for any non-OS exception, the class name and the text
    (ValueError("boom"), None, ErrorTag("ValueError", "boom")),
    (ConnectionResetError(104, "reset"), None,
     ErrorTag("ConnectionResetError", "[Errno 104] reset")),
    (KeyError("k"), "read", ErrorTag("KeyError", "'k'")),
])
def test_error_tag_maps_exceptions_by_phase(exc: BaseException, phase: str | None,
                                            expected: ErrorTag) -> None:
    assert error_tag(exc, phase) == expected  # type: ignore[arg-type]


def test_error_tag_text_joins_type_and_message() -> None:
    assert str(ErrorTag("ConnectError", "refused")) == "ConnectError: refused"
    assert str(ErrorTag("ReadTimeout")) == "ReadTimeout"


def _raised(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as caught:
        return caught


def test_log_counts_by_metric_and_type_keeping_the_first_example() -> None:
    log = ErrorLog()
    log.record("http_req_failed", "ConnectError", "ConnectError: refused (GET /a)")
    log.record("http_req_failed", "ConnectError", "ConnectError: refused (GET /b)")
    log.record("http_req_failed", "HTTP 503", "GET /s -> 503 busy", count=3)
    log.record("ws_failed", "ConnectError", "x" * 900)
    log.add(_raised(ValueError("boom 1")))
    log.add(_raised(ValueError("boom 2")))
    log.add(_raised(KeyError("k")))
    entries = [(e.metric, e.type, e.count) for e in log.entries()]
    assert entries == [(ITERATION_FAILED, "ValueError", 2), (ITERATION_FAILED, "KeyError", 1),
                       ("http_req_failed", "HTTP 503", 3), ("http_req_failed", "ConnectError", 2),
                       ("ws_failed", "ConnectError", 1)]
    by_type = {(e.metric, e.type): e for e in log.entries()}
    assert by_type[("http_req_failed", "ConnectError")].example == "ConnectError: refused (GET /a)"
    assert len(by_type[("ws_failed", "ConnectError")].example) == 500
    assert by_type[(ITERATION_FAILED, "ValueError")].example == "ValueError: boom 1"
    assert "Traceback" in by_type[(ITERATION_FAILED, "ValueError")].traceback
    assert log.count() == 9 and log.count("http_req_failed") == 5


def test_summary_keeps_the_errors_list_shape() -> None:
    log = ErrorLog()
    log.record("http_req_failed", "HTTP 422", "POST /vms -> 422 {\"detail\": \"name\"}")
    log.record("db_query_failed", "UniqueViolationError", "dup (statement: INSERT vms)")
    log.add(_raised(RuntimeError("x")))
    scenario, status, db = log.summary()  # every built-in rate's failures are listed
    assert (db["type"], db["count"], db["metric"]) == ("UniqueViolationError", 1,
                                                       "db_query_failed")
    assert set(scenario) == {"type", "count", "example", "traceback", "metric"}
    assert (scenario["type"], scenario["count"], scenario["metric"]) == (
        "RuntimeError", 1, ITERATION_FAILED)
    assert status == {"type": "HTTP 422", "count": 1, "metric": "http_req_failed",
                      "example": "POST /vms -> 422 {\"detail\": \"name\"}"}
    assert [e["type"] for e in log.summary(["db_query_failed"])] == ["UniqueViolationError"]


def test_merge_adds_counts_and_round_trips() -> None:
    a, b = ErrorLog(), ErrorLog()
    a.record("http_req_failed", "ReadTimeout", "first")
    b.record("http_req_failed", "ReadTimeout", "second", count=4)
    b.record("ws_failed", "ConnectionClosedError", "closed")
    b.add(_raised(ValueError("v")))
    a.merge(b)
    assert [(e.type, e.count, e.example) for e in a.entries()] == [
        ("ValueError", 1, "ValueError: v"), ("ReadTimeout", 5, "first"),
        ("ConnectionClosedError", 1, "closed")]
    back = ErrorLog.from_list(a.to_list())
    assert back.to_list() == a.to_list()
    b.merge(ErrorLog())
    assert b.count() == 6
