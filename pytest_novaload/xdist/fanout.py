"""One load test's fan-out on the controller, as an explicit state machine.

    BARRIER --all arrived--> RUNNING --every shard in or lost--> MERGED --xdist done--> REPORTING
       |                                                           |                     |
       +--cancelled (setup error, timeout, -x)--> CANCELLED --xdist done--> REPORTING --> REPORTED

(``BARRIER -> REPORTING`` when every worker left before the start; ``MERGED -> REPORTED`` on
Ctrl-C, when the measurements are recorded but no report is logged.) The ``Coordinator``
moves it and does the I/O; this module holds the state and the pure decisions. No pytest,
xdist or execnet import.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Any

from pytest_novaload.reporting.model import RunResult, threshold_keys
from pytest_novaload.xdist.merge import ShardPart, Windows
from pytest_novaload.xdist.wire import Done, LoadMeta, Progress

__all__ = ["Cancellation", "Fanout", "Phase"]


class Phase(enum.Enum):
    BARRIER = "waiting at the start barrier"
    CANCELLED = "cancelled before it started"
    RUNNING = "running"
    MERGED = "merged and judged"
    REPORTING = "logging its one report"
    REPORTED = "reported"


_MOVES: dict[Phase, frozenset[Phase]] = {
    Phase.BARRIER: frozenset({Phase.CANCELLED, Phase.RUNNING, Phase.REPORTING}),
    Phase.CANCELLED: frozenset({Phase.REPORTING}),
    Phase.RUNNING: frozenset({Phase.MERGED}),
    Phase.MERGED: frozenset({Phase.REPORTING, Phase.REPORTED}),
    Phase.REPORTING: frozenset({Phase.REPORTED}),
    Phase.REPORTED: frozenset(),
}


@dataclass(frozen=True)
class Cancellation:
    """Why the load test never started; ``silent`` when -x/--maxfail stopped the session
    (then no report is logged for it at all)."""

    reason: str
    silent: bool = False


@dataclass
class LiveRound:
    """Every running shard's latest progress; one line is shown per round, once every shard
    has sent its numbers for that second."""

    latest: dict[str, Progress] = field(default_factory=dict)
    ticks: dict[str, int] = field(default_factory=dict)
    shown: int = 0
    last_abort_check: float = 0.0


@dataclass
class Fanout:
    """One load test on the controller: barrier, shards, merge, verdict, its one report."""

    nodeid: str
    meta: LoadMeta
    nodes: list[str]                          # workers expected to run a shard, rank order
    phase: Phase = Phase.BARRIER
    # at the barrier
    arrived: dict[str, float] = field(default_factory=dict)
    timer: threading.Timer | None = None
    lost_before_start: list[str] = field(default_factory=list)
    cancel: Cancellation | None = None
    # running
    released: float = 0.0                     # unix time of the "go"
    ranks: dict[str, int] = field(default_factory=dict)
    results: dict[str, ShardPart] = field(default_factory=dict)
    left: dict[str, str] = field(default_factory=dict)   # worker -> why it left mid-test
    failure: str | None = None                # a worker crashed or left mid-test
    abort_reason: str | None = None
    interrupted: bool = False                 # Ctrl-C on the controller
    windows: Windows = field(default_factory=Windows)
    delivered: dict[str, int] = field(default_factory=dict)  # worker -> last second it sent
    streamed: int = -1                        # last merged second handed to the outputs
    live: LiveRound = field(default_factory=LiveRound)
    result: RunResult | None = None           # set on MERGED when any shard reported
    # xdist's view of the item on each worker
    done: dict[str, Done] = field(default_factory=dict)
    complete: set[str] = field(default_factory=set)
    cause: str | None = None                  # the worker whose report explains the end

    def move(self, phase: Phase) -> None:
        if phase not in _MOVES[self.phase]:
            raise RuntimeError(f"{self.nodeid}: cannot go from {self.phase.name} to "
                               f"{phase.name}")
        self.phase = phase

    @property
    def world(self) -> int:
        return len(self.ranks)

    def missing(self) -> list[str]:
        """Ranked workers whose measurements have neither arrived nor been given up."""
        return [w for w in self.ranks if w not in self.results and w not in self.left]

    def lost(self) -> dict[str, tuple[int, str]]:
        """Shards that left mid-run without their measurements: worker -> (rank, why)."""
        return {w: (rank, self.left[w]) for w, rank in self.ranks.items()
                if w in self.left and w not in self.results}

    def ready_to_report(self) -> bool:
        """xdist is done with the item on every worker, and nothing is still on its way."""
        if self.phase not in (Phase.BARRIER, Phase.CANCELLED, Phase.MERGED):
            return False
        return all(w in self.complete or w in self.left for w in self.nodes)

    def running_shards(self) -> list[str]:
        return [w for w in self.ranks if w not in self.left]

    def pick(self) -> tuple[str | None, list[dict[str, Any]]]:
        """The shard whose reports stand for the test: the one that explains the end, else
        the first failing shard by rank, else rank 0."""
        if self.cause is not None and self.cause in self.done:
            return self.cause, list(self.done[self.cause].reports)

        def order(worker: str) -> tuple[int, int]:
            rank = self.ranks.get(worker)
            seq = self.nodes.index(worker) if worker in self.nodes else 1 << 20
            return (rank if rank is not None else 1 << 20, seq)

        ordered = sorted(self.done, key=order)
        for w in ordered:
            if any(r.get("outcome") == "failed" for r in self.done[w].reports):
                return w, list(self.done[w].reports)
        if ordered:
            return ordered[0], list(self.done[ordered[0]].reports)
        return None, []

    def timeseries(self) -> list[dict[str, Any]]:
        return self.windows.timeseries(self.nodeid, threshold_keys(self.meta.thresholds))


def why_not_started(reports: list[dict[str, Any]]) -> str:
    """What a shard's reports say when it never reached the barrier."""
    for r in reports:
        if r.get("outcome") == "failed":
            return ("failed in setup" if r.get("when") == "setup" else
                    "failed before it called load.run")
        if r.get("outcome") == "skipped":
            return "was skipped"
    return "ended without calling load.run"


def worker_key(wid: str) -> tuple[int, str]:
    """gw2 before gw10: ranks follow the worker numbers."""
    digits = "".join(ch for ch in wid if ch.isdigit())
    return (int(digits) if digits else 1 << 30, wid)
