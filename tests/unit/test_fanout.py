"""One load test's fan-out state machine (no xdist needed): moves, the chosen report."""

from __future__ import annotations

import pytest

from pytest_novaload.xdist.fanout import Fanout, Phase, why_not_started, worker_key
from pytest_novaload.xdist.wire import Done, LoadMeta

META = LoadMeta(("t.py", 1, "t"), {"type": "constant-vus"}, ())


def reports(outcome: str = "passed", when: str = "call") -> list[dict[str, object]]:
    return [{"when": w, "outcome": outcome if w == when else "passed"}
            for w in ("setup", "call", "teardown")]


def test_only_the_drawn_moves_are_allowed() -> None:
    run = Fanout("t.py::t", META, ["gw0", "gw1"])
    with pytest.raises(RuntimeError, match="cannot go from BARRIER to MERGED"):
        run.move(Phase.MERGED)
    run.move(Phase.RUNNING)
    run.move(Phase.MERGED)
    run.move(Phase.REPORTING)
    run.move(Phase.REPORTED)
    with pytest.raises(RuntimeError, match="cannot go from REPORTED to RUNNING"):
        run.move(Phase.RUNNING)


def test_ready_to_report_waits_for_xdist_and_the_merge() -> None:
    run = Fanout("t.py::t", META, ["gw0", "gw1"])
    run.ranks = {"gw0": 0, "gw1": 1}
    run.move(Phase.RUNNING)
    run.complete = {"gw0", "gw1"}
    assert not run.ready_to_report()            # measurements still on their way
    assert run.missing() == ["gw0", "gw1"]
    run.left["gw1"] = "crashed"
    assert run.missing() == ["gw0"] and run.lost() == {"gw1": (1, "crashed")}
    run.move(Phase.MERGED)
    assert run.ready_to_report()


def test_the_report_that_explains_the_end_stands_for_the_test() -> None:
    run = Fanout("t.py::t", META, ["gw0", "gw1", "gw2"])
    run.ranks = {"gw0": 0, "gw1": 1, "gw2": 2}
    for w in run.nodes:
        run.done[w] = Done("t.py::t", True, reports())
    assert run.pick()[0] == "gw0"                         # all passed: rank 0
    run.done["gw2"] = Done("t.py::t", True, reports("failed"))
    assert run.pick()[0] == "gw2"                         # the first failing one
    run.cause = "gw1"
    assert run.pick()[0] == "gw1"                         # the one that explains it


def test_helpers() -> None:
    assert sorted(["gw10", "gw2", "gw1"], key=worker_key) == ["gw1", "gw2", "gw10"]
    assert why_not_started(reports("failed", "setup")) == "failed in setup"
    assert why_not_started(reports("failed", "call")) == "failed before it called load.run"
    assert why_not_started(reports("skipped", "setup")) == "was skipped"
    assert why_not_started(reports()) == "ended without calling load.run"
