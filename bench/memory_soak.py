"""Memory over a long run at full speed: the generator's RSS must stay flat.

    python bench/memory_soak.py                       # 10 minutes, 50 VUs, RSS every 10 s
    python bench/memory_soak.py --duration 2m --vus 50

One process runs a constant-vus plan against `bench/_target_server.py` on 127.0.0.1 (a
subprocess), with no think time. Every 10th request goes to a distinct path (`/item/<n>`,
answered 404 and expected), so the run also crosses the series cap (1000 per metric) and the
error path; the rest is `GET /json`. A thread prints the RSS every 10 s; at the end the
RSS after the warm-up, at half time and at the end are printed; flat means the second half
grew under 2% and under 5 MB (the bounded caches fill first, at a pace the request rate sets).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_novaload.engine.runner import LoadRunner  # noqa: E402
from pytest_novaload.spec import LoadSpec  # noqa: E402
from pytest_novaload.units import parse_duration  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", default="10m")
    ap.add_argument("--vus", type=int, default=50)
    ap.add_argument("--every", type=float, default=10.0, help="seconds between RSS samples")
    args = ap.parse_args()
    seconds = parse_duration(args.duration)
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_target_server.py"),
                               str(port), "/json", '{"ok": true}'])
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        spec = LoadSpec.parse({"vus": args.vus, "duration": args.duration})
        counter = [0]

        async def user(vu: Any) -> None:
            counter[0] += 1
            n = counter[0]
            if n % 10 == 0:
                await vu.http.get(f"/item/{n}", expected=404)
            else:
                await vu.http.get("/json")

        runner = LoadRunner(spec.plan(), user, env={"API_URL": f"http://127.0.0.1:{port}"})
        samples: list[tuple[float, float, int]] = []
        stop = threading.Event()
        t0 = time.monotonic()

        def sample() -> None:
            while not stop.wait(args.every):
                t, mb = time.monotonic() - t0, rss_mb()
                samples.append((t, mb, counter[0]))
                print(f"t={t:6.0f}s  rss={mb:7.1f} MB  iterations={counter[0]}", flush=True)

        thread = threading.Thread(target=sample, daemon=True)
        print(f"start: rss={rss_mb():.1f} MB, {args.vus} VUs for {seconds:.0f} s", flush=True)
        thread.start()
        measured = runner.run()
        stop.set()
        thread.join()
    finally:
        server.terminate()
        server.wait(10)
    store = measured.store
    reqs = store.aggregate("http_reqs").value("count")
    series = len(store.series("http_req_duration"))
    print(f"requests: {reqs:.0f} ({reqs / measured.duration:.0f}/s), "
          f"http_req_duration series: {series}")
    # The per-VU caches (targets, sinks) and the series cap fill first, at a pace set by the
    # request rate (90 s at 5K req/s, 30 s at 20K); flat means the second half adds nothing.
    half = [s for s in samples if s[0] >= seconds / 2]
    warm = [s for s in samples if s[0] >= min(30.0, seconds / 4)]
    if len(half) < 2 or not warm:
        print("too short to judge")
        return 0
    first, mid, last = warm[0][1], half[0][1], half[-1][1]
    peak = max(s[1] for s in warm)
    minutes = (half[-1][0] - half[0][0]) / 60
    grown = last - mid
    flat = grown < 0.02 * mid and grown < 5.0
    print(f"rss at {warm[0][0]:.0f} s {first:.1f} MB, at half time {mid:.1f} MB, last "
          f"{last:.1f} MB, peak {peak:.1f} MB; second half {grown:+.1f} MB in "
          f"{minutes:.1f} min ({grown / max(minutes, 1e-9) * 1024:+.0f} KB/min): "
          f"{'flat' if flat else 'GROWING'}")
    return 0 if flat else 1


if __name__ == "__main__":
    raise SystemExit(main())
