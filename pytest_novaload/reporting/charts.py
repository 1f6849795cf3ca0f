"""Inline SVG line charts of a run's time series, for report.html (no scripts, no library).

``line_chart`` draws named series of (x, y) points; ``timeseries_charts`` picks the four
charts of a test (throughput, latency, errors, VUs) from its ``timeseries.ndjson`` lines.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import groupby
from typing import Any

__all__ = ["CHART_H", "CHART_W", "PROTOCOLS", "Points", "esc", "finite", "fmt_num", "line_chart",
           "protocol", "threshold_limits", "timeseries_charts"]

Points = Sequence[tuple[float, float]]

CHART_W, CHART_H = 460, 210
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 56, 12, 40, 26
COLOURS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed")


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt_num(v: float) -> str:
    """A compact number: 4 significant digits, no exponent for everyday magnitudes."""
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    if a >= 1:
        return f"{v:.2f}".rstrip("0").rstrip(".")
    return f"{v:.3g}"


def finite(v: Any) -> float | None:
    """``v`` as a finite float, or None (missing, null, NaN, not a number)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    x = float(v)
    return x if math.isfinite(x) else None


# -- charts --------------------------------------------------------------------------------------

def line_chart(title: str, series: Mapping[str, Points], *, unit: str = "",
               limits: Sequence[tuple[str, float]] = (),
               stages: Sequence[float] = (),
               dashed: frozenset[str] = frozenset()) -> str:
    """An inline SVG line chart: one polyline per named series of (x, y) points, axes with
    min/mid/max labels and ``unit`` along the y axis, a title and a legend giving each
    series' range (min–max).

    ``limits`` are (label, y) threshold limits drawn as dashed red lines (the axis stretches
    to a limit up to 1.5x the data's maximum; a higher one is named "off scale" under the x
    axis); ``stages`` are x positions (seconds) of stage boundaries, drawn as dotted lines.
    The y axis starts at 0 (or below it, for negative data). Points that are not finite are
    dropped; an empty chart says "no data"; a single point is drawn as a dot.
    """
    clean = {name: [(float(x), float(y)) for x, y in pts
                    if math.isfinite(x) and math.isfinite(y)]
             for name, pts in series.items()}
    w, h = CHART_W, CHART_H
    x0, x1, y0, y1 = _PAD_L, w - _PAD_R, _PAD_T, h - _PAD_B
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}" role="img" aria-label="{esc(title)}">',
           f'<text x="8" y="16" font-size="13" font-weight="600">{esc(title)}</text>']
    every = [p for pts in clean.values() for p in pts]
    if not every:
        out.append(f'<text x="{w / 2:.0f}" y="{h / 2:.0f}" text-anchor="middle" '
                   'fill="#9ca3af">no data</text></svg>')
        return "".join(out)
    xmin, xmax = min(p[0] for p in every), max(p[0] for p in every)
    ymin, ymax = min(0.0, *(p[1] for p in every)), max(p[1] for p in every)
    drawn = [(label, y) for label, y in limits if math.isfinite(y) and ymin <= y <= 1.5 * ymax]
    ymax = max([ymax, *(y for _, y in drawn)])
    if ymax <= ymin:
        ymax = ymin + 1.0
    xspan = xmax - xmin

    def sx(x: float) -> float:
        return (x0 + x1) / 2 if xspan == 0 else x0 + (x - xmin) / xspan * (x1 - x0)

    def sy(y: float) -> float:
        return y1 - (y - ymin) / (ymax - ymin) * (y1 - y0)

    out += [f'<line x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}" stroke="#9ca3af"/>',
            f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#9ca3af"/>',
            f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#f3f4f6"/>',
            f'<text x="{x0 - 4}" y="{y0 + 4}" text-anchor="end" font-size="11">'
            f'{esc(fmt_num(ymax))}</text>',
            f'<text transform="translate(12 {(y0 + y1) / 2:.0f}) rotate(-90)" '
            f'text-anchor="middle" font-size="10" fill="#6b7280">{esc(unit)}</text>',
            f'<line x1="{x0}" y1="{sy((ymin + ymax) / 2):.1f}" x2="{x1}" '
            f'y2="{sy((ymin + ymax) / 2):.1f}" stroke="#f3f4f6"/>',
            f'<text x="{x0 - 4}" y="{sy((ymin + ymax) / 2) + 4:.1f}" text-anchor="end" '
            f'font-size="11">{esc(fmt_num((ymin + ymax) / 2))}</text>',
            f'<text x="{x0 - 4}" y="{y1}" text-anchor="end" font-size="11">'
            f'{esc(fmt_num(ymin))}</text>',
            f'<text x="{x0}" y="{y1 + 16}" font-size="11">{esc(fmt_num(xmin))} s</text>',
            f'<text x="{x1}" y="{y1 + 16}" text-anchor="end" font-size="11">'
            f'{esc(fmt_num(xmax))} s</text>']
    for n, x in enumerate(stages, start=1):
        if xmin < x < xmax:
            out.append(f'<line x1="{sx(x):.1f}" y1="{y0}" x2="{sx(x):.1f}" y2="{y1}" '
                       'stroke="#9ca3af" stroke-dasharray="2 3"/>'
                       f'<text x="{sx(x) + 3:.1f}" y="{y0 + 10}" font-size="9" '
                       f'fill="#6b7280">stage {n + 1}</text>')
    for label, y in drawn:
        out.append(f'<line x1="{x0}" y1="{sy(y):.1f}" x2="{x1}" y2="{sy(y):.1f}" '
                   f'stroke="#b91c1c" stroke-dasharray="5 3"/><text x="{x1 - 2}" '
                   f'y="{sy(y) + (11 if sy(y) < y0 + 12 else -3):.1f}" text-anchor="end" '
                   f'font-size="10" fill="#b91c1c">{esc(label)}</text>')
    legend: list[str] = []
    for i, (name, pts) in enumerate(clean.items()):
        colour = COLOURS[i % len(COLOURS)]
        if pts:
            lo, hi = min(p[1] for p in pts), max(p[1] for p in pts)
            label = f"{name} {fmt_num(lo)}–{fmt_num(hi)}"
            coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in
                              _thin([(sx(x), sy(y)) for x, y in sorted(pts)]))
            dash = ' stroke-dasharray="6 4"' if name in dashed else ""
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6"{dash} '
                       f'points="{coords}"/>')
            if len(pts) == 1:
                x, y = pts[0]
                out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
        else:
            label = f"{name} (no data)"
        gap = ' dx="12"' if legend else ""
        legend.append(f'<tspan{gap} fill="{colour}">{esc(label)}</tspan>')
    above = [label for label, y in limits if (label, y) not in drawn and math.isfinite(y)]
    if above:   # under the x axis, between its end labels: the legend stays one line
        out.append(f'<text x="{(x0 + x1) / 2:.0f}" y="{y1 + 16}" text-anchor="middle" '
                   f'font-size="10" fill="#b91c1c">{esc("off scale: " + ", ".join(above))}'
                   '</text>')
    # tspans flow one after the other, so labels never overlap whatever their length
    out.append(f'<text x="8" y="32" font-size="11">{"".join(legend)}</text></svg>')
    return "".join(out)


