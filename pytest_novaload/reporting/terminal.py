"""The k6-style end-of-test summary and the live progress line (one for every caller)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_novaload.metrics.builtins import unit_of
from pytest_novaload.units import format_bytes

if TYPE_CHECKING:
    from pytest_novaload.engine.runner import Snapshot
    from pytest_novaload.reporting.model import RunResult

WIDTH = 34


def progress_line(nodeid: str, s: Snapshot) -> str:
    """``test_x  12s/60s  vus 40/100  iters 1234  reqs 5678 (473/s)  p95 12.3ms  failed 0.0%``

    The protocol part follows what the test uses: HTTP requests, database queries or
    WebSocket messages."""
    parts = [nodeid.rsplit("::", 1)[-1], f"{s.elapsed:.0f}s/{s.planned:.0f}s",
             f"vus {s.vus}/{s.vus_max}", f"iters {s.iterations}"]
    store = s.store
    for count, label, trend, failed in PROGRESS_METRICS:
        if count not in store:
            continue
        n = int(store.aggregate(count).value("count"))
        if n == 0:
            continue
        rate = n / s.elapsed if s.elapsed > 0 else 0.0
        parts.append(f"{label} {n} ({rate:.0f}/s)")
        if trend and trend in store:
            dur = store.aggregate(trend)
            if not dur.empty:
                parts.append(f"p95 {dur.value('p(95)'):.1f}ms")
        if failed and failed in store:
            rate_sink = store.aggregate(failed)
            if not rate_sink.empty:
                parts.append(f"failed {rate_sink.value('rate') * 100:.2f}%")
        break
    return "  ".join(parts)


class LiveProgress:
    """Live progress of one load test: on a TTY one line rewritten in place, otherwise a line
    every 10 s. It starts below pytest's own line for the test and is left in place when the
    run ends, so pytest's result marker is never overwritten. The session shows one process's
    run with it, the xdist controller every shard merged (``suffix`` "[2 shards]")."""

    def __init__(self, write: Callable[[str], None], nodeid: str, *, tty: bool,
                 suffix: str = "") -> None:
        self.write = write
        self.nodeid = nodeid
        self.tty = tty
        self.suffix = suffix
        self._last = -10.0
        self._shown = False

    @classmethod
    def create(cls, write: Callable[[str], None] | None, nodeid: str, *, mode: str,
               isatty: bool, suffix: str = "") -> LiveProgress | None:
        """None when there is no terminal or ``mode`` is "off"; "auto" follows ``isatty``,
        "tty" and "lines" force one style."""
        if write is None or mode == "off":
            return None
        return cls(write, nodeid, tty=isatty if mode == "auto" else mode == "tty",
                   suffix=suffix)

    def show(self, s: Snapshot) -> None:
        line = progress_line(self.nodeid, s) + self.suffix
        lead = "" if self._shown else "\n"
        if self.tty:
            self.write(lead + "\r" + line[:150].ljust(150))
            self._shown = True
        elif s.elapsed - self._last >= 10.0:
            self._last = s.elapsed
            self.write(lead + line + "\n")
            self._shown = True

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
        body = " ".join(f"{f}={_fmt_ms(float(st[f]))}" for f in fields if f in st)
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
    g = d.get("generator") or {}
    if g:
        lines.append(f"  GENERATOR  {g.get('verdict', '')}  (loop {g.get('loop')}, lag p99 "
                     f"{g.get('loop_lag_p99_ms')} ms, cpu {float(g.get('cpu', 0)) * 100:.0f}%)")
    return "\n".join(lines)
