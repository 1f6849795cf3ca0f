"""OpenTelemetry metrics over OTLP/HTTP (protobuf), in k6's mapping (its ``opentelemetry``
output, k6 >= v1.4), so collectors and backends that take k6's OTLP metrics take ours.

k6's mapping, kept here: a counter is a monotonic cumulative ``Sum`` of doubles; a gauge a
``Gauge``; a rate one monotonic ``Sum`` of integers named ``<metric>.total`` with the
attribute ``condition`` = ``nonzero`` (passes) or ``zero`` (fails); a trend a cumulative
explicit-bucket ``Histogram`` (count, sum, min, max, and the OpenTelemetry SDK's default
bounds 0, 5, 10, 25 ... 10000, the ones k6's Go SDK uses). Units as k6 passes them: ``ms``
for timings, ``By`` for bytes. Attributes are the series' tags (empty values left out) plus
``testid`` (the test's nodeid, as the Prometheus output labels it); the resource carries
``service.name`` (``K6_OTEL_SERVICE_NAME``, default ``k6``) and ``service.version``, and
``K6_OTEL_METRIC_PREFIX`` prefixes every name (default none), as in k6.

``otlp=http://HOST:PORT`` is the base URL: ``/v1/metrics`` is appended, as OpenTelemetry's
``OTEL_EXPORTER_OTLP_ENDPOINT`` does (``http://127.0.0.1:8428/opentelemetry`` for
VictoriaMetrics; a URL that already ends in ``/v1/metrics`` is used as it is). One
ExportMetricsServiceRequest per batch of windows, each window one data point per series at
its second, all encoded by hand (no protobuf library), sent from a ``Background`` thread.
Names, attributes and the test id are redacted (``redactor``, once per series) as every
artifact is: a tag may quote a token or a URL with user info.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pytest_novaload import __version__
from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import Tags
from pytest_novaload.outputs.jsonout import contains_of
from pytest_novaload.outputs.model import Cumulative, SeriesNames
from pytest_novaload.outputs.promrw import _field, _varint, post
from pytest_novaload.outputs.sender import WindowItem, WindowStream
from pytest_novaload.redact import Redactor, display_target, redactor_from_env

__all__ = ["DEFAULT_BOUNDS", "HEADERS", "OtlpOutput", "Point", "check_url", "encode_request",
           "metrics_url", "to_points"]

DEFAULT_BOUNDS: tuple[float, ...] = (0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500,
                                     5000, 7500, 10000)
"""The OpenTelemetry SDKs' default explicit histogram bounds (what k6 sends)."""
HEADERS = {"Content-Type": "application/x-protobuf", "User-Agent": "pytest-novaload-otlp"}
_UNITS = {"time": "ms", "data": "By"}
_CUMULATIVE = 2  # AggregationTemporality

Point = tuple[str, str, str, Tags, int, int, Any]
"""(metric name, kind, unit, attributes, start ns, time ns, value): value is a float (counter,
gauge), ``(passes, fails)`` (rate) or ``(count, sum, min, max, bucket_counts)`` (trend)."""


# -- protobuf (opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest) ----------

def _fixed64(number: int, value: int) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<Q", value & (1 << 64) - 1)


def _double(number: int, value: float) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<d", value)


def _uint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _str(number: int, value: str) -> bytes:
    return _field(number, value.encode())


def _kv(key: str, value: str) -> bytes:  # KeyValue{key=1, value=2: AnyValue{string_value=1}}
    return _str(1, key) + _field(2, _str(1, value))


# Fields in number order, as protobuf libraries write them: the bytes are canonical.

def _number_point(attrs: Tags, start: int, at: int, value: float | int) -> bytes:
    # NumberDataPoint: start=2, time=3 (fixed64), as_double=4 | as_int=6 (sfixed64), attrs=7.
    body = (_fixed64(2, start) if start else b"") + _fixed64(3, at)
    body += _fixed64(6, value) if isinstance(value, int) else _double(4, value)
    return body + b"".join(_field(7, _kv(k, v)) for k, v in attrs)


