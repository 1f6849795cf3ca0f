"""Prometheus remote write in k6's shape, so Grafana's k6 dashboards read our runs unchanged.

Names and labels follow grafana/xk6-output-prometheus-remote (k6's ``experimental-prometheus-rw``
output): ``k6_`` + metric name, then ``_total`` for counters, ``_rate`` for rates, nothing for
gauges, and one series per trend stat (``_p99``, ``_p95``, ``_med``, ``_avg``... with ``p(99.9)``
spelled ``p999`` as k6 does), timings in seconds. Values are cumulative over the test, as k6's
output keeps one sink per series for the whole run. Labels are the series' tags (empty values
left out, as k6 does) plus ``testid`` = the test's nodeid. Names and label names are made valid
Prometheus identifiers (other characters become ``_``). Names, labels and the test id are
redacted (``redactor``, once per series) as every artifact is: a tag may quote a token or a URL
with user info.

The wire format (WriteRequest protobuf, Snappy block, three headers) is encoded by hand: the
four message types need no protobuf library. Sending runs in a ``Background`` thread.
"""

from __future__ import annotations

import math
import re
import struct
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import parse_percentile
from pytest_novaload.outputs._snappy import compress
from pytest_novaload.outputs.model import (
    DEFAULT_TREND_STATS,
    Cumulative,
    SeriesNames,
    SeriesValue,
    check_trend_stats,
    is_time_trend,
)
from pytest_novaload.outputs.sender import WindowItem, WindowStream
from pytest_novaload.redact import Redactor, display_target, redactor_from_env

__all__ = ["HEADERS", "STALE_NAN", "Labels", "PrometheusRemoteWrite", "TimeSeries",
           "encode_write_request", "series_name", "stat_suffix", "to_timeseries"]

Labels = tuple[tuple[str, str], ...]
TimeSeries = tuple[Labels, list[tuple[float, int]]]
"""One series of a WriteRequest: sorted labels (``__name__`` among them), (value, ms) samples."""

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "pytest-novaload-prometheus-rw",
}
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
"""Prometheus' staleness marker: ends a series at once instead of after 5 minutes."""

_BAD_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_BAD_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_TIME_COUNT_STATS = frozenset({"count"})


# -- protobuf (prompb.WriteRequest: timeseries=1; TimeSeries: labels=1, samples=2;
#    Label: name=1, value=2; Sample: value=1 double, timestamp=2 int64) ----------------------

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 two's complement, as protobuf encodes negatives
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _label(name: str, value: str) -> bytes:
    return _field(1, name.encode()) + _field(2, value.encode())


def _sample(value: float, ts_ms: int) -> bytes:
    return b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(ts_ms)


def encode_write_request(series: Iterable[TimeSeries]) -> bytes:
    """The WriteRequest protobuf bytes (before Snappy) of ``series``."""
    out = bytearray()
    for labels, samples in series:
        body = bytearray()
        for name, value in labels:
            body += _field(1, _label(name, value))
        for number, ts in samples:
            body += _field(2, _sample(number, ts))
        out += _field(1, bytes(body))
    return bytes(out)


# -- mapping ---------------------------------------------------------------------------------

def stat_suffix(stat: str) -> str:
    """k6's suffix of a trend stat: ``p(99)`` -> ``p99``, ``p(99.9)`` -> ``p999``, ``avg``."""
    if parse_percentile(stat) is not None:
        return "p" + stat.strip()[2:-1].strip().replace(".", "")
    return stat


def series_name(prefix: str, metric: str, suffix: str = "") -> str:
    """``k6_`` + metric (+ ``_`` suffix), as a valid Prometheus metric name."""
    name = _BAD_NAME.sub("_", prefix + metric + (f"_{suffix}" if suffix else ""))
    return name if not name[:1].isdigit() else "_" + name


def _label_name(tag: str) -> str:
    name = _BAD_LABEL.sub("_", tag) or "_"
    if name[:1].isdigit():
        name = "_" + name
    return "tag" + name if name.startswith("__") else name  # __* is Prometheus' own


def _labels(name: str, tags: Iterable[tuple[str, str]], test_id: str) -> Labels:
    pairs = {_label_name(k): v for k, v in tags if v != ""}
    if test_id:
        pairs["testid"] = test_id
    pairs["__name__"] = name
    return tuple(sorted(pairs.items()))


def to_timeseries(values: Iterable[SeriesValue], test_id: str, ts_ms: int, *,
                  trend_stats: Sequence[str] = DEFAULT_TREND_STATS, prefix: str = "k6_",
                  is_time: Callable[[str], bool] = lambda _name: True) -> list[TimeSeries]:
    """k6's series for ``values`` at ``ts_ms``; ``is_time(metric)`` trends go ms -> seconds."""
    out: list[TimeSeries] = []
    for v in values:
        if v.kind == "counter":
            out.append((_labels(series_name(prefix, v.name, "total"), v.tags, test_id),
                        [(float(v.stats["count"]), ts_ms)]))
        elif v.kind == "rate":
            out.append((_labels(series_name(prefix, v.name, "rate"), v.tags, test_id),
                        [(float(v.stats["rate"]), ts_ms)]))
        elif v.kind == "gauge":
            out.append((_labels(series_name(prefix, v.name), v.tags, test_id),
                        [(float(v.stats["value"]), ts_ms)]))
        else:
            scale = 1000.0 if is_time(v.name) else 1.0
            for stat in trend_stats:
                value = float(v.stats[stat])
                if stat not in _TIME_COUNT_STATS:
                    value /= scale
                out.append((_labels(series_name(prefix, v.name, stat_suffix(stat)), v.tags,
                                    test_id), [(value, ts_ms)]))
    return out


