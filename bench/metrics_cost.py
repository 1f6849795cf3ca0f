"""Per-sample cost and memory of a Trend, against keeping every sample (the naive peer).

    python bench/metrics_cost.py [--samples 1000000]

Prints ns per recorded sample and the memory held after 10k, 100k and 1M samples for our
t-digest Trend and for a plain list of floats (what a tool that stores every sample holds,
k6 issue #763), with their ratios, plus the p99 error of the digest against the exact value.
No sockets; one process; a few seconds.
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc

from pytest_novaload.metrics import MetricStore


def samples(n: int, seed: int = 7) -> list[float]:
    rnd = random.Random(seed)
    return [rnd.lognormvariate(1.0, 0.6) * (10 if rnd.random() < 0.01 else 1) for _ in range(n)]


def ours(xs: list[float]) -> tuple[float, int, float]:
    tracemalloc.start()
    store = MetricStore()
    sink = store.trend("http_req_duration", (("name", "x"),))
    add = sink.add
    t0 = time.perf_counter()
    for x in xs:
        add(x)
    elapsed = time.perf_counter() - t0
    p99 = sink.value("p(99)")
    mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return elapsed / len(xs) * 1e9, mem, p99


def peer_list(xs: list[float]) -> tuple[float, int, float]:
    tracemalloc.start()
    kept: list[float] = []
    add = kept.append
    t0 = time.perf_counter()
    for x in xs:
        add(x + 0.0)  # a new float object per sample, as a recorder would hold
    elapsed = time.perf_counter() - t0
    kept.sort()
    p99 = kept[int(len(kept) * 0.99)]
    mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return elapsed / len(xs) * 1e9, mem, p99


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=1_000_000)
    args = ap.parse_args()
    print(f"{'samples':>10} {'ours ns/add':>12} {'list ns/add':>12} {'ours mem':>10} "
          f"{'list mem':>10} {'mem ratio':>10} {'p99 error':>10}")
    n = 10_000
    while n <= args.samples:
        xs = samples(n)
        o_ns, o_mem, o_p99 = ours(xs)
        l_ns, l_mem, l_p99 = peer_list(xs)
        err = abs(o_p99 - l_p99) / l_p99 * 100
        print(f"{n:>10} {o_ns:>12.0f} {l_ns:>12.0f} {o_mem / 1024:>9.0f}K {l_mem / 1024:>9.0f}K "
              f"{l_mem / max(o_mem, 1):>9.1f}x {err:>9.3f}%")
        n *= 10


if __name__ == "__main__":
    main()
