"""Prometheus remote write: protobuf bytes, k6's names and labels, cumulative values, headers."""

from __future__ import annotations

import math
import struct

import pytest

from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import MetricStore, make_tags
from pytest_novaload.outputs import _snappy
from pytest_novaload.outputs.model import Cumulative, SeriesValue, check_trend_stats
from pytest_novaload.outputs.promrw import (
    STALE_NAN,
    PrometheusRemoteWrite,
    check_url,
    encode_write_request,
    series_name,
    stat_suffix,
    to_timeseries,
)
from tests.unit.outputs.promdecode import decode_write_request

HTTP_TAGS = make_tags(expected_response="true", method="GET", name="/vms", status="200")


def test_encoding_decodes_back_to_the_same_series() -> None:
    series = [
        ((("__name__", "k6_vus"), ("testid", "t::a")), [(5.0, 1_700_000_000_123)]),
        ((("__name__", "k6_x"), ("a", "é✓")), [(0.25, 1), (-1.5, 2), (math.inf, 3)]),
        ((("__name__", "k6_neg"),), [(1.0, -5)]),
    ]
    decoded = decode_write_request(encode_write_request(series))
    assert [d["labels"] for d in decoded] == [dict(labels) for labels, _ in series]
    assert [d["samples"] for d in decoded] == [samples for _, samples in series]


def test_stale_marker_bits_survive_encoding() -> None:
    payload = encode_write_request([((("__name__", "k6_vus"),), [(STALE_NAN, 7)])])
    (value, _ts), = decode_write_request(payload)[0]["samples"]
    assert struct.pack("<d", value) == struct.pack("<Q", 0x7FF0000000000002)


@pytest.mark.parametrize(("stat", "suffix"), [
    ("p(99)", "p99"), ("p(95)", "p95"), ("p(99.9)", "p999"), ("p(0.95)", "p095"),
    ("med", "med"), ("avg", "avg"), ("min", "min"), ("max", "max"), ("count", "count")])
def test_trend_stat_suffixes_are_k6s(stat: str, suffix: str) -> None:
    assert stat_suffix(stat) == suffix


def test_metric_names_are_made_valid() -> None:
    assert series_name("k6_", "http_reqs", "total") == "k6_http_reqs_total"
    assert series_name("k6_", "vm.create-time", "p99") == "k6_vm_create_time_p99"
    assert series_name("", "9lives") == "_9lives"


def _values(**stats: float) -> list[SeriesValue]:
    return [SeriesValue("http_req_duration", "trend", HTTP_TAGS, stats)]


def test_trend_maps_to_one_gauge_per_stat_in_seconds() -> None:
    stats = ("p(99)", "p(95)", "med", "count")
    out = to_timeseries(_values(**{"p(99)": 250.0, "p(95)": 120.0, "med": 40.0, "count": 9.0}),
                        "tests/t.py::test_a", 1000, trend_stats=stats)
    by_name = {dict(labels)["__name__"]: samples[0][0] for labels, samples in out}
    assert by_name == {"k6_http_req_duration_p99": 0.25, "k6_http_req_duration_p95": 0.12,
                       "k6_http_req_duration_med": 0.04, "k6_http_req_duration_count": 9.0}
    labels = dict(out[0][0])
    assert labels == {"__name__": "k6_http_req_duration_p99", "expected_response": "true",
                      "method": "GET", "name": "/vms", "status": "200",
                      "testid": "tests/t.py::test_a"}
    assert [k for k, _ in out[0][0]] == sorted(labels)  # remote write wants sorted labels


def test_non_time_trend_keeps_its_unit() -> None:
    out = to_timeseries([SeriesValue("queue_depth", "trend", (), {"max": 12.0})], "t", 1,
                        trend_stats=("max",), is_time=lambda n: n != "queue_depth")
    assert out[0][1] == [(12.0, 1)]


