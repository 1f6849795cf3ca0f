"""k6 JSON output: our lines have the shape of k6 1.1.0's own ``--out json`` lines."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_novaload.errors import ConfigError
from pytest_novaload.outputs.jsonout import JsonOutput, format_time

K6_SAMPLE = Path(__file__).parents[2] / "outputs" / "data" / "k6-1.1.0-out.json"


def _k6_lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in K6_SAMPLE.read_text().splitlines()]


def _shape(obj: Any) -> Any:
    """Keys in order with the JSON types of their values (recursively for objects)."""
    if isinstance(obj, dict):
        return [(k, _shape(v)) for k, v in obj.items()]
    if isinstance(obj, bool) or obj is None:
        return repr(obj)
    if isinstance(obj, (int, float)):
        return "number"
    return type(obj).__name__


def _write(path: Path) -> list[dict[str, Any]]:
    out = JsonOutput(path, batch=3)
    out.set_test("tests/perf/test_api.py::test_vm_crud")
    out.declare("http_req_duration", "trend", ["p(95)<500"])
    tags = (("expected_response", "true"), ("method", "GET"), ("name", "/vms"),
            ("status", "200"))
    t = 1_764_586_674.353414
    for i in range(4):
        out.sample("http_req_duration", "trend", 1.25 + i, tags, t + i)
        out.sample("http_reqs", "counter", 1, tags, t + i)
        out.sample("http_req_failed", "rate", False, tags, t + i)
        out.sample("data_received", "counter", 233.0, (), t + i)
    out.sample("vus", "gauge", 2.0, (), t)
    out.set_test("")
    out.sample("checks", "rate", True, (("check", "status is 200"),), t)
    report = out.close()
    assert report.ok and report.sent == 18, report.line()
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.mark.parametrize("name", ["out.json", "out.json.gz"])
def test_lines_match_k6s_shapes(tmp_path: Path, name: str) -> None:
    ours = _write(tmp_path / name)
    k6 = _k6_lines()
    k6_metric = next(d for d in k6 if d["type"] == "Metric" and d["metric"] == "http_reqs")
    k6_point = next(d for d in k6 if d["type"] == "Point" and d["metric"] == "http_reqs")
    metrics = [d for d in ours if d["type"] == "Metric"]
    points = [d for d in ours if d["type"] == "Point"]
    assert len(points) == 18
    assert {_json_shape(d) for d in metrics} == {_json_shape(k6_metric)}
    for d in points:
        assert _shape(d)[:2] == _shape(k6_point)[:2]  # "metric", "type" first, as k6 writes
        assert [k for k, _ in _shape(d["data"])] == ["time", "value", "tags"]
    # k6's declarations: the same "type"/"contains" k6 gives its own built-ins
    k6_decl = {d["metric"]: d["data"] for d in k6 if d["type"] == "Metric"}
    for d in metrics:
        name_ = d["metric"]
        assert d["data"]["name"] == name_
        if name_ in k6_decl:
            assert (d["data"]["type"], d["data"]["contains"]) == (
                k6_decl[name_]["type"], k6_decl[name_]["contains"]), name_


def _json_shape(d: dict[str, Any]) -> str:
    return json.dumps(_shape(d))


def test_declaration_comes_before_the_first_point(tmp_path: Path) -> None:
    lines = _write(tmp_path / "out.json")
    seen: set[str] = set()
    for d in lines:
        if d["type"] == "Metric":
            assert d["metric"] not in seen
            seen.add(d["metric"])
        else:
            assert d["metric"] in seen, f"Point of {d['metric']} before its Metric line"
    decl = next(d for d in lines if d["metric"] == "http_req_duration")
    assert decl["data"]["thresholds"] == ["p(95)<500"] and decl["data"]["contains"] == "time"


def test_values_tags_and_times(tmp_path: Path) -> None:
    lines = _write(tmp_path / "out.json")
    points = [d for d in lines if d["type"] == "Point"]
    first = points[0]
    assert first == {"metric": "http_req_duration", "type": "Point", "data": {
        "time": "2025-12-01T10:57:54.353414Z", "value": 1.25,
        "tags": {"expected_response": "true", "method": "GET", "name": "/vms",
                 "status": "200", "testid": "tests/perf/test_api.py::test_vm_crud"}}}
    reqs = next(d for d in points if d["metric"] == "http_reqs")
    failed = next(d for d in points if d["metric"] == "http_req_failed")
    assert isinstance(reqs["data"]["value"], int) and failed["data"]["value"] == 0  # as k6
    checks = points[-1]
    assert checks["data"]["tags"] == {"check": "status is 200"}  # no test id set
    assert checks["data"]["value"] == 1


def test_time_format_matches_go_rfc3339nano() -> None:
    assert format_time(1_764_586_674.0) == "2025-12-01T10:57:54Z"
    assert format_time(1_764_586_674.5) == "2025-12-01T10:57:54.5Z"
    k6_time = next(d for d in _k6_lines() if d["type"] == "Point")["data"]["time"]
    assert k6_time.endswith("Z") and "T" in k6_time


def test_bad_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"json='.*missing/out\.json'.*existing, writable"):
        JsonOutput(tmp_path / "missing" / "out.json")


def test_writer_failure_is_counted_not_raised(tmp_path: Path) -> None:
    warnings: list[str] = []
    out = JsonOutput(tmp_path / "o.json", warn=warnings.append)
    out._file.close()  # the file goes away under the writer
    out.sample("vus", "gauge", 1.0)
    out.flush()
    report = out.close()
    assert report.dropped == 1 and report.failed_batches == 1 and len(warnings) == 1
