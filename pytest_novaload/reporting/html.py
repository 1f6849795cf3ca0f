"""report.html: one self-contained page per run (inline CSS and SVG charts, no scripts).

For people used to k6's web dashboard or Locust's HTML report. Everything taken from the data
(test names, error texts, check names, tags) is user data and goes through ``html.escape``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_novaload.engine.stages import stage_ends
from pytest_novaload.metrics.builtins import unit_of
from pytest_novaload.reporting.charts import (
    baselines,
    esc,
    finite,
    fmt_num,
    protocol,
    timeseries_charts,
)
from pytest_novaload.units import format_bytes

__all__ = ["render"]

OUTCOME_CLASS = {"passed": "ok", "failed": "bad", "error": "bad", "interrupted": "warn",
                 "skipped": "warn"}
# Keys of a test's dict shown in sections of their own; any other key is listed under "details".
_KNOWN = frozenset({"nodeid", "outcome", "started", "finished", "duration_s", "executor",
                    "shards", "metrics", "thresholds", "checks", "errors", "generator",
                    "aborted", "warnings"})
_AGG = re.compile(r"^\s*([a-z]+(?:\(\s*[\d.]+\s*\))?)")

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1f2937;
 margin:0 auto;max-width:1100px;padding:16px 24px}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:0 0 6px;word-break:break-all}
h3{font-size:15px;margin:18px 0 6px}
section{border-top:2px solid #e5e7eb;margin-top:28px;padding-top:14px}
table{border-collapse:collapse;margin:4px 0 8px}
th,td{border-bottom:1px solid #e5e7eb;padding:3px 10px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}td.n{white-space:nowrap}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f9fafb;padding:8px;overflow:auto;max-height:300px}
.ok{color:#047857;font-weight:600}.bad{color:#b91c1c;font-weight:600}
.warn{color:#b45309;font-weight:600}.muted{color:#6b7280}
.badge{display:inline-block;padding:0 8px;border-radius:9px;color:#fff;font-size:13px}
.badge.ok{background:#059669}.badge.bad{background:#dc2626}.badge.warn{background:#d97706}
.charts{display:flex;flex-wrap:wrap;gap:10px}
.charts svg{border:1px solid #e5e7eb;background:#fff}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:6px 0}
dt{color:#6b7280}dd{margin:0}
"""


def _ms(v: Any) -> str:
    x = finite(v)
    return "—" if x is None else f"{x:.2f}"


# -- tables --------------------------------------------------------------------------------------

