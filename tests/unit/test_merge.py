"""Merging xdist shards at the RunResult / summary.json level.

N shards merged by ``xdist.merge.merge_parts`` must give the summary one run fed every sample
gives: exact counts, rates and extremes, percentiles within the digest's error, the same
threshold verdicts. The store-level property is tested in test_store.py.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from pytest_novaload.engine.runner import Measurements
from pytest_novaload.metrics import MetricStore, make_tags
from pytest_novaload.metrics.errors import ErrorLog
from pytest_novaload.reporting.model import RunResult
from pytest_novaload.session import build_result
from pytest_novaload.thresholds import judge, parse_thresholds
from pytest_novaload.xdist.merge import ShardPart, merge_generators, merge_parts
from pytest_novaload.xdist.wire import (
    Merged,
    Result,
    compact_store_dict,
    decode,
    encode,
)

THRESHOLDS = tuple(parse_thresholds({
    "http_req_duration": ["p(95)<70", "p(99)<1000", "avg<100", "max<500", "med<20"],
    "http_req_duration{name:create_vm}": ["p(90)<2000"],
    "http_req_failed": ["rate<0.05"],
    "http_reqs": ["count>1000", "rate>10"],
    "checks": ["rate>0.9"],
    "vus": ["value<=10"],
}))
EXECUTOR = {"type": "constant-vus", "vus": 10, "duration": "10s"}
NAMES = ("create_vm", "list_vms", "get_vm")


def samples(n: int, seed: int = 7) -> list[tuple[str, float, bool, bool]]:
    """(name, latency ms, failed, check passed): 90% near 5 ms, 10% near 60 ms, 3% failed."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        slow = rng.random() < 0.10
        ms = rng.gauss(60.0, 3.0) if slow else rng.gauss(5.0, 1.0)
        out.append((NAMES[i % 3], max(ms, 0.1), rng.random() < 0.03, rng.random() < 0.95))
    return out


def record(store: MetricStore, part: list[tuple[str, float, bool, bool]], vus: int) -> None:
    for name, ms, failed, ok in part:
        tags = make_tags(name=name, method="GET", status=500 if failed else 200)
        store.trend("http_req_duration", tags).add(ms)
        store.counter("http_reqs", tags).add(1)
        store.rate("http_req_failed", tags).add(failed)
        store.rate("checks", make_tags(check="status is 2xx")).add(ok)
        store.counter("iterations", make_tags(scenario="default")).add(1)
    gauge = store.gauge("vus")
    gauge.set(0)
    gauge.set(vus)
    gauge.set(0)


def output(store: MetricStore, started: float, duration: float,
           errors: ErrorLog | None = None) -> Measurements:
    return Measurements(store=store, errors=errors or ErrorLog(), started=started,
                     finished=started + duration, duration=duration,
                     generator={"loop_lag_p99_ms": 1.0, "cpu": 0.2, "saturated": False,
                                "verdict": "ok", "loop": "uvloop"})


def shard_parts(data: list[tuple[str, float, bool, bool]], sizes: list[int],
                vus: list[int]) -> list[ShardPart]:
    parts = []
    at = 0
    for rank, (size, v) in enumerate(zip(sizes, vus, strict=True)):
        store = MetricStore()
        record(store, data[at:at + size], v)
        at += size
        out = output(store, 1000.0 + rank * 0.001, 10.0 - rank * 0.01)
        parts.append(ShardPart(f"gw{rank}", rank, out))
    assert at == len(data)
    return parts


def judged(measured: Measurements, *, shards: int) -> RunResult:
    verdict = judge(THRESHOLDS, measured.store, measured.duration, aborted=measured.aborted)
    return build_result("t.py::test_x", EXECUTOR, measured, verdict, shards=shards)


def close(a: float, b: float, rel: float = 0.02, abs_: float = 0.5) -> bool:
    return abs(a - b) <= max(abs_, rel * abs(b))


@pytest.mark.parametrize(("sizes", "vus"), [([3000], [10]),
                                            ([1500, 1500], [5, 5]),
                                            ([2500, 400, 100], [4, 3, 3]),
                                            ([700, 0, 1600, 700], [3, 0, 4, 3])])
def test_merged_shards_summarise_like_one_run_fed_every_sample(sizes: list[int],
                                                               vus: list[int]) -> None:
    data = samples(sum(sizes))
    whole = MetricStore()
    record(whole, data, sum(vus))
    one = judged(output(whole, 1000.0, 10.0), shards=1).to_dict()
    merged = judged(merge_parts(shard_parts(data, sizes, vus)), shards=len(sizes)).to_dict()

    assert merged["shards"] == len(sizes)
    assert merged["duration_s"] == 10.0         # the longest shard
    assert set(merged["metrics"]) == set(one["metrics"])
    for key, st in one["metrics"].items():
        mst = merged["metrics"][key]
        assert mst["type"] == st["type"], key
        if st["type"] == "trend":
            assert mst["count"] == st["count"], key
            for f in ("min", "max"):
                assert mst[f] == st[f], (key, f)
            assert mst["avg"] == pytest.approx(st["avg"], rel=1e-9), key
            for f in ("med", "p(90)", "p(95)", "p(99)"):
                assert close(mst[f], st[f]), (key, f, mst[f], st[f])
        else:
            assert mst == pytest.approx(st), key          # counters, rates, gauges: exact
    assert merged["checks"] == one["checks"]
    verdicts = [(t["expression"], t["ok"]) for t in merged["thresholds"]]
    assert verdicts == [(t["expression"], t["ok"]) for t in one["thresholds"]]
    for mt, ot in zip(merged["thresholds"], one["thresholds"], strict=True):
        assert close(mt["observed"], ot["observed"]), (mt, ot)
    assert merged["metrics"]["vus"]["max"] == sum(vus)   # VU gauges of shards add up


