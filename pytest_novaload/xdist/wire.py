"""What travels over the xdist side channel, as builtins (execnet carries nothing else).

Pure: no pytest, xdist or execnet import, so it is unit-tested without them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pytest_novaload.engine.runner import RunOutput
from pytest_novaload.engine.runtime import ErrorLog
from pytest_novaload.metrics import MetricStore, Trend
from pytest_novaload.thresholds import Threshold

WINDOW_CENTROIDS = 64
"""Per-second windows travel with their digests compacted to this many centroids."""

@dataclass
class ShardPart:
    """What one shard measured, as the controller merges it."""

    worker: str
    rank: int
    store: MetricStore
    errors: ErrorLog
    started: float
    finished: float
    duration: float
    aborted: str | None = None
    interrupted: bool = False
    generator: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_output(cls, worker: str, rank: int, output: RunOutput) -> ShardPart:
        return cls(worker, rank, output.store, output.errors, output.started, output.finished,
                   output.duration, output.aborted, output.interrupted, output.generator)

    def to_wire(self) -> dict[str, Any]:
        return {"rank": self.rank, "store": self.store.to_dict(),
                "errors": self.errors.to_list(), "started": self.started,
                "finished": self.finished, "duration": self.duration, "aborted": self.aborted,
                "interrupted": self.interrupted, "generator": self.generator}

    @classmethod
    def from_wire(cls, worker: str, d: dict[str, Any]) -> ShardPart:
        return cls(worker, int(d["rank"]), MetricStore.from_dict(d["store"]),
                   ErrorLog.from_list(list(d["errors"])), float(d["started"]),
                   float(d["finished"]), float(d["duration"]), d.get("aborted"),
                   bool(d.get("interrupted")), dict(d.get("generator") or {}))


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
    return {"metrics": metrics}


def threshold_to_wire(t: Threshold) -> dict[str, Any]:
    return dataclasses.asdict(t)


def threshold_from_wire(d: dict[str, Any]) -> Threshold:
    return Threshold(**d)


def output_to_wire(output: RunOutput) -> dict[str, Any]:
    return {"store": output.store.to_dict(), "errors": output.errors.to_list(),
            "started": output.started, "finished": output.finished,
            "duration": output.duration, "aborted": output.aborted,
            "interrupted": output.interrupted, "generator": output.generator}


def output_from_wire(d: dict[str, Any]) -> RunOutput:
    return RunOutput(store=MetricStore.from_dict(d["store"]),
                     errors=ErrorLog.from_list(list(d["errors"])), started=float(d["started"]),
                     finished=float(d["finished"]), duration=float(d["duration"]),
                     timeseries=[], interrupted=bool(d["interrupted"]), aborted=d["aborted"],
                     generator=dict(d["generator"] or {}))

