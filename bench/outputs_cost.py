"""Cost of the outputs: ns per sample on the event loop's side, and the writer threads' work.

    python bench/outputs_cost.py [--samples 500000] [--series 100]

- ``json``: ``JsonOutput.sample()`` on the caller's thread (what the hot path pays), beside a
  ``Trend.add`` (what recording already costs), then the writer thread's rate until ``close()``
  returns, for ``out.json`` and ``out.json.gz``.
- ``tapped``: ``Trend.add`` on a store tapped for ``json=`` (what the plugin really runs: the
  sink records and hands the sample to the JSON buffer in one more call), beside a plain one.
- ``prometheus-rw``: the sender thread's work per window (fold the window in, compute the
  trend stats, map to k6's series, encode, Snappy) for ``--series`` HTTP series; no socket.
One process, a temporary folder, a few seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pytest_novaload.metrics import MetricStore, make_tags
from pytest_novaload.outputs import _snappy
from pytest_novaload.outputs.jsonout import JsonOutput
from pytest_novaload.outputs.model import DEFAULT_TREND_STATS, Cumulative
from pytest_novaload.outputs.promrw import encode_write_request, to_timeseries

TAGS = make_tags(expected_response="true", method="GET", name="/api/vms", status="200")


def json_cost(n: int, path: Path) -> tuple[float, float, float]:
    out = JsonOutput(path)
    out.set_test("tests/perf/test_api.py::test_vm_crud")
    sample = out.sample
    t0 = time.perf_counter()
    for i in range(n):
        sample("http_req_duration", "trend", 1.5 + (i & 63), TAGS)
    hot = time.perf_counter() - t0
    report = out.close(timeout=600)
    total = time.perf_counter() - t0
    assert report.ok and report.sent == n, report.line()
    return hot / n * 1e9, n / total, path.stat().st_size / n


def trend_add_cost(n: int) -> float:
    sink = MetricStore().trend("http_req_duration", TAGS)
    add = sink.add
    t0 = time.perf_counter()
    for i in range(n):
        add(1.5 + (i & 63))
    return (time.perf_counter() - t0) / n * 1e9


def tapped_add_cost(n: int, path: Path) -> float:
    from pytest_novaload.outputs.hub import Outputs

    out = JsonOutput(path, batch=1 << 30)  # the writer stays idle: the loop's side only
    store = MetricStore()
    Outputs([out]).start_test("tests/perf/test_api.py::test_vm_crud", store)
    add = store.trend("http_req_duration", TAGS).add
    t0 = time.perf_counter()
    for i in range(n):
        add(1.5 + (i & 63))
    hot = (time.perf_counter() - t0) / n * 1e9
    out._buf.clear()
    out.close(timeout=5)
    return hot


def promrw_cost(series: int, windows: int = 20) -> tuple[float, int, int]:
    store, cum = MetricStore(), Cumulative()
    tagsets = [make_tags(expected_response="true", method="GET", name=f"/api/{k}",
                         status="200") for k in range(series)]
    elapsed = 0.0
    raw = packed = 0
    for w in range(windows):
        for tags in tagsets:
            trend = store.trend("http_req_duration", tags)
            for i in range(50):
                trend.add(1.0 + i + w)
            store.counter("http_reqs", tags).add(50)
        window = store.roll()
        t0 = time.perf_counter()
        cum.add_window(window)
        ts = to_timeseries(cum.values(DEFAULT_TREND_STATS), "t::id", 1_750_000_000_000 + w)
        body = encode_write_request(ts)
        payload = _snappy.compress(body)
        elapsed += time.perf_counter() - t0
        raw, packed = len(body), len(payload)
    return elapsed / windows * 1000, raw, packed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=500_000)
    ap.add_argument("--series", type=int, default=100)
    args = ap.parse_args()
    print(f"Trend.add (baseline): {trend_add_cost(args.samples):.0f} ns/sample")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"Trend.add on a store tapped for json=: "
              f"{tapped_add_cost(args.samples, Path(tmp) / 'tap.json'):.0f} ns/sample; plain "
              f"again: {trend_add_cost(args.samples):.0f} ns/sample")
        for name in ("out.json", "out.json.gz"):
            hot, rate, size = json_cost(args.samples, Path(tmp) / name)
            print(f"json={name}: sample() {hot:.0f} ns/sample on the loop's thread; writer "
                  f"{rate / 1000:.0f}k samples/s end to end; {size:.0f} bytes/sample")
    ms, raw, packed = promrw_cost(args.series)
    print(f"prometheus-rw: {ms:.1f} ms of sender-thread work per window for {args.series} "
          f"series x {len(DEFAULT_TREND_STATS)} stats + counters; payload {raw} B -> "
          f"{packed} B with Snappy ({_snappy.backend()})")


if __name__ == "__main__":
    main()
