"""The side channel's messages, typed, and how they travel: as tuples of builtins, the only
thing execnet carries. ``encode`` and ``decode`` are the one place that knows the tuples.

worker -> controller: ``Meta``, ``Arrive``, ``Progress``, ``Result``, ``Done``;
controller -> worker: ``Go``, ``Cancel``, ``Abort``, ``Merged``.
Pure: no pytest, xdist or execnet import, so it is unit-tested without them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_novaload.engine.runner import Measurements
from pytest_novaload.metrics import MetricStore, Trend
from pytest_novaload.metrics.errors import ErrorLog
from pytest_novaload.metrics.timeline import StageStores
from pytest_novaload.thresholds import Threshold, Verdict

__all__ = ["WINDOW_CENTROIDS", "Abort", "Arrive", "Cancel", "Done", "Go", "LoadMeta",
           "Merged", "Message", "Meta", "Progress", "Result", "WindowList", "compact_store_dict",
           "decode",
           "encode", "measurements_from_wire", "measurements_to_wire"]

WINDOW_CENTROIDS = 64
"""Per-second windows travel with their digests compacted to this many centroids."""

WindowList = list[tuple[int, dict[str, Any]]]
"""(unix second, ``MetricStore.to_dict()`` of that second), as a shard streams them."""


@dataclass(frozen=True)
class LoadMeta:
    """What the controller knows of a load test: it only sees nodeids, never markers."""

    location: tuple[str, int | None, str]
    executor: dict[str, Any]
    thresholds: tuple[Threshold, ...]
    regressions: dict[str, list[str]] | None = None
    """The marker's ``regressions=`` as rule texts (None: the session's default rules)."""

    def to_wire(self) -> dict[str, Any]:
        return {"location": self.location, "executor": self.executor,
                "thresholds": [t.to_dict() for t in self.thresholds],
                "regressions": self.regressions}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> LoadMeta:
        loc = d["location"]
        return cls((str(loc[0]), loc[1], str(loc[2])), dict(d["executor"]),
                   tuple(Threshold.from_dict(t) for t in d["thresholds"]),
                   d.get("regressions"))


@dataclass(frozen=True)
class Meta:
    """A worker's load tests, sent before xdist's own collection report."""

    tests: dict[str, LoadMeta]


@dataclass(frozen=True)
class Arrive:
    """The shard is set up and waits at the start barrier."""

    nodeid: str


@dataclass(frozen=True)
class Progress:
    """A shard's numbers once a second, with the windows it closed since the last one."""

    nodeid: str
    elapsed: float
    planned: float
    vus: int
    vus_max: int
    iterations: int
    windows: WindowList = field(default_factory=list)


@dataclass(frozen=True)
class Result:
    """What a shard measured, sent when its run ends (with its last windows)."""

    nodeid: str
    rank: int
    measured: Measurements
    windows: WindowList = field(default_factory=list)


@dataclass(frozen=True)
class Done:
    """The item's protocol ended on the worker: its serialized reports, and whether the
    shard reached the barrier at all."""

    nodeid: str
    arrived: bool
    reports: list[dict[str, Any]]


@dataclass(frozen=True)
class Go:
    """Every shard arrived: start now, as ``rank`` of ``world``."""

    nodeid: str
    rank: int
    world: int


@dataclass(frozen=True)
class Cancel:
    """Do not start: ``reason`` says why."""

    nodeid: str
    reason: str


@dataclass(frozen=True)
class Abort:
    """Stop the running shard now (abort_on_fail on the merged numbers, a lost peer...)."""

    nodeid: str
    reason: str


@dataclass(frozen=True)
class Merged:
    """Every shard's measurements merged and the controller's verdict on them: what
    ``load.run`` returns on each shard."""

    nodeid: str
    measured: Measurements
    verdict: Verdict
    shards: int
    extra: dict[str, Any] = field(default_factory=dict)  # start spread, lost shards...
    failure: str | None = None    # set when a shard crashed or left: names the worker


Message = Meta | Arrive | Progress | Result | Done | Go | Cancel | Abort | Merged


def measurements_to_wire(m: Measurements) -> dict[str, Any]:
    """A run's measurements as builtins (its local time series stays home)."""
    return {"store": m.store.to_dict(), "errors": m.errors.to_list(), "started": m.started,
            "finished": m.finished, "duration": m.duration, "aborted": m.aborted,
            "interrupted": m.interrupted, "generator": m.generator,
            "stages": m.stages.to_wire() if m.stages is not None else None}


