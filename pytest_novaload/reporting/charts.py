"""Inline SVG line charts of a run's time series, for report.html (no scripts, no library).

``line_chart`` draws named series of (x, y) points; ``timeseries_charts`` picks the four
charts of a test (throughput, latency, errors, VUs) from its ``timeseries.ndjson`` lines.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import groupby
from typing import Any

__all__ = ["CHART_H", "CHART_W", "Points", "esc", "finite", "fmt_num", "line_chart",
           "timeseries_charts"]

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

def line_chart(title: str, series: Mapping[str, Points], *, unit: str = "") -> str:
    """An inline SVG line chart: one polyline per named series of (x, y) points, axes with
    min/max labels, a title and a legend giving each series' min and max.

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
    if ymax <= ymin:
        ymax = ymin + 1.0
    xspan = xmax - xmin

    def sx(x: float) -> float:
        return (x0 + x1) / 2 if xspan == 0 else x0 + (x - xmin) / xspan * (x1 - x0)

    def sy(y: float) -> float:
        return y1 - (y - ymin) / (ymax - ymin) * (y1 - y0)

    suffix = f" {unit}" if unit else ""
    out += [f'<line x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}" stroke="#9ca3af"/>',
            f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#9ca3af"/>',
            f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#f3f4f6"/>',
            f'<text x="{x0 - 4}" y="{y0 + 4}" text-anchor="end" font-size="11">'
            f'{esc(fmt_num(ymax))}</text>',
            f'<text x="{x0 - 4}" y="{y1}" text-anchor="end" font-size="11">'
            f'{esc(fmt_num(ymin))}</text>',
            f'<text x="{x0}" y="{y1 + 16}" font-size="11">{esc(fmt_num(xmin))} s</text>',
            f'<text x="{x1}" y="{y1 + 16}" text-anchor="end" font-size="11">'
            f'{esc(fmt_num(xmax))} s</text>']
    legend: list[str] = []
    for i, (name, pts) in enumerate(clean.items()):
        colour = COLOURS[i % len(COLOURS)]
        if pts:
            lo, hi = min(p[1] for p in pts), max(p[1] for p in pts)
            label = f"{name} (min {fmt_num(lo)}, max {fmt_num(hi)}{suffix})"
            coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in
                              _thin([(sx(x), sy(y)) for x, y in sorted(pts)]))
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
                       f'points="{coords}"/>')
            if len(pts) == 1:
                x, y = pts[0]
                out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
        else:
            label = f"{name} (no data)"
        gap = ' dx="12"' if legend else ""
        legend.append(f'<tspan{gap} fill="{colour}">{esc(label)}</tspan>')
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


def timeseries_charts(lines: Sequence[Mapping[str, Any]]) -> str:
    """The charts of one test from its time-series lines: requests (or iterations) per
    second, latency p95/avg, errors per second and active VUs."""
    by = _by_metric(lines)
    t0 = min((t for rows in by.values() for t in rows), default=0)
    empty: dict[int, Mapping[str, Any]] = {}
    charts = []
    if "http_reqs" in by:
        charts.append(line_chart("Requests per second",
                                 {"requests/s": _points(by["http_reqs"], "rate", t0)}))
    else:
        charts.append(line_chart("Iterations per second",
                                 {"iterations/s": _points(by.get("iterations", empty), "rate",
                                                          t0)}))
    dur = "http_req_duration" if "http_req_duration" in by else "iteration_duration"
    rows = by.get(dur, empty)
    charts.append(line_chart(f"{dur} (ms)", {"p95": _points(rows, "p(95)", t0),
                                             "avg": _points(rows, "avg", t0)}, unit="ms"))
    errors: dict[str, Points] = {}
    if "http_req_duration" in by:
        errors["HTTP errors"] = _points(by["http_req_duration"], "errors", t0)
    errors["failed iterations"] = _points(by.get("iteration_failed", empty), "passes", t0)
    charts.append(line_chart("Errors per second", errors))
    charts.append(line_chart("Active VUs", {"vus": _points(by.get("vus", empty), "value", t0)}))
    return '<div class="charts">' + "".join(charts) + "</div>"
