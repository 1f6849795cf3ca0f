"""SVG line charts of report.html: empty, single, flat, NaN and long series."""

from __future__ import annotations

import pytest

from pytest_novaload.reporting import charts
from tests.unit.reporting.strict_html import parse


@pytest.mark.parametrize("points", [[], [(0.0, 5.0)], [(0.0, 1.0), (1.0, 1.0)],
                                    [(3.0, float("nan")), (4.0, 2.0)]])
def test_line_chart_handles_empty_single_flat_and_nan(points: list[tuple[float, float]]) -> None:
    svg = charts.line_chart("t <1>", {"s": points}, unit="ms")
    p = parse(svg)
    assert "t &lt;1&gt;" in svg
    finite = [pt for pt in points if pt[1] == pt[1]]
    polys = [a for tag, a in p.tags if tag == "polyline"]
    if not finite:
        assert not polys and "no data" in "".join(p.text)
        return
    (poly,) = polys
    coords = [tuple(map(float, c.split(","))) for c in (poly["points"] or "").split()]
    assert len(coords) == len(finite)
    assert all(0 <= x <= charts.CHART_W and 0 <= y <= charts.CHART_H for x, y in coords)
    if len(finite) == 1:
        assert any(tag == "circle" for tag, _ in p.tags)
    labels = "".join(p.text)
    ys = [y for _, y in finite]
    # The legend gives the series' range; the unit is the y axis' label.
    assert f"s {charts.fmt_num(min(ys))}–{charts.fmt_num(max(ys))}" in labels
    assert "ms" in p.text


def test_line_chart_scales_the_highest_point_to_the_top() -> None:
    p = parse(charts.line_chart("x", {"a": [(0, 0), (5, 10)], "b": [(0, 5), (5, 2)]}))
    polys = [a["points"] or "" for tag, a in p.tags if tag == "polyline"]
    ys = [float(c.split(",")[1]) for pts in polys for c in pts.split()]
    xs = [float(c.split(",")[0]) for pts in polys for c in pts.split()]
    assert min(ys) < max(ys)
    assert ys[1] == min(ys)                  # (5, 10) is the top of the plot
    assert xs[0] < xs[1]
    assert "0 s" in "".join(p.text) and "5 s" in "".join(p.text)


def test_a_long_series_is_thinned_but_keeps_its_spike() -> None:
    points = [(float(i), 100.0) for i in range(20_000)]
    points[12_345] = (12_345.0, 500.0)
    points[5_000] = (5_000.0, 0.0)
    p = parse(charts.line_chart("long", {"s": points}))
    (poly,) = [a["points"] or "" for tag, a in p.tags if tag == "polyline"]
    coords = [tuple(map(float, c.split(","))) for c in poly.split()]
    assert len(coords) <= 2 * charts.CHART_W
    assert min(y for _, y in coords) == pytest.approx(charts._PAD_T)  # the spike, at the top
    assert max(y for _, y in coords) == pytest.approx(charts.CHART_H - charts._PAD_B)  # the dip
    assert [x for x, _ in coords] == sorted(x for x, _ in coords)


def test_limits_and_stage_boundaries_are_drawn() -> None:
    svg = charts.line_chart("lat", {"p95": [(0, 10.0), (10, 40.0)]}, unit="ms",
                            limits=[("p(95)<50", 50.0), ("p(99)<1000", 1000.0)],
                            stages=[3.0, 7.0, 12.0])
    p = parse(svg)
    text = "".join(p.text)
    dashed = [a for tag, a in p.tags if tag == "line" and a.get("stroke") == "#b91c1c"]
    assert len(dashed) == 1 and "p(95)<50" in text            # within 1.5x: on the chart
    assert float(dashed[0]["y1"] or 0) == 40.0                   # and the axis' top is 50
    assert "off scale: p(99)<1000" in text                       # far above: named only
    assert text.count("stage ") == 2 and "stage 2" in text and "stage 3" in text  # 12 > end


def test_threshold_limits_pick_the_charted_metric_and_stats() -> None:
    ths = [{"metric": "http_req_duration", "expression": "p(95)<500"},
           {"metric": "http_req_duration", "expression": "p(99) <= 1e3"},
           {"metric": "http_req_duration{name:x}", "expression": "p(95)<10"},
           {"metric": "http_req_failed", "expression": "rate<0.01"},
           {"metric": "http_req_duration", "expression": "count>5"}]
    assert charts.threshold_limits(ths, "http_req_duration", ["p(95)", "p(99)"]) == [
        ("p(95)<500", 500.0), ("p(99) <= 1e3", 1000.0)]
    assert charts.threshold_limits(ths, "http_reqs", ["rate"]) == []