def _histogram_point(attrs: Tags, start: int, at: int, value: Any) -> bytes:
    # HistogramDataPoint: start=2, time=3, count=4 (fixed64), sum=5, bucket_counts=6 (packed
    # fixed64), explicit_bounds=7 (packed double), attrs=9, min=11, max=12.
    count, total, lo, hi, buckets = value
    body = (_fixed64(2, start) if start else b"") + _fixed64(3, at) + _fixed64(4, count)
    body += _double(5, total)
    body += _field(6, struct.pack(f"<{len(buckets)}Q", *buckets))
    body += _field(7, struct.pack(f"<{len(DEFAULT_BOUNDS)}d", *DEFAULT_BOUNDS))
    body += b"".join(_field(9, _kv(k, v)) for k, v in attrs)
    return body + _double(11, lo) + _double(12, hi)


def _metric(name: str, kind: str, unit: str, points: Sequence[Point]) -> bytes:
    # Metric: name=1, unit=3, gauge=5, sum=7, histogram=9. Sum: points=1, temporality=2,
    # is_monotonic=3; Histogram: points=1, temporality=2; Gauge: points=1.
    head = _str(1, name) + (_str(3, unit) if unit else b"")
    if kind == "trend":
        data = b"".join(_field(1, _histogram_point(p[3], p[4], p[5], p[6])) for p in points)
        return head + _field(9, data + _uint(2, _CUMULATIVE))
    if kind == "gauge":
        data = b"".join(_field(1, _number_point(p[3], 0, p[5], float(p[6]))) for p in points)
        return head + _field(5, data)
    if kind == "rate":
        data = b""
        for p in points:
            passes, fails = p[6]
            for condition, n in (("nonzero", passes), ("zero", fails)):
                attrs = tuple(sorted((*p[3], ("condition", condition))))
                data += _field(1, _number_point(attrs, p[4], p[5], int(n)))
    else:
        data = b"".join(_field(1, _number_point(p[3], p[4], p[5], float(p[6]))) for p in points)
    return head + _field(7, data + _uint(2, _CUMULATIVE) + _uint(3, 1))


def encode_request(points: Iterable[Point], *, service: str = "k6",
                   version: str = __version__, scope: str = "k6") -> bytes:
    """The ExportMetricsServiceRequest bytes: one resource, one scope, one Metric per name."""
    by: dict[str, list[Point]] = {}
    for p in points:
        by.setdefault(p[0], []).append(p)
    metrics = b"".join(_field(2, _metric(name, ps[0][1], ps[0][2], ps))
                       for name, ps in by.items())
    resource = _field(1, _kv("service.name", service)) + _field(1, _kv("service.version",
                                                                        version))
    scope_metrics = _field(1, _str(1, scope) + _str(2, __version__)) + metrics
    return _field(1, _field(1, resource) + _field(2, scope_metrics))


# -- mapping ---------------------------------------------------------------------------------

def _attrs(tags: Tags, test_id: str) -> Tags:
    pairs = {k: v for k, v in tags if v != ""}
    if test_id:
        pairs["testid"] = test_id
    return tuple(sorted(pairs.items()))


