"""The before/after table of a comparison: terminal text and markdown."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_novaload.gate.compare import StatComparison, TestComparison
from pytest_novaload.gate.values import format_interval, format_value

__all__ = ["render_markdown", "render_text", "stat_line"]

_MARK = {"pass": "pass", "regressed": "REGRESSED", "inconclusive": "inconclusive",
         "new": "new", "incomparable": "incomparable"}


def _change(s: StatComparison) -> str:
    change = s.change
    if change is None:
        return "-"
    rel = s.relative
    unit = s.unit
    if unit == "%":
        text = f"{change * 100:+.2f} pp"
    elif unit == "/s":
        text = f"{change:+.1f}/s"
    else:
        text = format_value(change, unit)
        text = text if text.startswith(("-", "nan")) else "+" + text
    return f"{text} ({rel * 100:+.1f}%)" if rel is not None else text


def _value(s: StatComparison) -> str:
    text = format_value(s.value, s.unit)
    iv = format_interval(s.interval, s.unit)
    return f"{text} {iv}" if iv else text


def _baseline(s: StatComparison) -> str:
    text = format_value(s.baseline, s.unit)
    iv = format_interval(s.baseline_interval, s.unit)
    text = f"{text} {iv}" if iv else text
    return f"{text} (mean of {s.baseline_runs} runs)" if s.baseline_runs > 1 else text


def stat_line(s: StatComparison) -> str:
    """``http_req_duration p(95) 212 ms [198, 231] vs 180 ms: +32 ms (+17.8%) REGRESSED``."""
    note = f" ({s.note})" if s.note else ""
    return (f"{s.metric} {s.stat} {_value(s)} vs {_baseline(s)}: {_change(s)}  "
            f"{_MARK[s.verdict]} [rule {s.rule}]{note}")


def _rows(c: TestComparison) -> list[list[str]]:
    return [[f"{s.metric} {s.stat}", _baseline(s), _value(s), _change(s), _MARK[s.verdict]
             + (f" ({s.note})" if s.note else "")] for s in c.stats]


def _head(c: TestComparison) -> str:
    reason = f": {c.reason}" if c.reason else ""
    return f"{c.nodeid}  {_MARK[c.verdict]}{reason}"


_COLUMNS = ["statistic", "baseline", "value [95% interval]", "change", "verdict"]


def render_text(comparisons: Sequence[TestComparison]) -> str:
    """The terminal before/after table, one block per test."""
    if not comparisons:
        return "no load test to compare\n"
    out = [f"comparison with {comparisons[0].baseline}"]
    for c in comparisons:
        out += ["", _head(c)]
        rows = _rows(c)
        if rows:
            widths = [max(len(r[i]) for r in [_COLUMNS, *rows]) for i in range(4)]
            for r in [_COLUMNS, *rows]:
                cells = [r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].rjust(widths[2]),
                         r[3].rjust(widths[3]), r[4]]
                out.append("  " + "  ".join(cells).rstrip())
        out += [f"  warning: {w}" for w in c.warnings]
    counts = {v: sum(1 for c in comparisons if c.verdict == v) for v in _MARK}
    out += ["", ", ".join(f"{n} {v}" for v, n in counts.items() if n)]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(comparisons: Sequence[TestComparison]) -> str:
    """The before/after table in markdown (SUMMARY.md, $GITHUB_STEP_SUMMARY)."""
    if not comparisons:
        return ""
    out = ["## Comparison with the baseline", "", f"Baseline: `{comparisons[0].baseline}`", ""]
    for c in comparisons:
        verdict = f"**{_MARK[c.verdict]}**" if c.verdict == "regressed" else _MARK[c.verdict]
        reason = f": {_md(c.reason)}" if c.reason else ""
        out += [f"### `{c.nodeid}` — {verdict}{reason}", ""]
        rows = _rows(c)
        if rows:
            out += ["| " + " | ".join(_COLUMNS) + " |", "|---|---:|---:|---:|---|"]
            for r in rows:
                r[4] = f"**{r[4]}**" if r[4].startswith("REGRESSED") else r[4]
                out.append("| " + " | ".join(_md(x) for x in r) + " |")
            out.append("")
        out += [f"> warning: {_md(w)}" for w in c.warnings]
        if c.warnings:
            out.append("")
    return "\n".join(out)