def _thin(coords: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """At most the lowest and highest point per pixel column, in order: an hour-long run
    stays a few kB per line and keeps its spikes."""
    if len(coords) <= 2 * (CHART_W - _PAD_L - _PAD_R):
        return coords
    out: list[tuple[float, float]] = []
    for _, group in groupby(coords, key=lambda c: int(c[0])):
        column = list(group)
        lo, hi = min(column, key=lambda c: c[1]), max(column, key=lambda c: c[1])
        out += sorted({lo, hi})
    return out


def _by_metric(lines: Iterable[Mapping[str, Any]]) -> dict[str, dict[int, Mapping[str, Any]]]:
    """metric key -> unix second -> line (a later line for the same second replaces it)."""
    out: dict[str, dict[int, Mapping[str, Any]]] = {}
    for line in lines:
        t = finite(line.get("t"))
        if t is None:
            continue
        out.setdefault(str(line.get("metric", "")), {})[int(t)] = line
    return out


def _points(rows: Mapping[int, Mapping[str, Any]], field: str,
            t0: int) -> list[tuple[float, float]]:
    pts = []
    for t in sorted(rows):
        y = finite(rows[t].get(field))
        if y is not None:
            pts.append((float(t - t0), y))
    return pts


# (counter, its unit, latency trend, failure rate, what one is): the first the test used
PROTOCOLS = (
    ("http_reqs", "req", "http_req_duration", "http_req_failed", "HTTP request"),
    ("db_queries", "query", "db_query_duration", "db_query_failed", "query"),
    ("ws_msgs_received", "msg", "ws_msg_latency", "ws_failed", "WebSocket message"),
)
_LIMIT = re.compile(r"^\s*(avg|min|max|med|p\(\s*[\d.]+\s*\)|rate|count|value)\s*"
                    r"(<=|<|>=|>|===|==|!=)\s*(-?[\d.]+(?:e[-+]?\d+)?)\s*$")


def protocol(metrics: Iterable[str]) -> tuple[str, str, str, str, str] | None:
    """The entry of PROTOCOLS for what the test measured (HTTP, then queries, then
    WebSocket messages), or None when it only ran iterations."""
    present = set(metrics)
    return next((p for p in PROTOCOLS if p[0] in present), None)


def threshold_limits(thresholds: Iterable[Mapping[str, Any]], metric: str,
                     stats: Iterable[str]) -> list[tuple[str, float]]:
    """(label, limit) of the thresholds on ``metric`` (untagged) whose aggregation is one of
    ``stats``: "p(95)<500" -> ("p(95)<500", 500.0)."""
    wanted = {st.replace(" ", "") for st in stats}
    out = []
    for th in thresholds:
        if not isinstance(th, Mapping) or th.get("metric") != metric:
            continue
        m = _LIMIT.match(str(th.get("expression", "")))
        if m and m.group(1).replace(" ", "") in wanted:
            out.append((m.group(0).strip(), float(m.group(3))))
    return out


def baselines(test: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """(metric, stat) -> the baseline's value, from a test's summary.json comparison."""
    comparison = test.get("comparison")
    out: dict[tuple[str, str], float] = {}
    if isinstance(comparison, Mapping):
        for s in comparison.get("stats") or ():
            value = finite(s.get("baseline")) if isinstance(s, Mapping) else None
            if value is not None:
                out[(str(s.get("metric")), str(s.get("stat")))] = value
    return out


def _flat(points: Points, value: float | None) -> dict[str, Points]:
    """A baseline drawn as a horizontal line across ``points``' time span."""
    xs = [x for x, _ in points]
    if value is None or not xs:
        return {}
    return {"baseline": [(min(xs), value), (max(xs), value)]}


def timeseries_charts(lines: Sequence[Mapping[str, Any]],
                      thresholds: Sequence[Mapping[str, Any]] = (),
                      stage_ends: Sequence[float] = (),
                      baseline: Mapping[tuple[str, str], float] | None = None) -> str:
    """The charts of one test from its time-series lines: requests, queries or messages (or
    iterations) per second, that latency's p95/p99/avg, errors per second and active VUs;
    each with the stage boundaries (``stage_ends``, seconds from the start) and, where a
    threshold limits what the chart shows, its limit; with a ``baseline`` (the comparison's)
    its throughput and p(95) as dashed lines."""
    base = baseline or {}
    dashed = frozenset({"baseline"})
    by = _by_metric(lines)
    t0 = min((t for rows in by.values() for t in rows), default=0)
    empty: dict[int, Mapping[str, Any]] = {}
    stages = list(stage_ends)[:-1]   # the last one is the end of the run
    proto = protocol(by)
    count, per = (proto[0], proto[1]) if proto else ("iterations", "iter")
    title = {"req": "Requests", "query": "Queries", "msg": "WebSocket messages received",
             "iter": "Iterations"}[per]
    rate = _points(by.get(count, empty), "rate", t0)
    charts = [line_chart(f"{title} per second",
                         {f"{per}/s": rate, **_flat(rate, base.get((count, "rate")))},
                         unit=f"{per}/s", stages=stages, dashed=dashed,
                         limits=threshold_limits(thresholds, count, ["rate"]))]
    dur = proto[2] if proto and proto[2] in by else "iteration_duration"
    rows = by.get(dur, empty)
    stats = ("p(95)", "p(99)", "avg")
    series = {st.replace("(", "").replace(")", ""): _points(rows, st, t0) for st in stats}
    charts.append(line_chart(f"{dur} (ms)",
                             {**series, **_flat(series["p95"], base.get((dur, "p(95)")))},
                             unit="ms", stages=stages, dashed=dashed,
                             limits=threshold_limits(thresholds, dur,
                                                     [*stats, "med", "max", "min"])))
    errors: dict[str, Points] = {}
    if proto and proto[2] in by:
        errors[f"failed {proto[4]}s"] = _points(by[proto[2]], "errors", t0)
    errors["failed iterations"] = _points(by.get("iteration_failed", empty), "passes", t0)
    charts.append(line_chart("Errors per second", errors, unit="errors/s", stages=stages))
    charts.append(line_chart("Active VUs", {"vus": _points(by.get("vus", empty), "value", t0)},
                             unit="VUs", stages=stages))
    return '<div class="charts">' + "".join(charts) + "</div>"