def _group(series: Iterable[TimeSeries]) -> list[TimeSeries]:
    """One entry per label set, samples in time order (one request may carry several)."""
    by: dict[Labels, list[tuple[float, int]]] = {}
    for labels, samples in series:
        by.setdefault(labels, []).extend(samples)
    return [(labels, sorted(samples, key=lambda s: s[1])) for labels, samples in by.items()]


def check_url(url: str) -> str:
    """``url`` when it is an http(s) URL with a host; a ConfigError naming it otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"prometheus-rw={url!r}: expected the remote write URL, such as "
                          "'prometheus-rw=http://127.0.0.1:9090/api/v1/write'")
    return url


class RemoteWriteError(RuntimeError):
    """The receiver refused a write (status and the start of its answer) or was unreachable."""


def post(url: str, payload: bytes, *, timeout: float = 5.0,
         headers: Mapping[str, str] | None = None,
         base_headers: Mapping[str, str] = HEADERS) -> None:
    """POST one Snappy-compressed WriteRequest (or, with other ``base_headers``, any protobuf
    body); RemoteWriteError unless the status is 2xx."""
    request = urllib.request.Request(url, data=payload, method="POST",
                                     headers={**base_headers, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read(300).decode("utf-8", "replace").strip()
        raise RemoteWriteError(f"{display_target(url)} answered {exc.code}: {body}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RemoteWriteError(f"{display_target(url)} unreachable: {reason}") from None
    except ValueError:  # http.client's InvalidURL quotes the URL: never show its password
        raise RemoteWriteError(f"{display_target(url)}: not a URL urllib can send to (user "
                               "and password in the URL are not supported)") from None


_Item = WindowItem


class PrometheusRemoteWrite(WindowStream):
    """The ``prometheus-rw=URL`` output: give it each test's per-second windows.

    ``window()`` is cheap and never blocks (it queues the window for the sender thread);
    ``end_test()`` ends a test's series (stale markers if asked); ``close()`` flushes and
    returns the ``OutputReport``.
    """

    kind = "prometheus-rw"

    def __init__(self, url: str, *, trend_stats: Iterable[str] = DEFAULT_TREND_STATS,
                 prefix: str = "k6_", timeout: float = 5.0,
                 headers: Mapping[str, str] | None = None, stale_markers: bool = False,
                 max_queue: int = 120, non_time_trends: Iterable[str] = (),
                 warn: Callable[[str], None] | None = None,
                 redactor: Redactor | None = None) -> None:
        self.url = check_url(url)
        #: Hides secrets in labels; the session replaces it as it learns secrets.
        self.redactor = redactor if redactor is not None else redactor_from_env()
        self._names = SeriesNames()
        self.trend_stats = check_trend_stats(trend_stats)
        self.prefix = prefix
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.stale_markers = stale_markers
        self._non_time = frozenset(non_time_trends)
        self._tests: dict[str, Cumulative] = {}
        self._last_ms: dict[str, int] = {}
        self._start_stream(max_queue, warn)

    # -- sender thread ------------------------------------------------------------------------

    def _ts(self, test_id: str, t: float) -> int:
        """Milliseconds, strictly increasing per test (Prometheus rejects out-of-order)."""
        ms = max(int(t * 1000), self._last_ms.get(test_id, -1) + 1)
        self._last_ms[test_id] = ms
        return ms

    def _send(self, batch: Sequence[_Item]) -> None:
        series: list[TimeSeries] = []
        for what, test_id, t, window in batch:
            cum = self._tests.get(test_id)
            if what == "end":
                if cum is not None and self.stale_markers:
                    ts = self._ts(test_id, t)
                    series += [(labels, [(STALE_NAN, ts)]) for labels, _ in self._map(
                        cum, test_id, ts)]
                self._tests.pop(test_id, None)
                self._last_ms.pop(test_id, None)
                continue
            if cum is None:
                cum = self._tests[test_id] = Cumulative()
            assert window is not None
            cum.add_window(window)
            series += self._map(cum, test_id, self._ts(test_id, t))
        if series:
            payload = compress(encode_write_request(_group(series)))
            post(self.url, payload, timeout=self.timeout, headers=self.headers)

    def _map(self, cum: Cumulative, test_id: str, ts: int) -> list[TimeSeries]:
        values = [self._redacted(v) for v in cum.values(self.trend_stats)
                  if v.kind != "trend" or all(math.isfinite(x) for x in v.stats.values())]
        test_id = self.redactor.redact(test_id)
        return to_timeseries(values, test_id, ts, trend_stats=self.trend_stats,
                             prefix=self.prefix, is_time=lambda n: is_time_trend(n, self._non_time))

    def _redacted(self, v: SeriesValue) -> SeriesValue:
        """``v`` with its name and tags redacted (looked up once per series)."""
        name, tags = self._names.clean(self.redactor, v.name, v.tags)
        return v if (name, tags) == (v.name, v.tags) else SeriesValue(name, v.kind, tags,
                                                                       v.stats)
