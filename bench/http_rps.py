"""Requests per second on one core: our `vu.http` client vs Locust FastHttpUser (vs httpx).

Every tool hits the SAME loopback target in the same run: a throwaway nginx on 127.0.0.1
pinned to CPU 1 serving a tiny static JSON (or, without nginx, a uvloop+httptools server
from this folder). Each generator runs in its own process pinned to CPU 0 with N users
looping GET with no think time. Our count comes from our own metrics (`http_reqs`), Locust's
from its stats. Load is bounded: each tool runs for --duration seconds (default 10).

    python bench/http_rps.py                      # 50 VUs, 10 s per tool, nginx if installed
    python bench/http_rps.py --vus 50 --duration 10 --tools ours,locust,httpx
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import HERE, add_cpu_args, free_port, pin, run_json, serve

PATH = "/json"
BODY = '{"ok":true,"id":42,"name":"vm-42","state":"running"}'

NGINX_CONF = """
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {nofile};
user root root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = {path} {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
"""


def group_cpu_seconds(pgid: int) -> float:
    """User+system CPU seconds of every process in a process group (the target's)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 (pgrp), counted after the ")" of the name
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


@contextlib.contextmanager
def target(kind: str, cpu: int, connections: int = 4096) -> Iterator[tuple[str, str, int]]:
    """Start the target; yields (base URL, description, process group). Stops it on exit.
    ``connections``: how many client connections nginx's one worker accepts at once."""
    port = free_port()
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if kind == "auto":
        kind = "nginx" if nginx else "python"
    tmp = tempfile.mkdtemp(prefix="novaload-bench-")
    if kind == "nginx":
        if nginx is None:
            raise SystemExit("nginx is not installed (apt-get install nginx-light), "
                             "or use --target python")
        conf = Path(tmp, "nginx.conf")
        # nginx closes idle keep-alive connections once 15/16 of worker_connections are in use
        # (ngx_drain_connections): size it so that `connections` clients never reach that, or
        # the generators would be measured reconnecting (10K VUs at 10,512: 55K connects).
        workers = connections * 16 // 15 + 64
        conf.write_text(NGINX_CONF.format(dir=tmp, port=port, path=PATH, body=BODY,
                                          connections=workers, nofile=workers + 64))
        cmd = [nginx, "-c", str(conf), "-p", tmp, "-e", f"{tmp}/error.log"]
        version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
        desc = f"{version.replace('nginx version: ', '')}, 1 worker, CPU {cpu}"
    else:
        cmd = [sys.executable, str(HERE / "_target_server.py"), str(port), PATH, BODY]
        desc = f"uvloop+httptools server (bench/_target_server.py), CPU {cpu}"
    try:
        with serve(cmd, port, cpu) as proc:
            # nginx workers are forked after the master was pinned: they inherit CPU `cpu`.
            yield f"http://127.0.0.1:{port}", desc, proc.pid
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- generators (each runs in a child process pinned to the client CPU) --------------------

def run_ours(url: str, vus: int, duration: float, warmup: float, loop_kind: str,
             parser: str) -> dict[str, Any]:
    """N VUs (asyncio tasks, one HttpClient each, as the runner builds them) looping GET."""
    import asyncio

    from pytest_novaload.clients.base import ClientContext
    from pytest_novaload.clients.http import HttpClient
    from pytest_novaload.metrics import MetricStore

    store = MetricStore()

    async def main() -> dict[str, Any]:
        options = {"http": {"parser": parser}}
        clients = [HttpClient(ClientContext(store=store, vu_id=i, env={"API_URL": url},
                                            options=options))
                   for i in range(vus)]
        stop = False

        async def vu(client: HttpClient) -> None:
            while not stop:
                await client.get(PATH)

        tasks = [asyncio.create_task(vu(c)) for c in clients]
        await asyncio.sleep(warmup)
        store.roll()  # the window starts after warm-up (connections open, caches warm)
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        await asyncio.sleep(duration)
        window = store.roll()
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        stop = True
        await asyncio.gather(*tasks)
        for c in clients:
            await c.aclose()
        reqs = window.aggregate("http_reqs").value("count")
        dur = window.aggregate("http_req_duration")
        failed = window.aggregate("http_req_failed").value("rate")
        return {"requests": int(reqs), "seconds": elapsed, "rps": reqs / elapsed,
                "p50_ms": dur.value("med"), "p99_ms": dur.value("p(99)"),
                "failed_rate": failed, "cpu_s": cpu,
                "cpu_us_per_req": cpu / reqs * 1e6 if reqs else 0.0}

    if loop_kind == "uvloop":
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


def run_httpx(url: str, vus: int, duration: float, warmup: float) -> dict[str, Any]:
    """N tasks sharing ONE httpx.AsyncClient (the naive way to use httpx for load)."""
    import asyncio

    import httpx
    import uvloop

    async def main() -> dict[str, Any]:
        count = 0
        counting = False
        stop = False
        limits = httpx.Limits(max_connections=vus, max_keepalive_connections=vus)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

            async def vu() -> None:
                nonlocal count
                while not stop:
                    r = await client.get(PATH)
                    if counting and r.status_code == 200:
                        count += 1

            tasks = [asyncio.create_task(vu()) for _ in range(vus)]
            await asyncio.sleep(warmup)
            counting = True
            t0 = time.perf_counter()
            await asyncio.sleep(duration)
            counting = False
            elapsed = time.perf_counter() - t0
            stop = True
            await asyncio.gather(*tasks)
        return {"requests": count, "seconds": elapsed, "rps": count / elapsed}

    return uvloop.run(main())


LOCUSTFILE = '''
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser


class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def get_json(self):
        self.client.get("{path}")
'''


def run_locust(url: str, vus: int, duration: float, warmup: float, cpu: int) -> dict[str, Any]:
    """Locust FastHttpUser, headless, one process, no wait time; stats reset after spawning."""
    tmp = Path(tempfile.mkdtemp(prefix="novaload-locust-"))
    try:
        locustfile = tmp / "locustfile.py"
        locustfile.write_text(LOCUSTFILE.format(path=PATH))
        out = tmp / "stats.json"
        locust = Path(sys.executable).with_name("locust")
        cmd = [str(locust) if locust.exists() else "locust", "-f", str(locustfile),
               "--headless", "-u", str(vus), "-r", str(vus), "--host", url,
               "-t", f"{int(duration + warmup)}s", "--reset-stats", "--only-summary",
               "--json-file", str(out.with_suffix("")), "--loglevel", "ERROR",
               "--stop-timeout", "1"]
        t0 = time.perf_counter()
        subprocess.run(cmd, preexec_fn=lambda: pin(cpu), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=duration + warmup + 60, check=False)
        wall = time.perf_counter() - t0
        data = json.loads(out.read_text())
        entry = next(e for e in data if e["name"] == PATH)
        seconds = entry["last_request_timestamp"] - entry["start_time"]
        reqs = entry["num_requests"]
        return {"requests": reqs, "seconds": seconds, "rps": reqs / seconds if seconds else 0.0,
                "failures": entry["num_failures"], "wall_s": wall}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def child(args: argparse.Namespace) -> None:
    pin(args.client_cpu)
    if args.child == "ours":
        result = run_ours(args.url, args.vus, args.duration, args.warmup, args.loop, args.parser)
    else:
        result = run_httpx(args.url, args.vus, args.httpx_duration, args.warmup)
    print(json.dumps(result))


def run_child(kind: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    return run_json(__file__, [
        "--child", kind, "--url", url, "--vus", str(args.vus), "--duration", str(args.duration),
        "--httpx-duration", str(args.httpx_duration), "--warmup", str(args.warmup),
        "--client-cpu", str(args.client_cpu), "--loop", args.loop, "--parser", args.parser],
        timeout=args.duration + args.httpx_duration + args.warmup + 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vus", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per tool")
    parser.add_argument("--httpx-duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--target", choices=("auto", "nginx", "python"), default="auto")
    parser.add_argument("--tools", default="ours,locust,httpx")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--parser", choices=("auto", "python"), default="auto",
                        help="our client's response parser: httptools (auto) or pure Python")
    add_cpu_args(parser)
    parser.add_argument("--child", choices=("ours", "httpx"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not 1 <= args.vus <= 1000 or not 0 < args.duration <= 60:
        raise SystemExit("--vus must be in 1..1000 and --duration in (0, 60] seconds")
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    results: dict[str, dict[str, Any]] = {}
    with target(args.target, args.server_cpu) as (url, desc, pgid):
        print(f"target: {desc}, {url}{PATH}; generators pinned to CPU {args.client_cpu}; "
              f"{args.vus} users; {args.duration:g} s per tool after {args.warmup:g} s warm-up; "
              f"ours on {args.loop} with the {args.parser} parser", flush=True)
        for tool in tools:
            server_cpu0, wall0 = group_cpu_seconds(pgid), time.perf_counter()
            if tool == "ours":
                results[tool] = run_child("ours", url, args)
            elif tool == "locust":
                results[tool] = run_locust(url, args.vus, args.duration, args.warmup,
                                           args.client_cpu)
            elif tool == "httpx":
                results[tool] = run_child("httpx", url, args)
            else:
                raise SystemExit(f"unknown tool {tool!r}: expected ours, locust or httpx")
            r = results[tool]
            # Whole-run share of one core used by the target: near 100% means the target,
            # not the generator, set the pace.
            r["target_cpu"] = (group_cpu_seconds(pgid) - server_cpu0) / (
                time.perf_counter() - wall0)
            extra = ""
            if tool == "ours":
                extra = (f"  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
                         f"failed {r['failed_rate']:.4f}  {r['cpu_us_per_req']:.1f} us CPU/req"
                         f"  generator CPU {r['cpu_s'] / r['seconds']:.0%}")
            print(f"{tool:>7}: {r['rps']:>10,.0f} req/s  ({r['requests']:,} requests in "
                  f"{r['seconds']:.1f} s)  target CPU {r['target_cpu']:.0%}{extra}", flush=True)
    if "ours" in results and "locust" in results and results["locust"]["rps"]:
        ratio = results["ours"]["rps"] / results["locust"]["rps"]
        print(f"ours/locust = {ratio:.2f}x  (bar: >= 1.5x)")
    if "ours" in results and "httpx" in results and results["httpx"]["rps"]:
        print(f"ours/httpx  = {results['ours']['rps'] / results['httpx']['rps']:.1f}x")


if __name__ == "__main__":
    main()