def measurements_from_wire(d: dict[str, Any]) -> Measurements:
    return Measurements(store=MetricStore.from_dict(d["store"]),
                        errors=ErrorLog.from_list(list(d["errors"])),
                        started=float(d["started"]), finished=float(d["finished"]),
                        duration=float(d["duration"]), timeseries=[],
                        interrupted=bool(d.get("interrupted")), aborted=d.get("aborted"),
                        generator=dict(d.get("generator") or {}),
                        stages=StageStores.from_wire(d["stages"]) if d.get("stages") else None)


def _windows(raw: Any) -> WindowList:
    return [(int(t), d) for t, d in (raw or ())]


def encode(msg: Message) -> tuple[Any, ...]:
    """The tuple that travels: ``(kind, nodeid, ...)``; ``("meta", {nodeid: meta})``."""
    if isinstance(msg, Meta):
        return ("meta", {n: m.to_wire() for n, m in msg.tests.items()})
    if isinstance(msg, Arrive):
        return ("arrive", msg.nodeid)
    if isinstance(msg, Progress):
        return ("progress", msg.nodeid, {
            "elapsed": msg.elapsed, "planned": msg.planned, "vus": msg.vus,
            "vus_max": msg.vus_max, "iterations": msg.iterations, "windows": msg.windows})
    if isinstance(msg, Result):
        return ("result", msg.nodeid, {"rank": msg.rank, **measurements_to_wire(msg.measured),
                                       "windows": msg.windows})
    if isinstance(msg, Done):
        return ("done", msg.nodeid, {"arrived": msg.arrived, "reports": msg.reports})
    if isinstance(msg, Go):
        return ("go", msg.nodeid, msg.rank, msg.world)
    if isinstance(msg, Cancel):
        return ("cancel", msg.nodeid, msg.reason)
    if isinstance(msg, Abort):
        return ("abort", msg.nodeid, msg.reason)
    return ("merged", msg.nodeid, {**measurements_to_wire(msg.measured),
                                   "verdict": msg.verdict.to_dict(), "shards": msg.shards,
                                   "extra": msg.extra, "failure": msg.failure})


def _progress(nodeid: str, d: dict[str, Any]) -> Progress:
    return Progress(nodeid, float(d["elapsed"]), float(d["planned"]), int(d["vus"]),
                    int(d["vus_max"]), int(d["iterations"]), _windows(d.get("windows")))


def _result(nodeid: str, d: dict[str, Any]) -> Result:
    return Result(nodeid, int(d["rank"]), measurements_from_wire(d), _windows(d.get("windows")))


def _merged(nodeid: str, d: dict[str, Any]) -> Merged:
    return Merged(nodeid, measurements_from_wire(d), Verdict.from_dict(d["verdict"]),
                  int(d["shards"]), dict(d.get("extra") or {}), d.get("failure"))


_DECODERS: dict[str, Callable[..., Message]] = {
    "arrive": Arrive,
    "progress": _progress,
    "result": _result,
    "done": lambda n, d: Done(n, bool(d.get("arrived")), list(d.get("reports") or [])),
    "go": lambda n, rank, world: Go(n, int(rank), int(world)),
    "cancel": lambda n, reason: Cancel(n, str(reason)),
    "abort": lambda n, reason: Abort(n, str(reason)),
    "merged": _merged,
}


def decode(raw: Any) -> Message:
    """Inverse of ``encode``; a ValueError names a message that is not one of ours."""
    try:
        kind = raw[0]
        if kind == "meta":
            return Meta({str(n): LoadMeta.from_wire(m) for n, m in raw[1].items()})
        return _DECODERS[kind](str(raw[1]), *raw[2:])
    except (LookupError, TypeError, ValueError) as exc:
        raise ValueError(f"not a pytest-novaload side-channel message: {raw!r:.200} "
                         f"({exc!r})") from None


def compact_store_dict(d: dict[str, Any], max_centroids: int = WINDOW_CENTROIDS
                       ) -> dict[str, Any]:
    """``MetricStore.to_dict()`` with every trend digest compacted (windows for transport)."""
    metrics: dict[str, Any] = {}
    for name, entry in d["metrics"].items():
        if entry["kind"] != "trend":
            metrics[name] = entry
            continue
        series = [{"tags": s["tags"],
                   "sink": Trend.from_dict(s["sink"]).compact(max_centroids).to_dict()}
                  for s in entry["series"]]
        metrics[name] = {**entry, "series": series}
    return {**d, "metrics": metrics}  # a window's stage and length travel with it
