"""``--load-out otlp=URL``: OTLP/HTTP metrics in k6's mapping.

The encoding is read back with the official OpenTelemetry protobuf schema; end to end a load
streams into a real VictoriaMetrics on loopback (OTLP in, PromQL out) and the values it stores
are compared with summary.json, with and without xdist.
"""

from __future__ import annotations

import bisect
import time
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import MetricStore
from pytest_novaload.metrics.sinks import Trend
from pytest_novaload.outputs.config import build_outputs, parse_out_specs
from pytest_novaload.outputs.model import Cumulative
from pytest_novaload.outputs.otlp import (
    DEFAULT_BOUNDS,
    OtlpOutput,
    encode_request,
    metrics_url,
    parse_headers,
    to_points,
)
from tests.outputs.conftest import VictoriaMetrics
from tests.outputs.test_plugin_outputs import NODEID, _run, _test_of, api  # noqa: F401
from tests.plugin.conftest import Target, target  # noqa: F401  (the fixture)

VALUES = [1.0, 3.0, 7.0, 20.0, 20.0, 600.0, 20000.0]
TAGS = (("method", "GET"), ("status", "200"), ("empty", ""))


def _window() -> MetricStore:
    store = MetricStore()
    for v in VALUES:
        store.trend("http_req_duration", TAGS).add(v)
    store.counter("http_reqs", TAGS).add(7)
    store.counter("data_received").add(5000)
    rate = store.rate("http_req_failed", TAGS)
    for i in range(10):
        rate.add(i < 3)
    store.gauge("vus").set(4)
    return store.roll()


def _decoded(body: bytes) -> dict[str, Any]:
    req = ExportMetricsServiceRequest()
    req.ParseFromString(body)
    assert req.SerializeToString() == body  # nothing unknown, nothing lost: the schema's bytes
    (rm,) = req.resource_metrics
    resource = {kv.key: kv.value.string_value for kv in rm.resource.attributes}
    assert resource == {"service.name": "k6", "service.version": "9.9"}
    (sm,) = rm.scope_metrics
    assert sm.scope.name == "k6"
    return {m.name: m for m in sm.metrics}


def test_the_request_follows_k6s_mapping_in_the_official_schema() -> None:
    cum = Cumulative()
    cum.add_window(_window())
    points = to_points(cum, "t.py::test_x", 1_000_000_000, 2_000_000_000)
    metrics = _decoded(encode_request(points, version="9.9"))
    assert sorted(metrics) == ["data_received", "http_req_duration", "http_req_failed.total",
                               "http_reqs", "vus"]
    want_attrs = {"method": "GET", "status": "200", "testid": "t.py::test_x"}  # "" left out

    def attrs(point: Any) -> dict[str, str]:
        return {kv.key: kv.value.string_value for kv in point.attributes}

    h = metrics["http_req_duration"]
    assert h.unit == "ms" and h.WhichOneof("data") == "histogram"
    assert h.histogram.aggregation_temporality == 2  # cumulative, as k6's SDK sends
    (hp,) = h.histogram.data_points
    assert attrs(hp) == want_attrs
    assert (hp.start_time_unix_nano, hp.time_unix_nano) == (1_000_000_000, 2_000_000_000)
    assert (hp.count, hp.sum, hp.min, hp.max) == (7, sum(VALUES), 1.0, 20000.0)
    assert list(hp.explicit_bounds) == list(DEFAULT_BOUNDS)
    at_most = [bisect.bisect_right(VALUES, b) for b in DEFAULT_BOUNDS]
    assert list(hp.bucket_counts) == [b - a for a, b in zip([0, *at_most], at_most,
                                                            strict=False)] + [1]
    assert list(hp.bucket_counts)[:4] == [0, 2, 1, 2]  # (-inf,0] (0,5] (5,10] (10,25]

    r = metrics["http_req_failed.total"]
    assert r.sum.is_monotonic and r.sum.aggregation_temporality == 2
    got = {attrs(p)["condition"]: (p.as_int, attrs(p)) for p in r.sum.data_points}
    assert got == {"nonzero": (3, {**want_attrs, "condition": "nonzero"}),
                   "zero": (7, {**want_attrs, "condition": "zero"})}

    c = metrics["http_reqs"]
    assert c.unit == "" and c.sum.is_monotonic
    assert [(p.as_double, attrs(p)) for p in c.sum.data_points] == [(7.0, want_attrs)]
    assert metrics["data_received"].unit == "By"
    assert metrics["data_received"].sum.data_points[0].as_double == 5000.0
    (g,) = metrics["vus"].gauge.data_points
    assert g.as_double == 4.0 and g.start_time_unix_nano == 0


