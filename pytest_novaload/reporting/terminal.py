"""The k6-style end-of-test summary and the live progress line (one for every caller)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_novaload.metrics.builtins import unit_of
from pytest_novaload.units import format_bytes

if TYPE_CHECKING:
    from pytest_novaload.engine.runner import Snapshot
    from pytest_novaload.reporting.model import RunResult

WIDTH = 34


def _clock(seconds: float) -> str:
    """12s, 4m05s, 1h02m: short and fixed-format, so the line does not jump around."""
    t = max(0, int(seconds))
    if t < 60:
        return f"{t}s"
    if t < 3600:
        return f"{t // 60}m{t % 60:02d}s"
    return f"{t // 3600}h{t % 3600 // 60:02d}m"


def stage_label(elapsed: float, planned: float, ends: tuple[float, ...]) -> str:
    """"stage 2/3" while a stage runs, "stopping" after the plan (graceful stop/ramp-down),
    "" for a plan without stages that is still running."""
    if elapsed >= planned > 0:
        return "stopping"
    if len(ends) < 2:
        return ""
    index = next((i for i, end in enumerate(ends) if elapsed < end), len(ends) - 1)
    return f"stage {index + 1}/{len(ends)}"


def progress_line(nodeid: str, s: Snapshot, prev: tuple[float, int] | None = None) -> str:
    """``test_x  stage 2/3  12s/1m00s  vus 40/100  473 reqs/s  p95 12.3ms p99 20.1ms
    failed 0.00%  (5678 reqs, 1234 iters)``

    The protocol part follows what the test uses: HTTP requests, database queries or WebSocket
    messages. The rate is over the time since ``prev`` (elapsed, count of that protocol's
    counter, as ``protocol_count`` gives), else since the start; p95/p99 and the failure rate
    are over the whole run so far."""
    parts = [nodeid.rsplit("::", 1)[-1]]
    stage = stage_label(s.elapsed, s.planned, s.stage_ends)
    if stage:
        parts.append(stage)
    parts += [f"{_clock(s.elapsed)}/{_clock(s.planned)}", f"vus {s.vus}/{s.vus_max}"]
    store = s.store
    found = _protocol(s)
    totals = f"{s.iterations} iters"
    if found is not None:
        (_count, label, trend, failed), n = found
        t0, n0 = prev if prev is not None and prev[0] < s.elapsed else (0.0, 0)
        rate = (n - n0) / (s.elapsed - t0) if s.elapsed > t0 else 0.0
        parts.append(f"{rate:.0f} {label}/s")
        dur = store.aggregate(trend) if trend in store else None
        if dur is not None and not dur.empty:
            parts.append(f"p95 {_fmt_ms(dur.value('p(95)'))} p99 {_fmt_ms(dur.value('p(99)'))}")
        rate_sink = store.aggregate(failed) if failed in store else None
        if rate_sink is not None and not rate_sink.empty:
            parts.append(f"failed {rate_sink.value('rate') * 100:.2f}%")
        totals = f"{n} {label}, {totals}"
    parts.append(f"({totals})")
    return "  ".join(parts)


def _protocol(s: Snapshot) -> tuple[tuple[str, str, str, str], int] | None:
    """The first protocol of PROGRESS_METRICS the test used, with its counter's count."""
    for entry in PROGRESS_METRICS:
        if entry[0] in s.store:
            n = int(s.store.aggregate(entry[0]).value("count"))
            if n:
                return entry, n
    return None


class LiveProgress:
    """Live progress of one load test: on a TTY one line rewritten in place (cut to the
    terminal's width, so it never wraps), otherwise a line every 10 s for CI logs. It starts
    below pytest's own line for the test and is left in place when the run ends, so pytest's
    result marker is never overwritten. The session shows one process's run with it, the
    xdist controller every shard merged (``suffix`` "[2 shards]")."""

    EVERY = 10.0   # seconds between lines when not on a TTY

    def __init__(self, write: Callable[[str], None], nodeid: str, *, tty: bool,
                 suffix: str = "", width: Callable[[], int] | None = None) -> None:
        self.write = write
        self.nodeid = nodeid
        self.tty = tty
        self.suffix = suffix
        self.width = width or (lambda: shutil.get_terminal_size((150, 24)).columns)
        self._last = -self.EVERY
        self._shown = False
        self._prev: tuple[float, int] | None = None

    @classmethod
    def create(cls, write: Callable[[str], None] | None, nodeid: str, *, mode: str,
               isatty: bool, suffix: str = "",
               width: Callable[[], int] | None = None) -> LiveProgress | None:
        """None when there is no terminal or ``mode`` is "off"; "auto" follows ``isatty``,
        "tty" and "lines" force one style. ``width`` gives the terminal's columns."""
        if write is None or mode == "off":
            return None
        return cls(write, nodeid, tty=isatty if mode == "auto" else mode == "tty",
                   suffix=suffix, width=width)

    def show(self, s: Snapshot) -> None:
        if not self.tty and s.elapsed - self._last < self.EVERY:
            return
        line = progress_line(self.nodeid, s, self._prev)
        found = _protocol(s)
        self._prev = (s.elapsed, found[1] if found is not None else 0)
        lead = "" if self._shown else "\n"
        self._shown = True
        if self.tty:
            # \r, the line cut to the width, then erase the rest of the old one (ESC [K).
            # The suffix ("[2 shards]") stays whole; the body gives way.
            room = max(20, self.width() - 1 - len(self.suffix))
            self.write(lead + "\r" + line[:room] + self.suffix + "\x1b[K")
        else:
            self._last = s.elapsed
            self.write(lead + line + self.suffix + "\n")

    def end(self) -> None:
        """The run is over: end the rewritten line, so what follows starts on its own."""
        if self.tty and self._shown:
            self.write("\n")
        self._shown = False


