"""How often the PR gate calls a run REGRESSED: on an unchanged server, on one 30% slower and
on one 2% slower.

A loopback HTTP server (this process, its own thread and event loop) answers every request
after ``(delay + jitter) * factor`` (the jitter uniform in [0, jitter)), and changes ``factor``
between runs. The baseline is recorded first, ``--baseline-runs`` runs at factor 1 each saved
over the same file with ``--load-baseline-save`` (as main's CI job does on every push: the
file keeps the last runs' values, and the gate judges against their mean and spread; 1 = a
single-run baseline). Then each short run (``pytest`` in a child process, ``--load-baseline``,
default rules) is compared with it: ``--runs`` times each at factor 1, 1.30 and 1.02, taken
in turn (1, 1.30, 1.02, 1, ...) so that the machine's drift hits each alike. It prints how
many runs of each were called REGRESSED, PASS or INCONCLUSIVE, and the goals (unchanged <= 1
in 20, 30% slower >= 19 in 20, 2% slower never).

    python bench/regression_noise.py                 # 5 + 3 x 20 runs, 5 s each (~10 min)
    python bench/regression_noise.py --baseline-runs 1 --runs 5

Loopback only, bounded: each run is ``--vus`` VUs for ``--duration``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TEST = '''
import pytest

@pytest.mark.load(vus={vus}, duration="{duration}",
                  thresholds={{"http_req_duration": ["p(95)<5000"]}})
def test_noise(load):
    async def user(vu):
        await vu.http.get("/")
    load.run(user)
'''

BODY = b"ok"


class Server:
    """``(delay + U(0, jitter)) * factor`` seconds per request, keep-alive, on 127.0.0.1."""

    def __init__(self, delay: float, jitter: float) -> None:
        self.delay = delay
        self.jitter = jitter
        self.factor = 1.0
        self.port = 0
        self._ready = threading.Event()
        self._rng = random.Random(1)
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await server.serve_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                await asyncio.sleep((self.delay + self._rng.random() * self.jitter) * self.factor)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                             b"Content-Type: text/plain\r\n\r\n" + BODY)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def run_once(test_dir: Path, server: Server, results: Path, *, save: Path | None = None,
             baseline: Path | None = None) -> dict[str, object]:
    """One pytest run of the load test; its summary.json test entry."""
    env = {**os.environ, "API_URL": f"http://127.0.0.1:{server.port}",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "NOVALOAD_PROGRESS": "off"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
           str(test_dir / "test_noise.py"), "--load-results", str(results)]
    if save is not None:
        cmd += ["--load-baseline-save", str(save)]
    if baseline is not None:
        cmd += ["--load-baseline", str(baseline)]
    before = set(results.iterdir()) if results.exists() else set()
    subprocess.run(cmd, cwd=test_dir, env=env, capture_output=True, text=True, timeout=120)
    new = sorted(set(results.iterdir()) - before)
    if not new:
        raise SystemExit("a run wrote no run folder: run it by hand to see why\n" + " ".join(cmd))
    summary = json.loads((new[-1] / "summary.json").read_text())
    test: dict[str, object] = summary["tests"][0]
    return test


def _p95(test: dict[str, object]) -> float:
    metrics = test.get("metrics")
    assert isinstance(metrics, dict)
    return float(metrics["http_req_duration"]["p(95)"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--baseline-runs", type=int, default=5)
    ap.add_argument("--duration", default="5s")
    ap.add_argument("--vus", type=int, default=10)
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--jitter-ms", type=float, default=10.0)
    args = ap.parse_args()
    server = Server(args.delay_ms / 1000.0, args.jitter_ms / 1000.0)
    with tempfile.TemporaryDirectory(prefix="novaload-noise-") as tmp:
        d = Path(tmp)
        (d / "test_noise.py").write_text(TEST.format(vus=args.vus, duration=args.duration))
        results = d / "results"
        baseline = d / "baseline.json"
        t0 = time.time()
        for _ in range(max(args.baseline_runs, 1)):
            base = run_once(d, server, results, save=baseline)
        (entry,) = json.loads(baseline.read_text())["tests"].values()
        earlier = [r["values"]["http_req_duration"]["p(95)"] for r in entry.get("runs", [])]
        print(f"baseline: {max(args.baseline_runs, 1)} run(s), p(95) "
              f"{', '.join(f'{v:.2f}' for v in [*earlier, _p95(base)])} ms, "
              f"{args.vus} VUs x {args.duration}, server {args.delay_ms:g} ms + "
              f"U(0, {args.jitter_ms:g}) ms", flush=True)
        kinds = (("unchanged", 1.0), ("30% slower", 1.30), ("2% slower", 1.02))
        counts = {label: {"regressed": 0, "pass": 0, "inconclusive": 0, "other": 0}
                  for label, _ in kinds}
        p95s: dict[str, list[float]] = {label: [] for label, _ in kinds}
        which: dict[str, dict[str, int]] = {label: {} for label, _ in kinds}
        for _ in range(args.runs):
            for label, factor in kinds:
                server.factor = factor
                test = run_once(d, server, results, baseline=baseline)
                comparison = test.get("comparison")
                verdict = comparison.get("verdict") if isinstance(comparison, dict) else None
                counts[label][verdict if verdict in counts[label] else "other"] += 1
                for stat in comparison.get("stats", []) if isinstance(comparison, dict) else []:
                    if stat.get("verdict") == "regressed":
                        key = f"{stat['metric']} {stat['stat']}"
                        which[label][key] = which[label].get(key, 0) + 1
                p95s[label].append(_p95(test))
        rows = []
        for label, _ in kinds:
            c, got = counts[label], sorted(p95s[label])
            rows.append((label, c, got[len(got) // 2]))
            print(f"{label:>11}: REGRESSED {c['regressed']}/{args.runs}, pass {c['pass']}, "
                  f"inconclusive {c['inconclusive']}"
                  + (f", other {c['other']}" if c["other"] else "")
                  + f"  (median p(95) {got[len(got) // 2]:.2f} ms)"
                  + (f"; regressed stats: {which[label]}" if which[label] else ""), flush=True)
        n = args.runs
        slack = max(1, n // 20)
        goals = [("unchanged", rows[0][1]["regressed"] <= slack, f"<= {slack} in {n}"),
                 ("30% slower", rows[1][1]["regressed"] >= n - slack, f">= {n - slack} in {n}"),
                 ("2% slower", rows[2][1]["regressed"] == 0, "never")]
        print(f"goals ({time.time() - t0:.0f} s): " + "; ".join(
            f"{label} {want}: {'met' if ok else 'MISSED'}" for label, ok, want in goals))
        return 0 if all(ok for _, ok, _ in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
