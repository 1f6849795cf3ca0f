"""--load-out specs: parsing, every mistake reported at once, outputs built from k6's env knobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_novaload.errors import ConfigError
from pytest_novaload.outputs.config import OutSpec, build_outputs, parse_out_specs, split_env
from pytest_novaload.outputs.jsonout import JsonOutput
from pytest_novaload.outputs.promrw import PrometheusRemoteWrite


def test_specs_parse_like_k6_out() -> None:
    specs = parse_out_specs(split_env(" prometheus-rw=http://127.0.0.1:9090/api/v1/write, "
                                      "json=out.json.gz,,"))
    assert specs == [OutSpec("prometheus-rw", "http://127.0.0.1:9090/api/v1/write"),
                     OutSpec("json", "out.json.gz")]


def test_all_bad_specs_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        parse_out_specs(["influxdb=http://x", "json", "prometheus-rw=localhost:9090",
                         "otlp=127.0.0.1:4318"])
    problems = info.value.problems
    assert len(problems) == 4
    assert "unknown output 'influxdb'" in problems[0] and "prometheus-rw, json" in problems[0]
    assert "expected NAME=TARGET" in problems[1]
    assert "prometheus-rw='localhost:9090'" in problems[2]
    assert "otlp='127.0.0.1:4318': expected the OTLP/HTTP base URL" in problems[3]


def test_outputs_take_k6_env_knobs(tmp_path: Path) -> None:
    outs = build_outputs([OutSpec("prometheus-rw", "http://127.0.0.1:1/api/v1/write"),
                          OutSpec("json", str(tmp_path / "o.json"))],
                         env={"K6_PROMETHEUS_RW_TREND_STATS": "p(95),p(99),min,max",
                              "K6_PROMETHEUS_RW_STALE_MARKERS": "true"})
    prom, js = outs
    assert isinstance(prom, PrometheusRemoteWrite) and isinstance(js, JsonOutput)
    assert prom.trend_stats == ("p(95)", "p(99)", "min", "max") and prom.stale_markers
    for o in outs:
        assert o.close(timeout=2).ok


def test_bad_env_knobs_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="K6_PROMETHEUS_RW_STALE_MARKERS='maybe'"):
        build_outputs([], env={"K6_PROMETHEUS_RW_STALE_MARKERS": "maybe"})
    with pytest.raises(ConfigError, match=r"trend stats 'p\(999\)'"):
        build_outputs([OutSpec("prometheus-rw", "http://127.0.0.1:1/w")],
                      env={"K6_PROMETHEUS_RW_TREND_STATS": "p(999)"})