# (counter, label, latency trend, failure rate): the first one the test uses is shown.
PROGRESS_METRICS = (
    ("http_reqs", "reqs", "http_req_duration", "http_req_failed"),
    ("db_queries", "queries", "db_query_duration", "db_query_failed"),
    ("ws_msgs_received", "ws msgs", "ws_msg_latency", "ws_failed"),
)


def _fmt_ms(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:.2f}s"
    if v >= 1:
        return f"{v:.2f}ms"
    return f"{v * 1000:.0f}µs"


def _metric_line(name: str, st: dict[str, Any]) -> str:
    label = (name + " ").ljust(WIDTH, ".") + ":"
    kind = st.get("type")
    if kind == "trend":
        fields = ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"]
        ci = st.get("ci95") or {}

        def shown(f: str) -> str:
            iv = ci.get(f)
            tail = (f" [{_fmt_ms(float(iv[0]))}, {_fmt_ms(float(iv[1]))}]"
                    if isinstance(iv, list) and len(iv) == 2 else "")
            return f"{f}={_fmt_ms(float(st[f]))}{tail}"

        body = " ".join(shown(f) for f in fields if f in st)
        return f"{label} {body}  count={st.get('count', 0)}"
    if kind == "counter" and unit_of(name) == "bytes":
        return f"{label} {format_bytes(st['count'])}  {format_bytes(st['rate'])}/s"
    if kind == "counter":
        return f"{label} {st['count']:g}  {st['rate']:.2f}/s"
    if kind == "rate":
        total = int(st["passes"]) + int(st["fails"])
        return f"{label} {st['rate'] * 100:.2f}%  {st['passes']} out of {total}"
    if kind == "gauge":
        return f"{label} {st['value']:g}  min={st['min']:g} max={st['max']:g}"
    return f"{label} {st}"


def render(result: RunResult) -> str:
    """The end-of-test summary of one load test, k6 style."""
    d = result.to_dict()
    ex = d["executor"]
    lines = [f"{result.nodeid}  [{d['outcome']}]  {ex.get('type')}, "
             f"{d['shards']} shard{'s' if d['shards'] != 1 else ''}, {d['duration_s']:.1f}s"]
    if result.thresholds:
        lines.append("  THRESHOLDS")
        for o in result.thresholds:
            mark = "✓" if o.ok else "✗"
            lines.append(f"    {mark} {o.line()}")
    if result.aborted:
        lines.append(f"  ABORTED: {result.aborted}")
    lines.append("  METRICS")
    metrics = d["metrics"]
    shown = {o.threshold.metric for o in result.thresholds}
    for name in sorted(metrics):
        if "{" in name and name not in shown:
            continue  # per-tag breakdowns are in summary.json and SUMMARY.md
        st = metrics[name]
        if st.get("type") in ("trend", "rate") and not st.get("count") and not (
                st.get("passes") or st.get("fails")):
            continue
        lines.append("    " + _metric_line(name, st))
    checks = d["checks"]
    if checks:
        lines.append("  CHECKS")
        for name, c in checks.items():
            total = c["passes"] + c["fails"]
            mark = "✓" if c["fails"] == 0 else "✗"
            pct = 100.0 * c["passes"] / total if total else 0.0
            lines.append(f"    {mark} {name}: {pct:.2f}% ({c['passes']} / {total})")
    if d["errors"]:
        lines.append("  ERRORS")
        for e in d["errors"]:
            example = str(e.get("example", "")).splitlines()[0][:160] if e.get("example") else ""
            lines.append(f"    {e['type']} x{e['count']}: {example}")
    for w in d.get("warnings", []):
        lines.append(f"  WARNING  {w}")
    comparison = result.comparison()
    if comparison is not None:
        from pytest_novaload.gate.report import render_text
        lines.append("  BASELINE")
        lines += ["    " + x for x in render_text([comparison]).rstrip("\n").splitlines()]
    g = d.get("generator") or {}
    if g:
        lines.append(f"  GENERATOR  {g.get('verdict', '')}  (loop {g.get('loop')}, lag p99 "
                     f"{g.get('loop_lag_p99_ms')} ms, cpu {float(g.get('cpu', 0)) * 100:.0f}%)")
    return "\n".join(lines)