def test_percentiles_are_merged_never_averaged() -> None:
    # Shard 0 is all fast, shard 1 is 20% slow: together 10% slow, so p95 is slow.
    fast = [("a", 5.0, False, True)] * 900
    mixed = [("a", 60.0 if i % 5 == 0 else 5.0, False, True) for i in range(900)]
    parts = shard_parts(fast + mixed, [900, 900], [1, 1])
    per_shard = [p.measured.store.aggregate("http_req_duration").value("p(95)") for p in parts]
    assert sum(per_shard) / 2 == pytest.approx(32.5, abs=1)       # the wrong answer
    result = judged(merge_parts(parts), shards=2)
    assert result.metric("http_req_duration").p(95) == pytest.approx(60.0, abs=1)


def test_errors_and_abort_reasons_merge() -> None:
    logs = []
    for n in (2, 3):
        log = ErrorLog()
        for i in range(n):
            log.add(ValueError(f"boom {n}-{i}"))
        logs.append(log)
    log = ErrorLog()
    log.add(KeyError("k"))
    logs.append(log)
    parts = [ShardPart(f"gw{r}", r, output(MetricStore(), 1.0, 1.0, errors=lg))
             for r, lg in enumerate(logs)]
    parts[2].measured.aborted = "abort_on_fail: x"
    out = merge_parts(parts)
    assert [(e["type"], e["count"]) for e in out.errors.to_list()] == [("ValueError", 5),
                                                                        ("KeyError", 1)]
    assert out.errors.to_list()[0]["example"] == "ValueError: boom 2-0"
    assert out.aborted == "abort_on_fail: x"
    assert merge_parts(parts, aborted="controller said so").aborted == "controller said so"
    with pytest.raises(ValueError, match="at least one shard"):
        merge_parts([])


def test_wire_round_trip_keeps_everything() -> None:
    store = MetricStore()
    record(store, samples(500), 3)
    errors = ErrorLog()
    errors.add(RuntimeError("x"))
    sent = Result("t.py::t", 1, output(store, 5.0, 2.0, errors), [(7, {"metrics": {}})])
    back = decode(encode(sent))
    assert isinstance(back, Result)
    assert back.measured.store.to_dict() == store.to_dict()
    assert back.measured.errors.to_list() == errors.to_list()
    assert (back.nodeid, back.rank, back.windows) == ("t.py::t", 1, [(7, {"metrics": {}})])
    m = back.measured
    assert (m.started, m.finished, m.duration, m.generator) == (5.0, 7.0, 2.0,
                                                                 sent.measured.generator)


def test_the_merged_verdict_travels_whole() -> None:
    """Shards take the controller's verdict as it is: nothing is judged twice."""
    store = MetricStore()
    record(store, samples(500), 3)
    measured = output(store, 5.0, 2.0)
    verdict = judge(THRESHOLDS, store, 2.0, aborted="abort_on_fail: x")
    back = decode(encode(Merged("t.py::t", measured, verdict, 2, {"start_spread_ms": 1.0},
                                "worker 'gw1' crashed")))
    assert isinstance(back, Merged)
    assert back.verdict == verdict and not back.verdict.ok
    assert (back.shards, back.extra, back.failure) == (2, {"start_spread_ms": 1.0},
                                                       "worker 'gw1' crashed")
    assert back.measured.store.to_dict() == store.to_dict()
    with pytest.raises(ValueError, match="not a pytest-novaload side-channel message"):
        decode(("nope", "t.py::t"))


def test_generator_health_takes_the_worst_shard() -> None:
    parts = shard_parts(samples(30), [10, 10, 10], [1, 1, 1])
    parts[1].measured.generator = {"loop_lag_p99_ms": 80.0, "cpu": 0.99, "saturated": True,
                          "verdict": "saturated: ...", "loop": "uvloop"}
    g: dict[str, Any] = merge_generators(parts)
    assert g["saturated"] is True and g["verdict"].startswith("saturated")
    assert g["loop_lag_p99_ms"] == 80.0 and g["cpu"] == 0.99
    assert [s["worker"] for s in g["shards"]] == ["gw0", "gw1", "gw2"]


def test_compacted_windows_keep_exact_counts_and_close_percentiles() -> None:
    store = MetricStore()
    record(store, samples(5000), 2)
    small = MetricStore.from_dict(compact_store_dict(store.to_dict(), 64))
    for name in ("http_req_duration", "http_reqs", "http_req_failed", "checks"):
        a, b = store.aggregate(name).stats(1.0), small.aggregate(name).stats(1.0)
        if a["type"] == "trend":
            assert a["count"] == b["count"] and a["min"] == b["min"] and a["max"] == b["max"]
            assert close(float(b["p(95)"]), float(a["p(95)"]), rel=0.05, abs_=1.0)
        else:
            assert a == b
    assert len(str(small.to_dict())) < len(str(store.to_dict())) / 3
