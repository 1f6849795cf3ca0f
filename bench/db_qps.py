"""PostgreSQL primary-key SELECTs per second on one core: `vu.db` vs bare asyncpg (vs pgbench).

Every tool queries the SAME throwaway cluster (`novacron_sim.pg.start_postgres`: trust auth,
loopback only, fsync off; its processes pinned to CPU 1) in the same run. Each generator runs
in its own process pinned to CPU 0 on uvloop: a pool of --pool connections shared by
--workers tasks, each looping `SELECT v FROM bench WHERE id = $1` with no think time.

- bare: `async with pool.acquire() as conn: await conn.fetchval(SQL, id)` (asyncpg as a
  hand-written load script uses it);
- ours: one `DbClient` per worker on one `DbPool` (as the runner builds them),
  `await vu.db.fetchval(SQL, id)`;
- pgbench: `-M prepared -c POOL -j 1` with the same statement: the ceiling (C client).

Tools run in rounds so that machine drift hits each alike; ratios are per round (median
printed), by throughput and by CPU per query. Bounded: --duration s per tool.

    python bench/db_qps.py                                # pool 20, 100 workers, 3 s per tool
    python bench/db_qps.py --pool 20 --workers 100 --duration 5 --rounds 3
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
from pathlib import Path
from typing import Any

from _common import ROOT, add_cpu_args, pin, print_ratios, run_json

ROWS = 10_000
SQL = "SELECT v FROM bench WHERE id = $1"


def run_python(kind: str, dsn: str, pool_size: int, workers: int, duration: float,
               warmup: float) -> dict[str, Any]:
    import asyncio
    import random

    import asyncpg
    import uvloop

    from pytest_novaload.clients.base import ClientContext
    from pytest_novaload.clients.postgres import DbClient, DbPool
    from pytest_novaload.metrics import MetricStore

    async def main() -> dict[str, Any]:
        count = 0
        counting = False
        stop = False
        ids = [random.randrange(1, ROWS + 1) for _ in range(4096)]
        opts = {"min_size": pool_size, "max_size": pool_size}

        async def bare(pool: Any, i: int) -> None:
            nonlocal count
            n = i
            while not stop:
                async with pool.acquire() as conn:
                    await conn.fetchval(SQL, ids[n & 4095])
                n += 1
                if counting:
                    count += 1

        async def ours(db: DbClient, i: int) -> None:
            nonlocal count
            n = i
            while not stop:
                await db.fetchval(SQL, ids[n & 4095])
                n += 1
                if counting:
                    count += 1

        store = MetricStore()
        shared = DbPool(dsn, opts)
        if kind == "bare":
            pool = await asyncpg.create_pool(dsn, **opts)
            tasks = [asyncio.create_task(bare(pool, i)) for i in range(workers)]
        else:
            await shared.get({}, opts)
            tasks = [asyncio.create_task(ours(DbClient(ClientContext(store=store, vu_id=i),
                                                       shared), i)) for i in range(workers)]
        await asyncio.sleep(warmup)
        counting = True
        t0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.sleep(duration)
        counting = False
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        stop = True
        await asyncio.gather(*tasks)
        if kind == "bare":
            await pool.close()
        else:
            await shared.aclose()
        return {"queries": count, "seconds": elapsed, "qps": count / elapsed, "cpu_s": cpu}

    return uvloop.run(main())


def run_pgbench(dsn: str, clients: int, duration: float, cpu: int) -> dict[str, Any] | None:
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        print("pgbench: not found, skipped")
        return None
    tmp = Path(tempfile.mkdtemp(prefix="novaload-pgbench-"))
    try:
        script = tmp / "select.sql"
        script.write_text(f"\\set id random(1, {ROWS})\nSELECT v FROM bench WHERE id = :id;\n")
        os.chmod(tmp, 0o755)
        os.chmod(script, 0o644)
        out = subprocess.run([pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", "1",
                              "-T", str(max(1, round(duration))), "-f", str(script), dsn],
                             capture_output=True, text=True, preexec_fn=lambda: pin(cpu),
                             timeout=duration + 60, check=False)
        for line in out.stdout.splitlines():
            if line.startswith("tps = "):
                qps = float(line.split()[2])
                return {"qps": qps}
        print(f"pgbench failed: {out.stderr.strip()[:300]}")
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_child(kind: str, dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    return run_json(__file__, [
        "--child", kind, "--dsn", dsn, "--pool", str(args.pool), "--workers", str(args.workers),
        "--duration", str(args.duration), "--warmup", str(args.warmup),
        "--client-cpu", str(args.client_cpu)], timeout=args.duration + args.warmup + 60)


def _pin_cluster(cluster: Any, cpu: int) -> None:
    """Pin the postmaster and every backend it already forked (new ones inherit it)."""
    pid = cluster._postmaster_pid()
    if pid is None:
        return
    pin(cpu, pid)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == pid:
                    pin(cpu, int(entry))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=int, default=20)
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per tool")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tools", default="bare,ours,pgbench")
    add_cpu_args(parser)
    parser.add_argument("--child", choices=("bare", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        pin(args.client_cpu)
        print(json.dumps(run_python(args.child, args.dsn, args.pool, args.workers,
                                    args.duration, args.warmup)))
        return
    if not (1 <= args.pool <= 200 and 1 <= args.workers <= 5000 and 0 < args.duration <= 60
            and 1 <= args.rounds <= 10):
        raise SystemExit("--pool 1..200, --workers 1..5000, --duration (0, 60] s, --rounds 1..10")
    sys.path.insert(0, str(ROOT))
    import asyncpg  # noqa: F401  (fail early when missing)

    from novacron_sim.pg import start_postgres

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    runs: dict[str, list[float]] = {t: [] for t in tools}
    cpus: dict[str, list[float]] = {t: [] for t in tools}
    with start_postgres() as cluster:
        _pin_cluster(cluster, args.server_cpu)
        subprocess.run([sys.executable, "-c", (
            "import asyncio, asyncpg, sys\n"
            "async def m():\n"
            "    c = await asyncpg.connect(sys.argv[1])\n"
            "    await c.execute('CREATE TABLE bench (id int PRIMARY KEY, v text)')\n"
            f"    await c.execute(\"INSERT INTO bench SELECT g, 'vm-' || g FROM "
            f"generate_series(1, {ROWS}) g\")\n"
            "    await c.execute('ANALYZE bench')\n"
            "    await c.close()\n"
            "asyncio.run(m())\n"), cluster.dsn], check=True, timeout=60)
        print(f"PostgreSQL on CPU {args.server_cpu} ({cluster.dsn}); generators on CPU "
              f"{args.client_cpu}; pool {args.pool}, {args.workers} workers; "
              f"{args.duration:g} s per tool; {SQL!r}", flush=True)
        for rnd in range(args.rounds):
            for tool in tools:
                if tool == "pgbench":
                    r = run_pgbench(cluster.dsn, args.pool, args.duration, args.client_cpu)
                    if r is None:
                        continue
                elif tool in ("bare", "ours"):
                    r = run_child(tool, cluster.dsn, args)
                    cpus[tool].append(r["cpu_s"] / max(1, r["queries"]))
                else:
                    raise SystemExit(f"unknown tool {tool!r}: expected bare, ours or pgbench")
                runs[tool].append(r["qps"])
                cpu = ""
                if "cpu_s" in r and r["queries"]:
                    cpu = (f"  {r['cpu_s'] / r['queries'] * 1e6:.1f} us CPU/query  generator "
                           f"CPU {r['cpu_s'] / r['seconds']:.0%}")
                print(f"round {rnd + 1} {tool:>7}: {r['qps']:>9,.0f} queries/s{cpu}", flush=True)
    print_ratios(tools, runs, cpus, base="bare", per="query",
                 notes={"ours": "  goal >= 0.8x", "pgbench": "  (the ceiling)"})

if __name__ == "__main__":
    main()
