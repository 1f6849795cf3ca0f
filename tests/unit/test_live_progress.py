"""The one live progress line, for a single run and for the xdist controller alike."""

from __future__ import annotations

from pytest_novaload.engine.runner import Snapshot
from pytest_novaload.metrics import MetricStore
from pytest_novaload.reporting.terminal import LiveProgress, progress_line, stage_label


def snap(elapsed: float) -> Snapshot:
    store = MetricStore()
    store.counter("http_reqs").add(int(elapsed * 10) + 1)
    return Snapshot(elapsed=elapsed, planned=60.0, vus=4, vus_max=5, iterations=7, store=store)


def test_off_or_no_terminal_shows_nothing() -> None:
    assert LiveProgress.create(None, "t.py::t", mode="auto", isatty=True) is None
    assert LiveProgress.create(print, "t.py::t", mode="off", isatty=True) is None


def test_tty_rewrites_one_line_below_pytests_and_leaves_it() -> None:
    out: list[str] = []
    p = LiveProgress(out.append, "t.py::test_x", tty=True, suffix="  [2 shards]",
                     width=lambda: 200)
    p.show(snap(1.0))
    p.show(snap(2.0))
    p.end()
    assert out[0].startswith("\n\rtest_x  1s/1m00s  vus 4/5  11 reqs/s")
    assert out[0].endswith("[2 shards]\x1b[K")
    assert out[1].startswith("\rtest_x  2s/1m00s") and out[1].endswith("\x1b[K")
    assert "10 reqs/s" in out[1]   # the rate since the last line: 21 - 11 in one second
    assert out[2] == "\n"


def test_tty_line_is_cut_to_the_terminal_width_so_it_never_wraps() -> None:
    out: list[str] = []
    p = LiveProgress(out.append, "t.py::test_with_a_rather_long_name", tty=True,
                     suffix="  [2 shards]", width=lambda: 40)
    p.show(snap(1.0))
    shown = out[0].removeprefix("\n\r").removesuffix("\x1b[K")
    assert len(shown) == 39 and shown.endswith("  [2 shards]")   # the suffix stays whole


def test_lines_mode_writes_a_line_every_ten_seconds() -> None:
    out: list[str] = []
    p = LiveProgress.create(out.append, "t.py::test_x", mode="auto", isatty=False)
    assert p is not None
    for t in (1.0, 5.0, 11.0, 12.0, 21.0):
        p.show(snap(t))
    p.end()
    assert [line.split()[1] for line in out] == ["1s/1m00s", "11s/1m00s", "21s/1m00s"]
    assert out[0].startswith("\n") and all(line.endswith("\n") for line in out)


def full(elapsed: float, planned: float = 140.0) -> Snapshot:
    store = MetricStore()
    store.counter("http_reqs").add(500)
    for v in range(1, 101):
        store.trend("http_req_duration").add(float(v))
    failed = store.rate("http_req_failed")
    for i in range(200):
        failed.add(i < 3)
    return Snapshot(elapsed=elapsed, planned=planned, vus=40, vus_max=100, iterations=250,
                    store=store, stage_ends=(30.0, 90.0, 140.0))


def test_line_shows_stage_time_vus_rate_latency_and_failures() -> None:
    line = progress_line("tests/perf/t.py::test_vm_crud", full(65.0))
    assert line == ("test_vm_crud  stage 2/3  1m05s/2m20s  vus 40/100  8 reqs/s  "
                    "p95 95.05ms p99 99.01ms  failed 1.50%  (500 reqs, 250 iters)")


def test_rate_is_over_the_time_since_the_previous_line() -> None:
    assert " 50 reqs/s " in progress_line("t", full(20.0), prev=(10.0, 0))
    assert " 25 reqs/s " in progress_line("t", full(20.0))


def test_stage_label() -> None:
    ends = (30.0, 90.0, 140.0)
    assert [stage_label(t, 140.0, ends) for t in (0.0, 29.9, 30.0, 139.0, 140.0, 150.0)] == [
        "stage 1/3", "stage 1/3", "stage 2/3", "stage 3/3", "stopping", "stopping"]
    assert stage_label(5.0, 60.0, ()) == "" and stage_label(5.0, 60.0, (60.0,)) == ""
    assert stage_label(61.0, 60.0, ()) == "stopping"


def test_other_protocols_and_none_at_all() -> None:
    store = MetricStore()
    store.counter("db_queries").add(30)
    store.trend("db_query_duration").add(2.0)
    s = Snapshot(elapsed=10.0, planned=10.0, vus=1, vus_max=1, iterations=3, store=store)
    assert "3 queries/s  p95 2.00ms p99 2.00ms" in progress_line("t", s)
    assert progress_line("t", Snapshot(elapsed=1.0, planned=10.0, vus=1, vus_max=1,
                                       iterations=0, store=MetricStore())) == (
        "t  1s/10s  vus 1/1  (0 iters)")