def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """A table from already-escaped cells; columns in ``numeric`` are right-aligned."""
    def cell(tag: str, i: int, text: str) -> str:
        cls = ' class="n"' if i in numeric else ""
        return f"<{tag}{cls}>{text}</{tag}>"

    out = ["<table><thead><tr>", *(cell("th", i, h) for i, h in enumerate(head)),
           "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _outcome(outcome: Any) -> str:
    cls = OUTCOME_CLASS.get(str(outcome), "warn")
    return f'<span class="badge {cls}">{esc(outcome)}</span>'


def _stages(executor: Mapping[str, Any]) -> str:
    """"1s → 8, 1s → 8, 1s → 0" from k6-style stages (lists, tuples or dicts)."""
    parts = []
    for st in executor.get("stages") or ():
        if isinstance(st, Mapping):
            parts.append(f"{st.get('duration')} → {st.get('target')}")
        elif isinstance(st, list | tuple) and len(st) == 2:
            parts.append(f"{st[0]} → {st[1]}")
        else:
            parts.append(str(st))
    return ", ".join(parts)


def _observed(th: Mapping[str, Any]) -> str:
    """The observed value with its unit, as the threshold evaluator printed it."""
    display = th.get("display")
    if display:
        return str(display)
    v = finite(th.get("observed"))
    return "n/a" if v is None else fmt_num(v)


def _thresholds(t: Mapping[str, Any]) -> str:
    ths = t.get("thresholds") or []
    if not ths:
        return ""
    rows = []
    reasons = any(th.get("reason") for th in ths)  # an always-empty column is only noise
    for th in ths:
        ok = bool(th.get("ok"))
        res = '<span class="ok">ok</span>' if ok else '<span class="bad">FAILED</span>'
        extra = " (abort on fail)" if th.get("abort_on_fail") else ""
        rows.append([f"<code>{esc(th.get('metric', ''))}</code>",
                     f"<code>{esc(th.get('expression', ''))}</code>{esc(extra)}",
                     esc(_observed(th)), res, *([esc(th.get("reason") or "")] if reasons
                                                 else [])])
    head = ["metric", "expression", "observed", "result", *(["reason"] if reasons else [])]
    return "<h3>Thresholds</h3>" + _table(head, rows, numeric=[2])


def _sorted_keys(metrics: Mapping[str, Any], kinds: Sequence[str]) -> list[str]:
    keys = [k for k, v in metrics.items() if isinstance(v, Mapping) and v.get("type") in kinds]
    return sorted(keys, key=lambda k: (k.split("{", 1)[0], "{" in k, k))


def _trends(metrics: Mapping[str, Any]) -> str:
    rows = []
    for k in _sorted_keys(metrics, ("trend",)):
        m = metrics[k]
        if not m.get("count"):
            continue
        rows.append([f"<code>{esc(k)}</code>", esc(m.get("count")),
                     *(esc(_ms(m.get(f))) for f in ("avg", "med", "p(95)", "p(99)", "max"))])
    if not rows:
        return ""
    return "<h3>Trends (ms)</h3>" + _table(
        ["metric", "count", "avg", "med", "p95", "p99", "max"], rows, numeric=range(1, 7))


def _others(metrics: Mapping[str, Any]) -> str:
    rows = []
    for k in _sorted_keys(metrics, ("counter", "rate", "gauge")):
        m = metrics[k]
        kind = m["type"]
        if kind == "counter":
            count, rate = finite(m.get("count")) or 0.0, finite(m.get("rate")) or 0.0
            if unit_of(k) == "bytes":
                value, per = format_bytes(count), f"{format_bytes(rate)}/s"
            else:
                value, per = fmt_num(count), f"{fmt_num(rate)}/s"
        elif kind == "rate":
            passes, fails = m.get("passes", 0), m.get("fails", 0)
            if not passes and not fails:
                continue  # declared but never added to (e.g. checks in a test without any)
            value = f"{(finite(m.get('rate')) or 0.0) * 100:.2f}%"
            per = f"{passes} true, {fails} false"
        else:
            value = fmt_num(finite(m.get("value")) or 0.0)
            lo, hi = finite(m.get("min")) or 0.0, finite(m.get("max")) or 0.0
            per = f"min {fmt_num(lo)}, max {fmt_num(hi)}"
        rows.append([f"<code>{esc(k)}</code>", esc(kind), esc(value), esc(per)])
    if not rows:
        return ""
    return "<h3>Counters, rates and gauges</h3>" + _table(
        ["metric", "type", "value", ""], rows, numeric=[2])


def _checks(t: Mapping[str, Any]) -> str:
    checks = t.get("checks") or {}
    if not checks:
        return ""
    rows = []
    for name, c in checks.items():
        passes, fails = int(c.get("passes", 0)), int(c.get("fails", 0))
        total = passes + fails
        pct = 100.0 * passes / total if total else 0.0
        mark = '<span class="ok">✓</span>' if fails == 0 else '<span class="bad">✗</span>'
        rows.append([mark, esc(name), f"{pct:.2f}%", str(passes), str(fails)])
    return "<h3>Checks</h3>" + _table(["", "check", "passed", "passes", "fails"], rows,
                                      numeric=[2, 3, 4])


def _errors(t: Mapping[str, Any]) -> str:
    errors = t.get("errors") or []
    if not errors:
        return ""
    rows = []
    for e in errors:
        example = str(e.get("example") or "")
        first = example.splitlines()[0][:300] if example else ""
        cell = f"<code>{esc(first)}</code>"
        if e.get("traceback"):
            cell += f"<details><summary>traceback</summary><pre>{esc(e['traceback'])}</pre>" \
                    "</details>"
        rows.append([esc(e.get("type", "")), esc(e.get("count", "")), cell])
    return "<h3>Errors</h3>" + _table(["type", "count", "example"], rows, numeric=[1])


def _generator(t: Mapping[str, Any]) -> str:
    g = t.get("generator") or {}
    if not g:
        return ""
    verdict = str(g.get("verdict", ""))
    cls = "ok" if verdict == "ok" else "warn"
    cpu = finite(g.get("cpu"))
    facts = [f"loop {g.get('loop', '?')}", f"Python {g.get('python', '?')}",
             f"CPU {cpu * 100:.0f}%" if cpu is not None else "CPU ?",
             f"event-loop lag p99 {g.get('loop_lag_p99_ms')} ms, max {g.get('loop_lag_max_ms')} ms",
             f"GC pause max {g.get('gc_pause_max_ms')} ms, total {g.get('gc_pause_total_ms')} ms"]
    return (f'<h3>Generator health</h3><p><span class="{cls}">{esc(verdict)}</span><br>'
            f'<span class="muted">{esc("; ".join(facts))}</span></p>')


def _header(t: Mapping[str, Any]) -> str:
    ex = t.get("executor") or {}
    items = [("executor", esc(ex.get("type", "?")))]
    if ex.get("stages"):
        items.append(("stages", esc(_stages(ex))))
    rest = ", ".join(f"{k}={v}" for k, v in ex.items() if k not in ("type", "stages"))
    if rest:
        items.append(("options", esc(rest)))
    items += [("shards", esc(t.get("shards", 1))),
              ("duration", esc(f"{finite(t.get('duration_s')) or 0.0:.1f} s")),
              ("started", esc(t.get("started", ""))), ("finished", esc(t.get("finished", "")))]
    if t.get("aborted"):
        items.append(("aborted", f'<span class="bad">{esc(t["aborted"])}</span>'))
    for w in t.get("warnings") or ():
        items.append(("warning", f'<span class="warn">{esc(w)}</span>'))
    for k in sorted(set(t) - _KNOWN):
        items.append((esc(k), f"<code>{esc(t[k])}</code>"))
    return "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _test_section(i: int, t: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> str:
    metrics = t.get("metrics") or {}
    return "".join([
        f'<section id="test-{i}"><h2>{esc(t.get("nodeid", "?"))} {_outcome(t.get("outcome"))}'
        "</h2>", _header(t), _thresholds(t), "<h3>Over time</h3>",
        timeseries_charts(lines, t.get("thresholds") or (), stage_ends(t.get("executor") or {}),
                          baselines(t)),
        _trends(metrics), _others(metrics), _checks(t), _errors(t), _generator(t), "</section>"])


def _overview(tests: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for i, t in enumerate(tests):
        m = t.get("metrics") or {}
        ths = t.get("thresholds") or []
        ok = sum(1 for x in ths if x.get("ok"))
        th_cell = f"{ok}/{len(ths)}" if ths else "—"
        if ths and ok < len(ths):
            th_cell = f'<span class="bad">{th_cell}</span>'
        # The protocol's own numbers (requests, queries or messages), not iterations'
        proto = protocol(m)
        count, per, trend, fail = proto[:4] if proto else (
            "iterations", "iter", "iteration_duration", "iteration_failed")
        reqs, dur = m.get(count) or {}, m.get(trend) or {}
        rate = finite((m.get(fail) or {}).get("rate"))
        rows.append([f'<a href="#test-{i}">{esc(t.get("nodeid", "?"))}</a>',
                     _outcome(t.get("outcome")),
                     esc(t.get("shards", 1)), esc(f"{finite(t.get('duration_s')) or 0.0:.1f} s"),
                     th_cell, esc(f"{fmt_num(finite(reqs.get('rate')) or 0.0)} {per}/s"),
                     f'<span title="{esc(trend)}">{esc(_ms(dur.get("p(95)")))}</span>',
                     f'<span title="{esc(trend)}">{esc(_ms(dur.get("p(99)")))}</span>',
                     "—" if rate is None else f"{rate * 100:.2f}%"])
    # The executor is in each test's section; here the numbers a reader compares.
    return _table(["test", "outcome", "shards", "duration", "thresholds ok",
                   "rate", "p95 ms", "p99 ms", "failed"], rows,
                  numeric=[2, 3, 5, 6, 7, 8]) + (
        '<p class="muted">rate, p95, p99 and failed are of what each test measured: HTTP '
        "requests (http_req_duration), queries (db_query_duration) or WebSocket messages "
        "(ws_msg_latency); iterations only for a test that measured none of them.</p>")


def render(summary: Mapping[str, Any], timeseries: Iterable[Mapping[str, Any]] = ()) -> str:
    """The whole page for one run: ``summary`` is summary.json's object, ``timeseries`` its
    per-second lines (any order, any tests)."""
    tests: list[Mapping[str, Any]] = list(summary.get("tests") or [])
    per_test: dict[str, list[Mapping[str, Any]]] = {}
    for line in timeseries:
        per_test.setdefault(str(line.get("test", "")), []).append(line)
    machine = summary.get("machine") or {}
    opts = summary.get("options") or {}
    targets = summary.get("targets") or {}
    started = summary.get("started", "")
    meta = [f"started {started}, finished {summary.get('finished', '')}",
            f"machine {machine.get('hostname', '?')} ({machine.get('cpus', '?')} CPUs, "
            f"Python {machine.get('python', '?')})",
            f"scale {opts.get('load_scale')}, duration scale {opts.get('load_duration_scale')}"]
    if targets:
        meta.append("targets " + ", ".join(f"{k}={v}" for k, v in targets.items()))
    body = [f"<h1>Load test results — {esc(started)}</h1>",
            f'<p class="muted">{"<br>".join(esc(m) for m in meta)}</p>', _overview(tests)]
    for i, t in enumerate(tests):
        body.append(_test_section(i, t, per_test.get(str(t.get("nodeid", "")), [])))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Load test results — {esc(started)}</title><style>{STYLE}</style></head>"
            "<body>" + "\n".join(body) + "</body></html>\n")