def to_points(cum: Cumulative, test_id: str, start_ns: int, at_ns: int, *, prefix: str = "",
              non_time: frozenset[str] = frozenset(),
              clean: Callable[[str, Tags], tuple[str, Tags]] | None = None) -> list[Point]:
    """Every series of ``cum`` as one k6-mapped point at ``at_ns`` (cumulative since
    ``start_ns``); ``clean``: the series' name and tags as sent (redacted)."""
    out: list[Point] = []
    for raw_name, kind, raw_tags, sink in cum.sinks():
        unit = _UNITS.get(contains_of(raw_name, kind, non_time), "")
        name, tags = (raw_name, raw_tags) if clean is None else clean(raw_name, raw_tags)
        attrs = _attrs(tags, test_id)
        value: Any
        if kind == "trend":
            s: Any = sink
            at_most = s.counts_at_most(DEFAULT_BOUNDS)
            buckets = [b - a for a, b in zip([0, *at_most], at_most, strict=False)]
            buckets.append(s.count - at_most[-1])
            value = (s.count, float(s.sum), float(s.min), float(s.max), buckets)
            full = prefix + name
        elif kind == "rate":
            st = sink.stats()
            value = (int(st["passes"]), int(st["fails"]))
            full = prefix + name + ".total"
        elif kind == "counter":
            value = float(sink.value("count"))
            full = prefix + name
        else:
            value = float(sink.value("value"))
            full = prefix + name
        out.append((full, kind, unit, attrs, start_ns, at_ns, value))
    return out


def check_url(url: str) -> str:
    """``url`` when it is an http(s) URL with a host; a ConfigError naming it otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(f"otlp={display_target(url)!r}: expected the OTLP/HTTP base URL of a "
                          "collector or backend, such as 'otlp=http://127.0.0.1:4318' "
                          "(/v1/metrics is appended)")
    return url


def metrics_url(url: str) -> str:
    """Where the requests go: ``url`` + ``/v1/metrics`` unless it ends so already."""
    base = url.rstrip("/")
    return base if base.endswith("/v1/metrics") else base + "/v1/metrics"


def parse_headers(raw: str) -> dict[str, str]:
    """``K6_OTEL_HEADERS``: ``k1=v1,k2=v2``."""
    out: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if not item.strip():
            continue
        if not sep or not key.strip():
            raise ConfigError(f"K6_OTEL_HEADERS item {key.strip()!r}: expected KEY=VALUE "
                              "pairs separated by commas, e.g. 'X-Scope-OrgID=load'")
        out[key.strip()] = value.strip()
    return out


_Item = WindowItem


class OtlpOutput(WindowStream):
    """The ``otlp=URL`` output: give it each test's per-second windows (like
    ``PrometheusRemoteWrite``: ``window()`` never blocks, ``close()`` returns the report)."""

    kind = "otlp"

    def __init__(self, url: str, *, prefix: str = "", service: str = "k6",
                 service_version: str = __version__, timeout: float = 5.0,
                 headers: Mapping[str, str] | None = None, max_queue: int = 120,
                 non_time_trends: Iterable[str] = (),
                 warn: Callable[[str], None] | None = None,
                 redactor: Redactor | None = None) -> None:
        self.url = metrics_url(check_url(url))
        #: Hides secrets in names and attributes; the session replaces it as it learns them.
        self.redactor = redactor if redactor is not None else redactor_from_env()
        self._names = SeriesNames()
        self.prefix = prefix
        self.service = service
        self.service_version = service_version
        self.timeout = timeout
        self.headers = dict(headers or {})
        self._non_time = frozenset(non_time_trends)
        self._tests: dict[str, tuple[Cumulative, int]] = {}
        self._start_stream(max_queue, warn)

    def _send(self, batch: Sequence[_Item]) -> None:
        points: list[Point] = []
        r = self.redactor

        def clean(name: str, tags: Tags) -> tuple[str, Tags]:
            return self._names.clean(r, name, tags)

        for what, test_id, t, window in batch:
            if what == "end":
                self._tests.pop(test_id, None)
                continue
            at = int(t * 1e9)
            if test_id not in self._tests:  # the first window opened a second before it closed
                self._tests[test_id] = (Cumulative(), at - 1_000_000_000)
            cum, start = self._tests[test_id]
            assert window is not None
            cum.add_window(window)
            points += to_points(cum, r.redact(test_id), start, at, prefix=self.prefix,
                                non_time=self._non_time, clean=clean)
        if points:
            payload = encode_request(points, service=self.service,
                                     version=self.service_version)
            post(self.url, payload, timeout=self.timeout, headers=self.headers,
                 base_headers=HEADERS)
