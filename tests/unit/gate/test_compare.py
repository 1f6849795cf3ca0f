"""Noise-aware verdicts per statistic and per test, marginal thresholds, the tables."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_novaload.gate.baseline import Baseline, baseline_from_summary
from pytest_novaload.gate.compare import (
    change_interval,
    compare_runs,
    compare_test,
    history,
    is_marginal,
    judge_stat,
    marginal_thresholds,
    run_spread,
)
from pytest_novaload.gate.report import render_markdown, render_text, stat_line
from pytest_novaload.gate.rules import parse_default_rules, parse_regressions, parse_rule
from tests.gate.summaries import counter, make_test, rate, summary, trend

NODE = "tests/perf/test_api_load.py::test_api_vm_crud"


def _judge(rule: str, base: dict[str, Any], cur: dict[str, Any]) -> Any:
    return judge_stat(parse_rule(rule), "http_req_duration", cur, base)


def test_pass_regressed_inconclusive() -> None:
    base = trend(100.0)                                    # p95 100 ms [95, 105]
    assert _judge("p(95) +10% >1ms", base, trend(102.0)).verdict == "pass"
    slow = _judge("p(95) +10% >1ms", base, trend(130.0))   # +30%, intervals 5%
    assert slow.verdict == "regressed"
    assert slow.change == pytest.approx(30.0) and slow.relative == pytest.approx(0.30)
    assert slow.change_interval is not None and slow.change_interval[0] > 10.0
    noisy = _judge("p(95) +10% >1ms", trend(100.0, width=0.2), trend(115.0, width=0.2))
    assert noisy.verdict == "inconclusive" and noisy.note == "the change is within the noise"


def test_minimum_absolute_change_protects_tiny_latencies() -> None:
    tiny = _judge("p(95) +10% >1ms", trend(2.0, width=0.001), trend(2.2, width=0.001))
    assert tiny.verdict == "pass" and tiny.allowed == 1.0   # +10% exactly, but 0.2 ms < 1 ms
    bigger = _judge("p(95) +10% >1ms", trend(2.0, width=0.001), trend(3.5, width=0.001))
    assert bigger.verdict == "regressed"


def test_direction_throughput_down_is_bad() -> None:
    rule = parse_rule("rate -10%")
    drop = judge_stat(rule, "http_reqs", counter(80.0), counter(100.0))
    rise = judge_stat(rule, "http_reqs", counter(150.0), counter(100.0))
    assert drop.verdict == "regressed" and rise.verdict == "pass"


def test_unknown_intervals_make_a_broken_rule_inconclusive() -> None:
    s = _judge("p(95) +10%", trend(100.0, width=None), trend(150.0, width=None))
    assert s.verdict == "inconclusive" and "too short" in s.note
    # One side's interval stands in for the other's (same relative width).
    one = _judge("p(95) +10%", trend(100.0, width=None), trend(150.0, width=0.05))
    assert one.verdict == "regressed" and one.baseline_interval is None


def test_zero_baseline_nan_and_missing() -> None:
    zero = judge_stat(parse_rule("rate +0.01"), "http_req_failed", rate(0.05), rate(0.0))
    assert zero.relative is None and zero.verdict == "inconclusive"   # no interval on rates
    nan = _judge("p(95) +10%", trend(100.0), dict(trend(100.0), **{"p(95)": math.nan}))
    assert nan.verdict == "inconclusive" and nan.note == "not a number"
    assert nan.to_dict()["value"] is None
    gone = judge_stat(parse_rule("p(95) +10%"), "x", None, trend(1.0))
    assert gone.verdict == "inconclusive" and gone.note == "not measured in this run"
    fresh = judge_stat(parse_rule("p(95) +10%"), "x", trend(1.0), None)
    assert fresh.note == "not in the baseline"
    wrong = judge_stat(parse_rule("p(95) +10%"), "http_reqs", counter(1.0), counter(1.0))
    assert wrong.verdict == "inconclusive" and "does not apply to a counter" in wrong.note


def test_change_interval_mover() -> None:
    lo, hi = change_interval(130.0, (120.0, 140.0), 100.0, (95.0, 105.0)) or (0, 0)
    assert lo == pytest.approx(30 - math.hypot(10, 5))
    assert hi == pytest.approx(30 + math.hypot(10, 5))
    assert change_interval(1.0, None, 1.0, None) is None
    assert change_interval(1.0, None, 0.0, (0.0, 0.0)) is None


def _base(*tests: dict[str, Any]) -> Baseline:
    data = baseline_from_summary(summary(*tests))
    return Baseline("baseline.json", data["tests"], data["machine"], data["options"])


def test_test_verdicts_and_summary_shape() -> None:
    base = _base(make_test(p95=100.0, rps=100.0))
    results = compare_runs(base, summary(make_test(p95=130.0, rps=100.0),
                                         make_test("new.py::t")))
    reg, new = results
    assert reg.verdict == "regressed" and new.verdict == "new"
    d = reg.to_dict()
    assert d["baseline"] == "baseline.json" and d["verdict"] == "regressed"
    by = {(s["metric"], s["stat"]): s for s in d["stats"]}
    assert set(by) == {("http_req_duration", "p(95)"), ("http_req_duration", "p(99)"),
                       ("http_reqs", "rate")}
    p95 = by[("http_req_duration", "p(95)")]
    assert (p95["baseline"], p95["value"], p95["change"], p95["verdict"]) == (
        100.0, 130.0, 30.0, "regressed")
    assert p95["interval"] == [123.5, 136.5]
    assert by[("http_reqs", "rate")]["verdict"] == "pass"
    msg = reg.failure_message()
    assert "regressed for " + NODE in msg and "http_req_duration p(95) 130 ms" in msg
    assert compare_runs(base, summary(make_test(p95=101.0)))[0].verdict == "pass"


def test_marker_rules_and_session_default() -> None:
    base = _base(make_test(p95=100.0))
    cur = make_test(p95=130.0, regressions={"http_reqs": ["rate -10%"]})
    only = compare_runs(base, summary(cur))[0]
    assert [s.metric for s in only.stats] == ["http_reqs"] and only.verdict == "pass"
    loose = parse_default_rules("trend=p(95) +50%")
    assert compare_runs(base, summary(make_test(p95=130.0)), default=loose)[0].verdict == "pass"
    explicit = compare_test(make_test(p95=130.0), base.entry(NODE), baseline_path="b",
                            rules=parse_regressions({"http_req_duration": "p(95) +40%"}))
    assert explicit.verdict == "pass"


def test_incomparable_test() -> None:
    base = _base(make_test())
    cur = make_test(executor={"type": "constant-vus", "vus": 10, "duration": "60s"})
    c = compare_runs(base, summary(cur))[0]
    assert c.verdict == "incomparable" and c.stats == [] and "another executor" in c.reason
    assert c.to_dict()["reason"].startswith("another executor")


def test_marginal_thresholds() -> None:
    assert is_marginal("<", 500.0, (480.0, 520.0))
    assert not is_marginal("<", 500.0, (400.0, 480.0))
    assert not is_marginal("==", 500.0, (480.0, 520.0))
    assert not is_marginal("<", 500.0, None)
    t = make_test(p95=490.0)                      # ci95 [465.5, 514.5] straddles 500
    items = marginal_thresholds(t)
    assert items[0]["marginal"] and items[0]["ok"] and items[0]["interval"] == [465.5, 514.5]
    assert items[1]["marginal"] is False and items[1]["interval"] is None
    assert marginal_thresholds(t, marginal_fails=True)[0]["ok"] is False


def test_text_and_markdown_tables() -> None:
    base = _base(make_test(p95=100.0))
    results = compare_runs(base, summary(make_test(p95=130.0), make_test("n.py::t")))
    text = render_text(results)
    assert "comparison with baseline.json" in text
    assert f"{NODE}  REGRESSED" in text and "n.py::t  new" in text
    assert "http_req_duration p(95)" in text and "130 ms [124, 136]" in text
    assert "+30 ms (+30.0%)" in text and "1 regressed, 1 new" in text
    md = render_markdown(results)
    assert f"### `{NODE}` — **REGRESSED**" in md
    assert "| http_req_duration p(95) | 100 ms [95, 105] | 130 ms [124, 136] | +30 ms (+30.0%) |" \
        " **REGRESSED** |" in md
    assert render_text([]) == "no load test to compare\n" and render_markdown([]) == ""
    line = stat_line(results[0].stats[0])
    assert line.startswith("http_req_duration p(95) 130 ms [124, 136] vs 100 ms [95, 105]")


def _entry_with_runs(values: list[float], latest: float) -> dict[str, Any]:
    entry = baseline_from_summary(summary(make_test(p95=latest, width=0.01)))["tests"][NODE]
    entry["runs"] = [{"started": "", "values": {"http_req_duration": {"p(95)": v}}}
                     for v in values]
    return entry


def test_run_spread_needs_three_runs() -> None:
    assert run_spread([100.0, 110.0]) is None
    mean, half = run_spread([100.0, 110.0, 90.0]) or (0.0, 0.0)
    assert mean == pytest.approx(100.0)
    assert half == pytest.approx(4.303 * 10.0 * math.sqrt(1 + 1 / 3), rel=1e-3)
    assert history({"runs": [{"values": {"k": {"p(95)": 1.0}}}, {"values": {}},
                             {"values": {"k": {"p(95)": math.nan}}}]}, "k", "p(95)") == [1.0]


def test_baseline_runs_spread_widens_the_change_interval() -> None:
    rule = parse_rule("p(95) +10% >1ms")
    steady = _entry_with_runs([100.0, 100.5, 99.5, 100.2], 99.8)
    noisy = _entry_with_runs([90.0, 112.0, 95.0, 108.0], 95.0)     # runs spread ~10%
    cur = trend(118.0, width=0.01)        # +18%, tight within-run intervals on both sides
    tight = judge_stat(rule, "http_req_duration", cur, steady["metrics"]["http_req_duration"],
                       earlier=history(steady, "http_req_duration", "p(95)"))
    assert tight.verdict == "regressed" and tight.baseline_runs == 5
    assert tight.baseline == pytest.approx(100.0)
    wide = judge_stat(rule, "http_req_duration", cur, noisy["metrics"]["http_req_duration"],
                      earlier=history(noisy, "http_req_duration", "p(95)"))
    assert wide.verdict == "inconclusive" and wide.baseline == pytest.approx(100.0)
    assert wide.change_interval is not None and wide.change_interval[0] < 10.0
    alone = judge_stat(rule, "http_req_duration", cur, noisy["metrics"]["http_req_duration"])
    assert alone.verdict == "regressed" and alone.baseline == 95.0   # one run: no spread
    far = judge_stat(rule, "http_req_duration", trend(160.0, width=0.01),
                     noisy["metrics"]["http_req_duration"],
                     earlier=history(noisy, "http_req_duration", "p(95)"))
    assert far.verdict == "regressed"
    assert far.to_dict()["baseline_runs"] == 5
    assert "(mean of 5 runs)" in stat_line(far)


def test_compare_test_reads_the_entry_history() -> None:
    noisy = _entry_with_runs([90.0, 112.0, 95.0, 108.0], 95.0)
    c = compare_test(make_test(p95=118.0, width=0.01), noisy, baseline_path="b.json",
                     rules={"http_req_duration": (parse_rule("p(95) +10% >1ms"),)})
    assert c.verdict == "inconclusive" and c.stats[0].baseline_runs == 5
    assert "mean of 5 runs" in render_text([c]) and "mean of 5 runs" in render_markdown([c])