def test_prefix_and_several_windows_are_points_of_one_metric() -> None:
    cum = Cumulative()
    points = []
    for second in (1, 2):
        cum.add_window(_window())
        points += to_points(cum, "t", 0, second * 1_000_000_000, prefix="k6_")
    metrics = _decoded(encode_request(points, version="9.9"))
    assert set(metrics) == {"k6_data_received", "k6_http_req_duration",
                            "k6_http_req_failed.total", "k6_http_reqs", "k6_vus"}
    reqs = metrics["k6_http_reqs"].sum.data_points
    assert [(p.time_unix_nano, p.as_double) for p in reqs] == [(10**9, 7.0), (2 * 10**9, 14.0)]
    assert [p.count for p in metrics["k6_http_req_duration"].histogram.data_points] == [7, 14]


def test_bucket_counts_of_a_large_digest_are_close_and_consistent() -> None:
    import random
    rng = random.Random(3)
    xs = [rng.lognormvariate(3, 1.2) for _ in range(30_000)]
    t = Trend()
    for x in xs:
        t.add(x)
    xs.sort()
    got = t.counts_at_most(DEFAULT_BOUNDS)
    exact = [bisect.bisect_right(xs, b) for b in DEFAULT_BOUNDS]
    assert got == sorted(got) and got[0] == 0 and got[-1] == len(xs)
    for g, e in zip(got, exact, strict=True):
        assert abs(g - e) <= 0.002 * len(xs), (got, exact)


def test_urls_headers_and_spec_errors_name_the_fix() -> None:
    assert metrics_url("http://127.0.0.1:4318") == "http://127.0.0.1:4318/v1/metrics"
    assert metrics_url("http://h:8428/opentelemetry/") == "http://h:8428/opentelemetry/v1/metrics"
    assert metrics_url("http://h/v1/metrics") == "http://h/v1/metrics"
    assert parse_headers("A=1, B = x=y ,") == {"A": "1", "B": "x=y"}
    with pytest.raises(ConfigError, match=r"K6_OTEL_HEADERS item 'nokey'.*KEY=VALUE"):
        parse_headers("nokey")
    assert [s.name for s in parse_out_specs(["otlp=http://127.0.0.1:4318"])] == ["otlp"]
    with pytest.raises(ConfigError) as info:
        parse_out_specs(["otlp=127.0.0.1:4318", "otlp=http://u:pw@h:1/?x=1"])
    text = str(info.value)
    assert "otlp='127.0.0.1:4318': expected the OTLP/HTTP base URL" in text
    assert "'otlp=http://127.0.0.1:4318'" in text and "pw" not in text
    env = {"K6_OTEL_METRIC_PREFIX": "k6_", "K6_OTEL_SERVICE_NAME": "svc",
           "K6_OTEL_HEADERS": "X-Scope-OrgID=load"}
    (out,) = build_outputs(parse_out_specs(["otlp=http://127.0.0.1:1"]), env=env)
    try:
        assert isinstance(out, OtlpOutput)
        assert (out.prefix, out.service, out.headers) == ("k6_", "svc",
                                                          {"X-Scope-OrgID": "load"})
        assert out.url == "http://127.0.0.1:1/v1/metrics"
    finally:
        out.close(timeout=1)


# -- end to end against VictoriaMetrics --------------------------------------------------------

def _one(vm: VictoriaMetrics, expr: str, at: float) -> float:
    result = vm.query(expr, at)
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


