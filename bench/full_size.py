"""The four NovaCron suites at the plan's real counts (`--load-scale 1`), shortened in time.

Runs `pytest -m load tests/perf/test_<suite>.py --load-scale S --load-duration-scale D -n N`
(one suite at a time, each in its own results folder), samples the process tree meanwhile
(generator RSS and open descriptors, stand-in RSS, CPU, free memory) and prints, from the
run's summary.json and those samples, what held:

- api: peak VUs, req/s, http_req_duration p95/p99, error rate, the generator line;
- dwcp: concurrent migrations, completed migrations/s, migration p95, DWCP latency p95;
- ws: the largest count held, the open rate, ws_connecting p95, generator memory per
  connection, and what stopped it (file descriptors, ports, memory, CPU);
- db: peak VUs, queries/s, db_query_duration p95, db_pool_wait p95/p99.

Targets: the repository's conftest starts PostgreSQL and the stand-in on loopback (sized by
the stand-in from the plan). Bounded: each run is killed after its planned time x duration
scale + --slack seconds.

    python bench/full_size.py --suite api                  # 10K VUs, 0.05 of the plan's time
    python bench/full_size.py --suite ws -n 6                # toward 100K connections
    python bench/full_size.py --suite all --scale 0.01 --duration-scale 0.01   # smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _procs import Proc, Sample, TreeSampler, raise_nofile

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SUITES = {   # suite -> (test file, duration scale by default: the plan's 21-26 min cut to ~1-3)
    "api": ("tests/perf/test_api_load.py", 0.05),
    "dwcp": ("tests/perf/test_dwcp_load.py", 0.05),
    "ws": ("tests/perf/test_websocket_load.py", 0.2),
    "db": ("tests/perf/test_database_load.py", 0.05),
}


def planned_seconds(test_file: str) -> float:
    """The plan's length (sum of its STAGES), read from the suite module's source."""
    import ast

    sys.path.insert(0, str(ROOT))
    from pytest_novaload.units import parse_duration

    tree = ast.parse((ROOT / test_file).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "STAGES" for t in node.targets):
            stages = ast.literal_eval(node.value)
            return float(sum(parse_duration(s[0]) for s in stages))
    raise SystemExit(f"{test_file}: no STAGES list found")


def is_target(p: Proc) -> bool:
    """The stand-in and PostgreSQL: what pytest started to be loaded, not the generator."""
    return any(word in p.cmdline for word in ("novacron_sim", "postgres", "pg_ctl"))


def baseline(s: TreeSampler) -> Sample | None:
    """The last sample before the connections climb: every generator process up, open
    descriptors still near their lowest (what the interpreters cost before the load)."""
    if not s.samples:
        return None
    peak = max(range(len(s.samples)), key=lambda i: s.samples[i].fds)
    before = s.samples[:peak + 1]
    procs = max(x.procs for x in before)
    up = [x for x in before if x.procs == procs] or before
    low = min(x.fds for x in up)
    return [x for x in up if x.fds <= low + 50][-1]


def m(test: dict[str, Any], key: str, stat: str) -> float | None:
    v = test.get("metrics", {}).get(key, {}).get(stat)
    return float(v) if isinstance(v, int | float) else None


def fmt(v: float | None, spec: str = ",.0f", unit: str = "") -> str:
    return "n/a" if v is None else f"{v:{spec}}{unit}"


def open_rates(run_dir: Path, nodeid: str) -> tuple[float | None, float | None]:
    """ws_connecting per second from timeseries.ndjson: (peak opens in one second, mean opens
    per second over the seconds that opened any)."""
    counts: dict[int, float] = {}
    path = run_dir / "timeseries.ndjson"
    if not path.exists():
        return None, None
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            d = json.loads(line)
            if d.get("metric") == "ws_connecting" and d.get("test") == nodeid:
                counts[int(d["t"])] = counts.get(int(d["t"]), 0) + float(d.get("count", 0))
    if not counts:
        return None, None
    return max(counts.values()), sum(counts.values()) / len(counts)


def what_stopped(test: dict[str, Any], s: TreeSampler, nofile: int, procs: int) -> str:
    """The limit a WebSocket run met, from its errors, its generator line and the samples."""
    gen = test.get("generator", {})
    errors = " ".join(f"{e.get('type')} {e.get('example', '')}" for e in test.get("errors", []))
    reasons = []
    if "assign requested address" in errors.lower() or "ephemeral ports" in gen.get("verdict",
                                                                                      ""):
        reasons.append("ports (EADDRNOTAVAIL)")
    if "too many open files" in errors.lower() or "file descriptors" in gen.get("verdict", ""):
        reasons.append(f"file descriptors (limit {nofile} per process)")
    if s.peak_fds >= 0.95 * nofile * max(procs, 1):
        reasons.append(f"file descriptors ({s.peak_fds:,} open, limit {nofile} x {procs})")
    if s.samples and min(x.mem_available_mb for x in s.samples) < 500:
        reasons.append("memory (MemAvailable < 500 MB)")
    if gen.get("saturated") or s.peak_cpu_share() > 0.95 * (os.cpu_count() or 1):
        reasons.append(f"CPU (generator peak {s.peak_cpu_share():.2f} cores)")
    if "timeout" in errors.lower():
        reasons.append("open timeouts (the server or the handshake rate)")
    slow = m(test, "ws_connecting", "p(95)")
    if slow is not None and slow > 2000:   # the plan's own threshold on connection time
        reasons.append(f"slow opens (ws_connecting p95 {slow / 1000:.1f} s: the server's "
                       "handshake rate, or the generator's loop: see its line)")
    return "; ".join(reasons) or "nothing: the plan held"


def report(suite: str, test: dict[str, Any], run_dir: Path, s: TreeSampler, args:
           argparse.Namespace, nofile: int) -> list[tuple[str, str]]:
    """The key numbers of one suite's run, as (name, value) rows."""
    gen = test.get("generator", {})
    dur = float(test.get("duration_s") or 0.0)
    rows = [("outcome", f"{test.get('outcome')} in {dur:.0f} s, {test.get('shards', 1)} shard(s)"),
            ("peak VUs", fmt(m(test, "vus", "max")))]
    if suite == "api":
        rows += [("requests/s", fmt(m(test, "http_reqs", "rate"))),
                 ("http_req_duration p95 / p99",
                  f"{fmt(m(test, 'http_req_duration', 'p(95)'), '.1f')} / "
                  f"{fmt(m(test, 'http_req_duration', 'p(99)'), '.1f')} ms"),
                 ("error rate", fmt(m(test, "http_req_failed", "rate"), ".4%"))]
    elif suite == "dwcp":
        done = m(test, "migration_duration", "count")
        rows += [("concurrent migrations (peak VUs)", fmt(m(test, "vus", "max"))),
                 ("completed migrations/s", fmt(done / dur if done and dur else None, ".1f")),
                 ("migration_duration p95", fmt(m(test, "migration_duration", "p(95)"), ",.0f",
                                                " ms")),
                 ("DWCP latency p95", fmt(m(test, "ws_msg_latency{name:dwcp}", "p(95)"), ".1f",
                                          " ms")),
                 ("dwcp_errors rate", fmt(m(test, "dwcp_errors", "rate"), ".4%"))]
    elif suite == "ws":
        peak, mean = open_rates(run_dir, test["nodeid"])
        base = baseline(s)
        held = s.peak_fds - (base.fds if base else 0)
        at_peak = max(s.samples, key=lambda x: x.fds) if s.samples else None
        per_conn = (at_peak.rss_mb * 1024 / held) if at_peak and held > 0 else None
        incr = ((at_peak.rss_mb - base.rss_mb) * 1024 / held) if at_peak and base and held > 0 \
            else None
        rows += [("connections opened (ws_sessions)", fmt(m(test, "ws_sessions", "count"))),
                 ("largest count held (generator fds over the baseline)", f"{held:,}"),
                 ("open rate: peak second / mean", f"{fmt(peak)} / {fmt(mean)} per s"),
                 ("ws_connecting p95 / p99", f"{fmt(m(test, 'ws_connecting', 'p(95)'), ',.1f')} /"
                  f" {fmt(m(test, 'ws_connecting', 'p(99)'), ',.1f')} ms"),
                 ("ws_failed rate", fmt(m(test, "ws_failed", "rate"), ".4%")),
                 ("ws_msg_latency p95", fmt(m(test, "ws_msg_latency", "p(95)"), ",.1f", " ms")),
                 ("generator RSS per held connection (total / over baseline)",
                  f"{fmt(per_conn, '.1f')} / {fmt(incr, '.1f')} KB"),
                 ("what stopped it", what_stopped(test, s, nofile, max(args.n, 1) + 1))]
    elif suite == "db":
        rows += [("queries/s", fmt(m(test, "db_queries", "rate"))),
                 ("db_query_duration p95", fmt(m(test, "db_query_duration", "p(95)"), ",.1f",
                                               " ms")),
                 ("db_pool_wait p95 / p99", f"{fmt(m(test, 'db_pool_wait', 'p(95)'), ',.2f')} / "
                  f"{fmt(m(test, 'db_pool_wait', 'p(99)'), ',.2f')} ms"),
                 ("db_query_failed rate", fmt(m(test, "db_query_failed", "rate"), ".4%"))]
    errors = test.get("errors", [])
    target_mb = max((x.other_rss_mb for x in s.samples), default=0.0)
    low_mem = min((x.mem_available_mb for x in s.samples), default=0.0)
    rows += [("errors (top 3 by count)", "; ".join(
                 f"{e.get('type')} x{e.get('count')}" for e in sorted(
                     errors, key=lambda e: -int(e.get("count", 0)))[:3]) or "none"),
             ("thresholds failed", ", ".join(f"{t['metric']} {t['expression']}" for t in
                                             test.get("thresholds", []) if not t.get("ok"))
              or "none"),
             ("generator", f"{gen.get('verdict', 'n/a')} (cpu {gen.get('cpu', 'n/a')}, lag p99 "
                           f"{gen.get('loop_lag_p99_ms', 'n/a')} ms, gc max "
                           f"{gen.get('gc_pause_max_ms', 'n/a')} ms)"),
             ("generator processes: peak RSS / fds / CPU",
              f"{s.peak_rss_mb:,.0f} MB / {s.peak_fds:,} / {s.peak_cpu_share():.2f} cores"),
             ("stand-in peak RSS (PostgreSQL runs detached: not counted)", f"{target_mb:,.0f} MB"),
             ("lowest MemAvailable", f"{low_mem:,.0f} MB")]
    return rows


