"""Timeline (per-second numbers of the judged keys), StageStores and stage spans."""

from __future__ import annotations

from pytest_novaload.metrics import MetricStore, make_tags
from pytest_novaload.metrics.timeline import StageStores, Timeline, spans_of, strip_stage


def _second(errors: int, ok: int, ms: float = 1.0) -> MetricStore:
    s = MetricStore()
    for _ in range(errors):
        s.rate("http_req_failed").add(True)
    for _ in range(ok):
        s.rate("http_req_failed").add(False)
        s.trend("http_req_duration", make_tags(name="a")).add(ms)
    s.counter("http_reqs").add(errors + ok)
    return s


def test_spans_follow_the_described_stages_with_names() -> None:
    spans = spans_of({"stages": [["1s", 2, "warm"], ["2s", 2], ["500ms", 0, "down"]]})
    assert [(s.index, s.name, s.start, s.end) for s in spans] == [
        (1, "warm", 0.0, 1.0), (2, None, 1.0, 3.0), (3, "down", 3.0, 3.5)]
    assert spans_of({"vus": 3, "duration": "1s"}) == ()
    assert strip_stage("http_req_duration{name:a,stage:peak}") == (
        "http_req_duration{name:a}", "peak")


def test_sliding_windows_merge_consecutive_seconds_and_fill_empty_ones() -> None:
    tl = Timeline(["http_req_failed", "http_reqs", "http_req_duration{name:a}"])
    for t, (bad, good) in enumerate([(0, 10), (0, 10), (10, 0), (0, 10)]):
        tl.add(100 + t, _second(bad, good))
    tl.add(104, MetricStore())  # a second with nothing at all
    windows = tl.sliding("http_req_failed", 2)
    assert [(start, round(sink.value("rate"), 3)) for start, sink, _ in windows] == [
        (100, 0.0), (101, 0.5), (102, 0.5), (103, 0.0)]
    counts = [sink.value("count") for _, sink, _ in tl.sliding("http_reqs", 1)]
    assert counts == [10, 10, 10, 10, 0]
    assert len(tl.series("http_req_duration{name:a}")) == 5
    start, sink, n = tl.trailing("http_req_failed", 3) or (0, None, 0)
    assert (start, n) == (102, 3) and sink is not None
    # a run shorter than the window is one window
    assert len(tl.sliding("http_reqs", 30)) == 1


def test_stage_stores_merge_over_shards_and_travel() -> None:
    spans = spans_of({"stages": [["1s", 2, "warm"], ["2s", 2, "peak"]]})
    a, b = StageStores(spans), StageStores(spans)
    a.add(2, _second(1, 3), 1.0)
    b.add(2, _second(0, 4), 0.9)
    a.merge(StageStores.from_wire(b.to_wire()))
    peak = a.find("peak")
    assert peak is not None and a.find("2") == peak and a.find("3") is None
    store = a.store(peak.index)
    assert store.aggregate("http_req_failed").value("rate") == 1 / 8
    assert a.duration(peak.index) == 1.0
    empty = a.store(1, like=store)
    assert "http_req_failed" in empty and empty.aggregate("http_req_failed").empty


def test_lengths_say_how_much_of_each_second_was_covered() -> None:
    tl = Timeline(["http_reqs"])
    tl.add(100, _second(0, 6), length=0.6)
    tl.add(101, _second(0, 10), stage=1, length=0.25)  # a stage boundary inside second 101
    tl.add(101, _second(0, 10), stage=2, length=0.75)
    tl.add(102, _second(0, 3), stage=2, length=0.3)
    tl.add(102, _second(0, 3), stage=2, length=0.2)  # another shard's piece of that second
    tl.add(103, _second(0, 1))  # no length recorded: a whole second
    assert tl.lengths() == [0.6, 1.0, 0.3, 1.0]
    assert tl.lengths(stage=2) == [0.75, 0.3]
    assert len(tl.lengths()) == len(tl.series("http_reqs"))