def _check_against_summary(vm: VictoriaMetrics, nodeid: str, test: dict[str, Any]) -> None:
    vm.flush()
    at = time.time()
    m = test["metrics"]
    sel = f'testid="{nodeid}"'

    def one(name: str, extra: str = "", fn: str = "sum") -> float:
        matchers = ", ".join(x for x in (f'__name__="{name}"', sel, extra) if x)
        return _one(vm, f"{fn}({{{matchers}}})", at)

    assert one("http_reqs") == m["http_reqs"]["count"] > 0
    assert one("iterations") == m["iterations"]["count"]
    assert one("data_received") == m["data_received"]["count"]
    # over the run, not the last sample: under xdist the shards' last seconds may differ
    # (a second only one shard still ran holds only its VUs)
    vus_max = _one(vm, f'max_over_time(sum({{__name__="vus_max", {sel}}})[5m:1s])', at)
    assert vus_max == m["vus_max"]["value"] == 4
    vus = _one(vm, f'max_over_time(sum({{__name__="vus", {sel}}})[5m:1s])', at)
    assert vus == m["vus"]["max"] == 4
    failed = m["http_req_failed"]
    assert one("http_req_failed.total", 'condition="nonzero"') == failed["passes"] > 0
    assert one("http_req_failed.total", 'condition="zero"') == failed["fails"] > 0
    checks = m["checks"]
    assert one("checks.total", 'condition="nonzero"') == checks["passes"]
    assert one("checks.total", 'condition="zero"') == checks["fails"]
    # Trends are histograms: the expected responses' series has the sub-metric's count and
    # sum exactly (avg = sum / count), all of them in the +Inf bucket, none at or below 0.
    sub = m["http_req_duration{expected_response:true}"]
    exp = 'expected_response="true"'
    count = one("http_req_duration_count", exp)
    assert count == sub["count"] > 0
    assert one("http_req_duration_sum", exp) / count == pytest.approx(sub["avg"], rel=1e-9)
    assert one("http_req_duration_bucket", f'{exp}, le="+Inf"') == count
    assert one("http_req_duration_bucket", f'{exp}, le="0"') == 0
    buckets = vm.query(f'{{__name__="http_req_duration_bucket", {sel}, {exp}}}', at)
    by_le = sorted((float(b["metric"]["le"]), float(b["value"][1])) for b in buckets)
    assert [le for le, _ in by_le] == [*DEFAULT_BOUNDS, float("inf")]
    assert [n for _, n in by_le] == sorted(n for _, n in by_le)   # cumulative, never falling
    # The resource and the attributes are k6's: service.name, the tags, testid.
    (series,) = vm.query(f'{{__name__="http_req_duration_count", {sel}, {exp}}}', at)
    assert series["metric"]["service.name"] == "k6"
    assert {"method", "name", "scenario", "status", "testid"} <= set(series["metric"])


def test_victoria_metrics_gets_the_run_as_summary_json_has_it(
        pytester: pytest.Pytester, api: Target, victoria_metrics: VictoriaMetrics) -> None:  # noqa: F811
    result, _ = _run(pytester, "--load-out", f"otlp={victoria_metrics.otlp_url}")
    result.assert_outcomes(passed=1)
    assert "pytest-novaload output" not in result.stdout.str()  # nothing dropped or failed
    nodeid = NODEID.format(name="victoria_metrics_gets_the_run_as_summary_json_has_it")
    _check_against_summary(victoria_metrics, nodeid, _test_of(pytester))


def test_under_xdist_the_controller_sends_one_merged_otlp_series_set(
        pytester: pytest.Pytester, api: Target, victoria_metrics: VictoriaMetrics) -> None:  # noqa: F811
    result, _ = _run(pytester, "-n", "2", "--load-out", f"otlp={victoria_metrics.otlp_url}",
                     subprocess=True)
    result.assert_outcomes(passed=1)
    nodeid = NODEID.format(name="under_xdist_the_controller_sends_one_merged_otlp_series_set")
    test = _test_of(pytester)
    assert test["shards"] == 2
    _check_against_summary(victoria_metrics, nodeid, test)  # vus max 4 = 2 + 2: merged
    series = victoria_metrics.api("/api/v1/series",
                                  **{"match[]": f'{{__name__="http_reqs", testid="{nodeid}"}}'})
    assert len(series) == 2, series   # mix 200 and boom 500: one series each, no worker label
