"""The outputs' wiring without pytest: tapped stores (the JSON samples), the session-facing
``Outputs``, the per-worker JSON files and their join, and the xdist controller's streaming
of merged seconds (each second once, when every running shard sent it)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pytest_novaload.metrics import MetricStore, Trend, make_tags
from pytest_novaload.metrics.tap import TapTrend
from pytest_novaload.outputs import JsonOutput, OutSpec, PrometheusRemoteWrite
from pytest_novaload.outputs.hub import Outputs, join_parts, open_outputs, part_path
from pytest_novaload.xdist.fanout import Fanout, Phase
from pytest_novaload.xdist.live import LiveOutput
from pytest_novaload.xdist.wire import LoadMeta

TAGS = make_tags(name="a")


def _tapped() -> tuple[MetricStore, list[tuple[str, str, float, Any]]]:
    seen: list[tuple[str, str, float, Any]] = []
    store = MetricStore()
    store.tap(lambda name, kind, tags: (lambda v: seen.append((name, kind, v, tags))))
    return store, seen


def test_a_tapped_store_tells_every_sample_and_measures_the_same() -> None:
    store, seen = _tapped()
    plain = MetricStore()
    for s in (store, plain):
        for v in (3.0, 1.0, 2.0):
            s.trend("t", TAGS).add(v)
        s.counter("c").add(5)
        s.rate("r").add(True)
        s.rate("r").add(False)
        s.gauge("g").set(7)
    assert seen == [("t", "trend", 3.0, TAGS), ("t", "trend", 1.0, TAGS),
                    ("t", "trend", 2.0, TAGS), ("c", "counter", 5, ()),
                    ("r", "rate", 1, ()), ("r", "rate", 0, ()), ("g", "gauge", 7, ())]
    assert store.to_dict()["metrics"].keys() == plain.to_dict()["metrics"].keys()
    for name in ("t", "c", "r", "g"):
        assert store.aggregate(name).stats(1.0) == plain.aggregate(name).stats(1.0)
    # Windows, copies and merges measure as the plain sinks do and record nothing.
    window = store.roll()
    window.trend("t", TAGS).add(9.0)
    store.aggregate("t").add(9.0)
    plain.merge(store)
    store.merge(plain)                   # tapped and plain sinks of one kind merge
    assert len(seen) == 7
    assert window.aggregate("t").value("count") == 4
    assert isinstance(store.trend("t", TAGS), TapTrend)
    assert type(window.aggregate("t")) in (Trend, TapTrend)


def test_untapping_leaves_new_series_plain() -> None:
    store, seen = _tapped()
    store.tap(None)
    store.counter("c").add()
    assert seen == [] and type(store.counter("c")).__name__ == "Counter"


def test_outputs_feed_json_with_every_sample_and_vus_once_a_window(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    outs = Outputs([JsonOutput(path)])
    store = MetricStore()
    outs.start_test("t.py::t", store)
    for vus in (1, 2, 3):
        store.gauge("vus").set(vus)            # every change: not a sample of its own
    store.trend("http_req_duration", TAGS).add(12.5)
    store.counter("http_reqs", TAGS).add()
    outs.window("t.py::t", 100, store.roll(), end=101.0)
    outs.end_test("t.py::t", store)
    store.counter("after").add()                # untapped once the test ended
    (report,) = outs.close()
    assert report.ok
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    points = [(d["metric"], d["data"]["value"], d["data"]["tags"]) for d in lines
              if d["type"] == "Point"]
    assert sorted(points, key=lambda p: p[0]) == [
        ("http_req_duration", 12.5, {"name": "a", "testid": "t.py::t"}),
        ("http_reqs", 1, {"name": "a", "testid": "t.py::t"}),
        ("vus", 3, {"testid": "t.py::t"})]
    vus = next(d for d in lines if d["metric"] == "vus" and d["type"] == "Point")
    assert vus["data"]["time"] == "1970-01-01T00:01:41Z"       # the window's end


def test_part_paths_keep_gz_last() -> None:
    assert part_path("out.json.gz", "gw0") == "out.json.gw0.gz"
    assert part_path("/x/out.json", "gw12") == "/x/out.json.gw12"


def _part(path: Path, metric: str, n: int) -> None:
    decl = json.dumps({"type": "Metric", "data": {"name": metric}, "metric": metric},
                      separators=(",", ":"))
    with gzip.open(path, "wt") as fh:
        fh.write(decl + "\n")
        for i in range(n):
            fh.write(json.dumps({"metric": metric, "type": "Point", "data": {"value": i}}) + "\n")


def test_worker_files_are_joined_with_each_metric_declared_once(tmp_path: Path) -> None:
    target = str(tmp_path / "out.json.gz")
    for wid, n in (("gw10", 1), ("gw0", 2), ("gw2", 3)):
        _part(Path(part_path(target, wid)), "http_reqs", n)
    report = join_parts(target)
    assert report.ok and report.sent == 1 + 2 + 3 + 1
    with gzip.open(target, "rt") as fh:
        lines = [json.loads(line) for line in fh]
    assert [d["type"] for d in lines].count("Metric") == 1
    assert [d["data"]["value"] for d in lines if d["type"] == "Point"] == [0, 1, 0, 1, 2, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json.gz"]


def test_each_process_builds_its_share(tmp_path: Path) -> None:
    target = str(tmp_path / "o.json")
    Path(part_path(target, "gw7")).write_text("stale\n")
    specs = [OutSpec("prometheus-rw", "http://127.0.0.1:9/api/v1/write"),
             OutSpec("json", target)]
    worker = open_outputs(specs, worker="gw1")
    assert worker.prom == [] and [str(j.path) for j in worker.json] == [
        part_path(target, "gw1")]
    controller = open_outputs(specs, controller=True)
    assert len(controller.prom) == 1 and controller.json == [] and controller.join == [target]
    assert not Path(part_path(target, "gw7")).exists()       # a stale part of another run
    for outs in (worker, controller):
        outs.close(prom_timeout=0.1)


class _Prom(PrometheusRemoteWrite):
    def __init__(self) -> None:  # records instead of sending
        self.calls: list[tuple[str, Any, float]] = []

    def window(self, test_id: str, t: float, window: MetricStore) -> bool:
        self.calls.append(("window", int(window.aggregate("http_reqs").value("count")), t))
        return True

    def end_test(self, test_id: str) -> None:
        self.calls.append(("end", test_id, 0.0))


def _win(n: int) -> dict[str, Any]:
    s = MetricStore()
    s.counter("http_reqs").add(n)
    return s.to_dict()


def test_the_controller_sends_each_merged_second_once_every_shard_sent_it() -> None:
    prom = _Prom()
    outs = Outputs()
    outs.prom = [prom]
    session = SimpleNamespace(outputs=outs, options=SimpleNamespace(barrier_timeout=1.0),
                              write=None)
    warned: list[str] = []
    live = LiveOutput(session, warn=warned.append)  # type: ignore[arg-type]
    run = Fanout("t.py::t", LoadMeta(("t.py", 1, "t"), {}, ()), ["gw0", "gw1"])
    run.ranks = {"gw0": 0, "gw1": 1}
    run.move(Phase.RUNNING)

    def deliver(wid: str, windows: list[tuple[int, dict[str, Any]]]) -> None:
        run.windows.add(windows)
        live.stream(run, wid, windows)

    deliver("gw0", [(100, _win(1)), (101, _win(2))])
    assert prom.calls == []                              # gw1 sent nothing yet
    deliver("gw1", [(100, _win(10))])
    assert prom.calls == [("window", 11, 101.0)]         # second 100, both shards merged
    deliver("gw1", [(101, _win(20)), (102, _win(30))])
    assert prom.calls[1:] == [("window", 22, 102.0)]     # 102 waits for gw0
    run.left["gw0"] = "crashed"                          # a shard that left is not waited for
    deliver("gw1", [(103, _win(40))])
    assert [c[1] for c in prom.calls[2:]] == [30, 40]
    run.move(Phase.MERGED)
    run.windows.add([(104, _win(50))])
    live.stream_rest(run)
    assert prom.calls[4:] == [("window", 50, 105.0),
                              ("end", "t.py::t", 0.0)]
    assert [c[2] for c in prom.calls if c[0] == "window"][:4] == [101.0, 102.0, 103.0, 104.0]
    assert warned == []


def test_a_password_in_the_url_is_never_shown() -> None:
    said: list[str] = []
    out = PrometheusRemoteWrite("http://u:s3cret@127.0.0.1:1/api/v1/write", warn=said.append)
    store = MetricStore()
    store.counter("http_reqs").add()
    out.window("t.py::t", 100.0, store.roll())
    report = out.close(timeout=5)
    assert not report.ok and said
    text = " ".join([*said, report.line(), *report.notes])
    assert "s3cret" not in text and "u:***@127.0.0.1" in text