def run_suite(suite: str, args: argparse.Namespace) -> list[tuple[str, str]]:
    test_file, default_ds = SUITES[suite]
    ds = args.duration_scale if args.duration_scale is not None else default_ds
    planned = planned_seconds(test_file) * ds
    budget = planned + args.slack
    results = Path(tempfile.mkdtemp(prefix=f"novaload-full-{suite}-"))
    cmd = [sys.executable, "-m", "pytest", "-m", "load", test_file, "-q", "-p", "no:cacheprovider",
           "--load-scale", str(args.scale), "--load-duration-scale", str(ds),
           "--load-results", str(results), "-n", str(args.n), *args.pytest_args]
    print(f"\n## {suite}: {' '.join(cmd[1:])}\n#  planned {planned:.0f} s, killed after "
          f"{budget:.0f} s; results in {results}", flush=True)

    def child_setup() -> None:
        raise_nofile(args.nofile)

    log = results / "pytest.out"
    t0 = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=child_setup, start_new_session=True)
        with TreeSampler(proc.pid, every=args.every, is_other=is_target) as sampler:
            try:
                proc.wait(budget)
            except (subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
                # pytest runs in its own session (so that the whole tree can be stopped):
                # a Ctrl-C here must reach it, and a run over its budget is stopped alike.
                why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "over its budget"
                print(f"#  {why}: stopping pytest", flush=True)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                if isinstance(exc, KeyboardInterrupt):
                    raise
    nofile = min(args.nofile, _hard_nofile())
    tail = log.read_text(errors="replace").strip().splitlines()[-1:]
    print(f"#  pytest exit {proc.returncode} after {time.monotonic() - t0:.0f} s: "
          f"{tail[0] if tail else ''}", flush=True)
    runs = sorted(p for p in results.iterdir() if (p / "summary.json").exists())
    if not runs:
        print(f"#  no summary.json: see {log}")
        return [("outcome", f"no summary (pytest exit {proc.returncode}, see {log})")]
    summary = json.loads((runs[-1] / "summary.json").read_text())
    tests = summary.get("tests", [])
    if not tests:
        return [("outcome", f"no load test ran (see {log})")]
    rows = report(suite, tests[0], runs[-1], sampler, args, nofile)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    return rows


def _hard_nofile() -> int:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 30 if hard == resource.RLIM_INFINITY else int(hard)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=(*SUITES, "all"), default="all")
    ap.add_argument("--scale", type=float, default=1.0, help="--load-scale (1 = the plan)")
    ap.add_argument("--duration-scale", type=float, default=None,
                    help="--load-duration-scale (default: api/dwcp/db 0.05, ws 0.2)")
    ap.add_argument("-n", type=int, default=2, help="xdist workers (-n N; 0 = none)")
    ap.add_argument("--nofile", type=int, default=1_048_576,
                    help="raise the soft open-file limit of pytest (and its workers) to this, "
                         "capped at the hard limit (default: as high as allowed)")
    ap.add_argument("--every", type=float, default=1.0, help="seconds between samples")
    ap.add_argument("--slack", type=float, default=180.0,
                    help="seconds allowed beyond the planned time (start-up, graceful stop)")
    ap.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = ap.parse_args()
    if not 0 < args.scale <= 1 or (args.duration_scale is not None
                                   and not 0 < args.duration_scale <= 1):
        raise SystemExit("--scale and --duration-scale must be in (0, 1]")
    if not 0 <= args.n <= 16:
        raise SystemExit(f"-n {args.n}: expected 0..16 xdist workers")
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    print(f"# full-size suites: load scale {args.scale:g}, -n {args.n}, open-file limit "
          f"{min(args.nofile, _hard_nofile())} (hard {_hard_nofile()}), {os.cpu_count()} CPUs")
    table = {suite: dict(run_suite(suite, args)) for suite in suites}
    if len(table) > 1:
        print("\n## summary")
        for suite, rows in table.items():
            keys = {"api": ("peak VUs", "requests/s", "http_req_duration p95 / p99",
                            "error rate"),
                    "dwcp": ("concurrent migrations (peak VUs)", "completed migrations/s",
                             "migration_duration p95"),
                    "ws": ("largest count held (generator fds over the baseline)",
                           "open rate: peak second / mean", "ws_connecting p95 / p99",
                           "generator RSS per held connection (total / over baseline)",
                           "what stopped it"),
                    "db": ("peak VUs", "queries/s", "db_pool_wait p95 / p99")}[suite]
            line = "; ".join(f"{k.split(' (')[0]} {rows[k]}" for k in keys if k in rows)
            print(f"  {suite:>4}: {line}; generator: {rows.get('generator', 'n/a')[:90]}")


if __name__ == "__main__":
    main()
