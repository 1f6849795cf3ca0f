"""Sending off the hot path: headers, batches; a slow or dead receiver never hurts the load."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from pytest_novaload.metrics import MetricStore, make_tags
from pytest_novaload.outputs import _snappy
from pytest_novaload.outputs.promrw import STALE_NAN, PrometheusRemoteWrite
from pytest_novaload.outputs.sender import Background
from tests.timing import scaled
from tests.unit.outputs.promdecode import decode_write_request


class Receiver(http.server.ThreadingHTTPServer):
    """A loopback remote-write endpoint that records requests; ``status``/``delay`` to misbehave."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        self.delay = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v1/write"

    def series(self) -> list[dict[str, Any]]:
        return [s for _, body in self.requests
                for s in decode_write_request(_snappy.decompress(body))]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.server.delay)
        self.server.requests.append((dict(self.headers.items()), body))
        self.send_response(self.server.status)
        msg = b"" if self.server.status < 300 else b"out of order sample"
        self.send_header("Content-Length", str(len(msg)))
        self.end_headers()
        self.wfile.write(msg)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    srv = Receiver()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _windows(n: int) -> list[MetricStore]:
    store, out = MetricStore(), []
    tags = make_tags(expected_response="true", method="GET", name="/x", status="200")
    for k in range(n):
        for i in range(10):
            store.trend("http_req_duration", tags).add(100.0 * (k + 1) + i)
            store.counter("http_reqs", tags).add()
        store.gauge("vus").set(k + 1)
        out.append(store.roll())
    return out


def test_windows_reach_the_receiver_with_k6_headers(receiver: Receiver) -> None:
    out = PrometheusRemoteWrite(receiver.url, trend_stats=("p(99)", "max"), stale_markers=True)
    t0 = 1_750_000_000.0
    for k, w in enumerate(_windows(3)):
        assert out.window("tests/a.py::test_x", t0 + k, w)
    out.end_test("tests/a.py::test_x")
    report = out.close()
    assert report.ok and report.sent == 3 and report.dropped == 0, report.line()
    headers = receiver.requests[0][0]
    assert headers["Content-Encoding"] == "snappy"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    by: dict[str, list[tuple[float, int]]] = {}
    for s in receiver.series():
        assert s["labels"]["testid"] == "tests/a.py::test_x"
        by.setdefault(s["labels"]["__name__"], []).extend(s["samples"])
    assert sorted(by) == ["k6_http_req_duration_max", "k6_http_req_duration_p99",
                          "k6_http_reqs_total", "k6_vus"]
    reqs = by["k6_http_reqs_total"]
    assert [v for v, _ in reqs[:3]] == [10.0, 20.0, 30.0]  # cumulative, as k6 sends
    assert [ts for _, ts in reqs[:3]] == [int(t0 * 1000), int(t0 * 1000) + 1000,
                                          int(t0 * 1000) + 2000]
    assert [v for v, _ in by["k6_vus"][:3]] == [1.0, 2.0, 3.0]
    assert by["k6_http_req_duration_max"][2][0] == pytest.approx(0.309)  # seconds
    stale = reqs[3]
    assert stale[0] != stale[0] and stale[1] > reqs[2][1]  # NaN marker, after the last sample
    assert repr(STALE_NAN) == "nan"


def test_timestamps_stay_strictly_increasing(receiver: Receiver) -> None:
    out = PrometheusRemoteWrite(receiver.url, trend_stats=("max",))
    for w in _windows(3):
        out.window("t", 1_750_000_000.0, w)  # same clock reading three times
    assert out.close().ok
    ts = [t for s in receiver.series() if s["labels"]["__name__"] == "k6_vus"
          for _, t in s["samples"]]
    assert ts == sorted(set(ts)) and len(ts) == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dead_receiver_warns_once_and_never_blocks() -> None:
    warnings: list[str] = []
    out = PrometheusRemoteWrite(f"http://127.0.0.1:{_free_port()}/api/v1/write",
                                warn=warnings.append, timeout=0.5)
    windows = _windows(20)
    worst = 0.0
    for k, w in enumerate(windows):
        t = time.perf_counter()
        out.window("t", 1_750_000_000.0 + k, w)
        worst = max(worst, time.perf_counter() - t)
        time.sleep(0.01)
    report = out.close(timeout=5)
    assert worst < scaled(0.05), f"window() blocked {worst:.3f}s"
    assert len(warnings) == 1, warnings
    assert "sending failed" in warnings[0] and "unreachable" in warnings[0]
    assert "load goes on" in warnings[0]
    assert report.sent == 0 and report.dropped == 20 and report.failed_batches >= 1
    assert "20 dropped" in report.line() and "unreachable" in report.line()


def test_refusing_receiver_reports_status_and_body(receiver: Receiver) -> None:
    receiver.status = 400
    warnings: list[str] = []
    out = PrometheusRemoteWrite(receiver.url, warn=warnings.append)
    out.window("t", 1_750_000_000.0, _windows(1)[0])
    report = out.close()
    assert report.dropped == 1 and len(warnings) == 1
    assert "answered 400: out of order sample" in warnings[0]


def test_slow_receiver_fills_the_queue_then_drops(receiver: Receiver) -> None:
    receiver.delay = 0.3
    warnings: list[str] = []
    out = PrometheusRemoteWrite(receiver.url, max_queue=2, warn=warnings.append)
    windows = _windows(12)
    t = time.perf_counter()
    accepted = [out.window("t", 1_750_000_000.0 + k, w) for k, w in enumerate(windows)]
    assert time.perf_counter() - t < scaled(0.5)
    report = out.close(timeout=10)
    assert not all(accepted) and report.dropped == accepted.count(False)
    assert report.sent == accepted.count(True)
    assert any("sender is behind" in w for w in warnings)


def test_close_gives_up_after_its_timeout() -> None:
    gate = threading.Event()

    def handle(batch: Sequence[int]) -> None:
        gate.wait(5)

    bg: Background[int] = Background("stuck", handle, max_items=10, unit="windows")
    for i in range(4):
        bg.put(i)
    t = time.perf_counter()
    report = bg.close(timeout=0.3)
    gate.set()
    assert time.perf_counter() - t < scaled(2)
    assert any("gave up after 0.3 s" in n for n in report.notes)
    assert bg.put(5) is False and report.dropped >= 1


def test_a_failing_warn_callback_is_contained() -> None:
    def warn(message: str) -> None:
        raise RuntimeError("terminal gone")

    def handle(batch: Sequence[int]) -> None:
        raise OSError("disk full")

    bg: Background[int] = Background("x", handle, warn=warn)
    bg.put(1)
    report = bg.close()
    assert report.failed_batches == 1 and report.first_error == "OSError: disk full"
