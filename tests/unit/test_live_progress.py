"""The one live progress line, for a single run and for the xdist controller alike."""

from __future__ import annotations

from pytest_novaload.engine.runner import Snapshot
from pytest_novaload.metrics import MetricStore
from pytest_novaload.reporting.terminal import LiveProgress


def snap(elapsed: float) -> Snapshot:
    store = MetricStore()
    store.counter("http_reqs").add(int(elapsed * 10) + 1)
    return Snapshot(elapsed=elapsed, planned=60.0, vus=4, vus_max=5, iterations=7, store=store)


def test_off_or_no_terminal_shows_nothing() -> None:
    assert LiveProgress.create(None, "t.py::t", mode="auto", isatty=True) is None
    assert LiveProgress.create(print, "t.py::t", mode="off", isatty=True) is None


def test_tty_rewrites_one_line_below_pytests_and_leaves_it() -> None:
    out: list[str] = []
    p = LiveProgress.create(out.append, "t.py::test_x", mode="auto", isatty=True,
                            suffix="  [2 shards]")
    assert p is not None
    p.show(snap(1.0))
    p.show(snap(2.0))
    p.end()
    assert out[0].startswith("\n\rtest_x  1s/60s  vus 4/5  iters 7  reqs 11")
    assert out[0].rstrip().endswith("[2 shards]") and len(out[0]) == 152
    assert out[1].startswith("\rtest_x  2s/60s")
    assert out[2] == "\n"


def test_lines_mode_writes_a_line_every_ten_seconds() -> None:
    out: list[str] = []
    p = LiveProgress.create(out.append, "t.py::test_x", mode="auto", isatty=False)
    assert p is not None
    for t in (1.0, 5.0, 11.0, 12.0, 21.0):
        p.show(snap(t))
    p.end()
    assert [line.split()[1] for line in out] == ["1s/60s", "11s/60s", "21s/60s"]
    assert out[0].startswith("\n") and all(line.endswith("\n") for line in out)