def test_counter_rate_gauge_names_and_labels() -> None:
    values = [
        SeriesValue("http_reqs", "counter", HTTP_TAGS, {"count": 42.0}),
        SeriesValue("checks", "rate", make_tags(check="status is 200"),
                    {"rate": 0.75, "passes": 3.0, "fails": 1.0}),
        SeriesValue("vus", "gauge", (), {"value": 10.0}),
        SeriesValue("iterations", "counter", make_tags(scenario="", group="::g"),
                    {"count": 7.0}),
        SeriesValue("weird", "gauge", make_tags(**{"a-b": "1", "__x": "2", "9": "3"}),
                    {"value": 1.0}),
    ]
    out = {dict(labels)["__name__"]: (dict(labels), samples)
           for labels, samples in to_timeseries(values, "t::id", 5)}
    assert out["k6_http_reqs_total"][1] == [(42.0, 5)]
    assert out["k6_checks_rate"] == ({"__name__": "k6_checks_rate", "check": "status is 200",
                                      "testid": "t::id"}, [(0.75, 5)])
    assert out["k6_vus"][0] == {"__name__": "k6_vus", "testid": "t::id"}
    assert out["k6_iterations_total"][0] == {"__name__": "k6_iterations_total",
                                             "group": "::g", "testid": "t::id"}  # empty left out
    assert out["k6_weird"][0] == {"__name__": "k6_weird", "a_b": "1", "tag__x": "2", "_9": "3",
                                  "testid": "t::id"}


def _window(store: MetricStore, n: int, base: float, vus: int, failed: int = 0) -> MetricStore:
    for i in range(n):
        store.trend("http_req_duration", HTTP_TAGS).add(base + i)
        store.counter("http_reqs", HTTP_TAGS).add()
        store.rate("http_req_failed", HTTP_TAGS).add(i < failed)
    store.gauge("vus").set(vus)
    return store.roll()


def test_cumulative_values_follow_k6_sinks() -> None:
    store, cum = MetricStore(), Cumulative()
    cum.add_window(_window(store, 100, 1.0, vus=10, failed=10))
    cum.add_window(_window(store, 100, 1001.0, vus=3))
    got = {v.name: v.stats for v in cum.values(("max", "min", "count", "sum"))}
    assert got["http_reqs"] == {"count": 200.0}  # total since the start
    assert got["http_req_failed"]["rate"] == pytest.approx(0.05)  # 10 of 200
    assert got["vus"] == {"value": 3.0}  # the level now, not the largest
    assert got["http_req_duration"]["max"] == 1100.0
    assert got["http_req_duration"]["min"] == 1.0
    assert got["http_req_duration"]["count"] == 200.0
    assert got["http_req_duration"]["sum"] == pytest.approx(sum(range(1, 101)) * 2 + 100_000)
    assert store.aggregate("http_reqs").value("count") == 200  # the live store is untouched


def test_trend_stats_are_checked() -> None:
    assert check_trend_stats(["p(99)", " avg", "p(99)"]) == ("p(99)", "avg")
    with pytest.raises(ConfigError, match=r"'p\(101\)', 'mean'.*p\(99\),p\(95\)"):
        check_trend_stats(["p(101)", "mean"])
    with pytest.raises(ConfigError, match="empty"):
        check_trend_stats([])


@pytest.mark.parametrize("url", ["127.0.0.1:9090/api/v1/write", "ftp://h/x", "http:///x", ""])
def test_bad_urls_name_the_value_and_the_fix(url: str) -> None:
    with pytest.raises(ConfigError, match=r"prometheus-rw=.*http://127\.0\.0\.1:9090/api/v1/write"):
        check_url(url)
    with pytest.raises(ConfigError):
        PrometheusRemoteWrite(url)


def test_payload_is_snappy_protobuf() -> None:
    payload = _snappy.compress(encode_write_request(
        to_timeseries(_values(**{"p(99)": 1.0}), "t", 9, trend_stats=("p(99)",))))
    decoded = decode_write_request(_snappy.decompress(payload))
    assert decoded[0]["labels"]["__name__"] == "k6_http_req_duration_p99"
    assert decoded[0]["samples"] == [(0.001, 9)]


def test_which_trends_are_timings() -> None:
    from pytest_novaload.outputs.model import is_time_trend

    assert is_time_trend("http_req_duration") and is_time_trend("vm_creation_time")
    assert not is_time_trend("queue_depth", frozenset({"queue_depth"}))
