"""HTTP's measuring: samples per exchange, expected statuses, failures and their causes."""

from __future__ import annotations

import pytest

from pytest_novaload.clients.base import ClientContext
from pytest_novaload.clients.http.measure import HttpMeter, error_code, matches
from pytest_novaload.clients.http.transport import Failure
from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import MetricStore
from pytest_novaload.metrics.errors import ErrorLog


def meter() -> tuple[HttpMeter, MetricStore, ErrorLog]:
    store, log = MetricStore(), ErrorLog()
    return HttpMeter(ClientContext(store=store, vu_id=1, on_error=log.record)), store, log


def test_metrics_exist_before_any_request() -> None:
    _, store, _ = meter()
    assert {"http_req_duration", "http_reqs", "http_req_failed", "data_sent",
            "data_received"} <= set(store.names())


def test_an_exchange_is_one_sample_and_an_unexpected_status_a_cause() -> None:
    m, store, log = meter()
    m.exchange("GET", "http://h/a", "/a", None, 200, 0.002, 40, 100, b"{}")
    m.exchange("POST", "http://h/v", "/v", None, 422, 0.001, 50, 80, b' {"detail": "name"} ')
    m.exchange("GET", "http://h/m", "/m", 404, 404, 0.001, 40, 60, b"")
    assert store.aggregate("http_reqs").value("count") == 3
    assert store.aggregate("http_req_failed").value("rate") == pytest.approx(1 / 3)
    assert store.aggregate("http_req_duration").value("max") == pytest.approx(2.0)
    assert store.aggregate("data_sent").value("count") == 130
    assert store.aggregate("http_reqs", {"status": "422", "expected_response": "false"}).value(
        "count") == 1
    assert log.summary() == [{"type": "HTTP 422", "count": 1, "metric": "http_req_failed",
                              "example": 'POST http://h/v -> 422 {"detail": "name"}'}]


def test_a_transport_failure_is_tagged_reported_and_returned_as_status_0() -> None:
    m, store, log = meter()
    r = m.failure("GET", "http://h/x", "/x", Failure("ReadTimeout"), 2.0, 40, 0, 2.0)
    assert (r.status_code, r.error, r.error_code) == (0, "ReadTimeout: no response within 2s",
                                                      1050)
    assert store.aggregate("http_reqs", {"error": "ReadTimeout"}).value("count") == 1
    (entry,) = log.summary()
    assert (entry["type"], entry["example"]) == (
        "ReadTimeout", "ReadTimeout: no response within 2s (GET http://h/x)")


def test_expected_and_k6_error_codes() -> None:
    assert matches(399, None) and not matches(400, None)
    assert matches(201, 201) and matches(204, range(200, 300)) and matches(404, {200, 404})
    with pytest.raises(ConfigError, match="expected=True"):
        matches(200, True)
    assert error_code("ConnectError", "[Errno 111] Connection refused") == 1212
    assert error_code("ConnectError", "Name or service not known") == 1101
    assert error_code("ConnectTimeout", "") == 1211
    assert error_code("ReadError", "Connection reset by peer") == 1220
    assert error_code("RemoteProtocolError", "x") == 1000
