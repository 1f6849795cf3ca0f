"""SUMMARY.md: the combined human report of a session's load tests."""

from __future__ import annotations

from typing import Any

from pytest_novaload.metrics.builtins import unit_of
from pytest_novaload.units import format_bytes


def _ms(v: Any) -> str:
    return f"{float(v):.2f}"


def render(summary: dict[str, Any]) -> str:
    """SUMMARY.md from summary.json's dict; a field that is missing is left out, not an error."""
    opts = summary.get("options", {})
    out = [f"# Load test results — {summary.get('started', '')}", "",
           f"Options: scale {opts.get('load_scale')}, duration scale "
           f"{opts.get('load_duration_scale')}. Machine: "
           f"{summary.get('machine', {}).get('hostname', '')} "
           f"({summary.get('machine', {}).get('cpus', '?')} CPUs).", "",
           "| test | outcome | executor | shards | duration | thresholds |",
           "|---|---|---|---|---:|---|"]
    for t in summary.get("tests", []):
        ths = t.get("thresholds", [])
        ok = sum(1 for x in ths if x.get("ok"))
        executor = (t.get("executor") or {}).get("type", "")
        out.append(f"| `{t.get('nodeid', '?')}` | {t.get('outcome', '')} | {executor} | "
                   f"{t.get('shards', 1)} | {t.get('duration_s', 0):.1f}s | {ok}/{len(ths)} ok |")
    for t in summary.get("tests", []):
        out += ["", f"## `{t.get('nodeid', '?')}` — {t.get('outcome', '')}", ""]
        if t.get("aborted"):
            out += [f"**Aborted:** {t['aborted']}", ""]
        if t.get("thresholds"):
            out += ["| metric | threshold | observed | result |", "|---|---|---:|---|"]
            for x in t["thresholds"]:
                obs = x.get("observed")
                obs_s = x.get("display") or ("—" if obs is None else f"{obs:.4g}")
                iv = x.get("interval")
                if isinstance(iv, list) and len(iv) == 2:
                    obs_s += f" [{iv[0]:.4g}, {iv[1]:.4g}]" + (
                        " (marginal)" if x.get("marginal") else "")
                if x.get("detail"):
                    obs_s += f" ({x['detail']})"
                reason = f" — {x['reason']}" if x.get("reason") else ""
                res = "ok" if x.get("ok") else f"**FAILED**{reason}"
                out.append(f"| `{x['metric']}` | `{x['expression']}` | {obs_s} | {res} |")
            out.append("")
        metrics = t.get("metrics", {})
        trends = [k for k in sorted(metrics) if metrics[k].get("type") == "trend"
                  and metrics[k].get("count")]
        if trends:
            out += ["| trend (ms) | count | avg | med | p(95) | p(99) | max |",
                    "|---|---:|---:|---:|---:|---:|---:|"]
            for k in trends:
                m = metrics[k]
                out.append(f"| `{k}` | {m['count']} | {_ms(m['avg'])} | {_ms(m['med'])} | "
                           f"{_ms(m['p(95)'])} | {_ms(m['p(99)'])} | {_ms(m['max'])} |")
            out.append("")
        others = [k for k in sorted(metrics) if metrics[k].get("type") in ("counter", "rate")
                  and "{" not in k]
        if others:
            out += ["| metric | value |", "|---|---|"]
            for k in others:
                m = metrics[k]
                if m["type"] == "counter" and unit_of(k) == "bytes":
                    total, rate = format_bytes(m["count"]), format_bytes(m["rate"])
                    out.append(f"| `{k}` | {total} ({rate}/s) |")
                elif m["type"] == "counter":
                    out.append(f"| `{k}` | {m['count']:g} ({m['rate']:.2f}/s) |")
                else:
                    total = m["passes"] + m["fails"]
                    out.append(f"| `{k}` | {m['rate'] * 100:.2f}% ({m['passes']} out of "
                               f"{total}) |")
            out.append("")
        if t.get("checks"):
            out += ["| check | passed | passes | fails |", "|---|---:|---:|---:|"]
            for name, c in t["checks"].items():
                total = c["passes"] + c["fails"]
                pct = 100.0 * c["passes"] / total if total else 0.0
                mark = "✓" if c["fails"] == 0 else "✗"
                out.append(f"| {mark} {name} | {pct:.2f}% | {c['passes']} | {c['fails']} |")
            out.append("")
        if t.get("start_spread_ms") is not None:
            out += [f"Shards: {t.get('shards')}, start spread {t['start_spread_ms']} ms.", ""]
        if t.get("errors"):
            out += ["| error | count | example |", "|---|---:|---|"]
            for e in t["errors"]:
                ex = str(e.get("example", "")).splitlines()[0][:200] if e.get("example") else ""
                out.append(f"| {e['type']} | {e['count']} | `{ex}` |")
            out.append("")
        g = t.get("generator") or {}
        if g:
            out.append(f"Generator: {g.get('verdict')} (loop {g.get('loop')}, lag p99 "
                       f"{g.get('loop_lag_p99_ms')} ms, CPU {float(g.get('cpu', 0)) * 100:.0f}%).")
    out += _gate_sections(summary)
    return "\n".join(out) + "\n"


def _gate_sections(summary: dict[str, Any]) -> list[str]:
    """The before/after tables (with a baseline) and the plan's Performance Baselines."""
    from pytest_novaload.gate.compare import TestComparison
    from pytest_novaload.gate.report import render_markdown
    from pytest_novaload.gate.seed import render_markdown as seed_markdown

    out: list[str] = []
    comparisons = [TestComparison.from_dict(str(t.get("nodeid", "")), t["comparison"])
                   for t in summary.get("tests", []) if isinstance(t.get("comparison"), dict)]
    if comparisons:
        out += ["", render_markdown(comparisons)]
    seed = seed_markdown(summary)
    if seed:
        out += ["", seed]
    return out
