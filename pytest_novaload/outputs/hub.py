"""The session's outputs in one object: what the session, the runner and the xdist controller
call, and who builds what in which process.

Without xdist the process runs the load and feeds every output. Under xdist:

- **Prometheus** and **OTLP** are sent by the controller only: it merges the shards' windows
  of each second and sends that second once (``Coordinator``), so a test is one series set,
  never one per worker. Workers build neither.
- **JSON** samples exist only where the load runs: each worker writes its own k6 JSON file
  (``out.json.gz`` -> ``out.json.gw0.gz``: k6's JSON output is per process too), and when
  the session ends the controller joins them into the file asked for (each metric declared
  once) and removes the parts.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import MetricStore, Tags
from pytest_novaload.metrics.builtins import builtin
from pytest_novaload.metrics.tap import Recorder
from pytest_novaload.outputs.config import Output, OutSpec, build_outputs
from pytest_novaload.outputs.jsonout import JsonOutput
from pytest_novaload.outputs.otlp import OtlpOutput
from pytest_novaload.outputs.promrw import PrometheusRemoteWrite
from pytest_novaload.outputs.sender import OutputReport
from pytest_novaload.redact import Redactor
from pytest_novaload.thresholds import Threshold

__all__ = ["ONCE_A_SECOND", "Outputs", "join_parts", "open_outputs", "part_path"]

ONCE_A_SECOND = ("vus", "vus_max")
"""Gauges k6 samples once a second (not at every change): JSON gets them from each window."""


def part_path(target: str, worker: str) -> str:
    """A worker's own JSON file: ``out.json.gz`` -> ``out.json.gw0.gz``, ``out.json`` ->
    ``out.json.gw0`` (``.gz`` stays last, so the part is gzipped like the target)."""
    if target.endswith(".gz"):
        return f"{target[:-3]}.{worker}.gz"
    return f"{target}.{worker}"


def _parts(target: str) -> list[Path]:
    probe = Path(part_path(target, "gw*"))
    return sorted(probe.parent.glob(probe.name),
                  key=lambda p: (len(p.name), p.name))  # gw2 before gw10


def _open(path: Path, write: bool) -> IO[str]:
    gz = path.name.endswith(".gz")
    if write:
        return (gzip.open(path, "wt", encoding="utf-8", compresslevel=6) if gz
                else open(path, "w", encoding="utf-8"))
    return gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8")


def join_parts(target: str) -> OutputReport:
    """Join the workers' JSON files of ``target`` into it (each metric declared once) and
    remove them; the report counts the lines written."""
    report = OutputReport(f"json ({target})", unit="lines")
    parts = _parts(target)
    declared: set[str] = set()
    try:
        with _open(Path(target), True) as out:
            for part in parts:
                with _open(part, False) as src:
                    for line in src:
                        if line.startswith('{"type":"Metric"'):
                            name = str(json.loads(line).get("metric", ""))
                            if name in declared:
                                continue
                            declared.add(name)
                        out.write(line)
                        report.sent += 1
    except (OSError, ValueError, EOFError) as exc:
        report.failed_batches += 1
        report.first_error = f"joining the workers' files failed: {exc}; they are kept"
        return report
    for part in parts:
        with contextlib.suppress(OSError):
            part.unlink()
    report.notes.append(f"joined from {len(parts)} worker file(s)")
    return report


class Outputs:
    """This process's outputs (possibly none): each call is cheap and never raises into the
    load; ``close()`` gives each output's report."""

    def __init__(self, outputs: Iterable[Output] = (), *,
                 join: Sequence[str] = (), notices: list[str] | None = None) -> None:
        items = list(outputs)
        # The outputs' warnings (said once each, from their threads): whoever owns the
        # terminal shows them with take_notices().
        self.notices: list[str] = notices if notices is not None else []
        # The outputs fed per-second windows: Prometheus remote write and OTLP.
        self.prom = [o for o in items if isinstance(o, PrometheusRemoteWrite | OtlpOutput)]
        self.json = [o for o in items if isinstance(o, JsonOutput)]
        self.join = list(join)  # JSON targets the workers wrote in parts (xdist controller)
        self.reports: list[OutputReport] = []

    def __bool__(self) -> bool:
        return bool(self.prom or self.json or self.join)

    def set_redactor(self, redactor: Redactor) -> None:
        """What hides secrets in every output from now on (the session's, as it learns the
        environment's secrets)."""
        for prom in self.prom:
            prom.redactor = redactor
        for js in self.json:
            js.redactor = redactor

    def take_notices(self) -> list[str]:
        """The warnings not shown yet (thread-safe: list pops are atomic)."""
        out: list[str] = []
        while self.notices:
            out.append(self.notices.pop(0))
        return out

    # -- a test ---------------------------------------------------------------------------
    def start_test(self, nodeid: str, store: MetricStore,
                   thresholds: Iterable[Threshold] = ()) -> None:
        """The load of ``nodeid`` records into ``store``: tap it for the JSON outputs, and
        declare the metrics its thresholds name (k6 lists them in the Metric line)."""
        if not self.json:
            return
        by_metric: dict[str, list[str]] = {}
        for th in thresholds:
            by_metric.setdefault(th.metric.split("{", 1)[0], []).append(th.expression)
        for js in self.json:
            js.set_test(nodeid)
            for name, expressions in by_metric.items():
                b = builtin(name)
                kind = store.kind(name) if name in store else b.kind if b else None
                if kind is not None:
                    js.declare(name, kind, expressions)
        store.tap(self._recorder)

    def _recorder(self, name: str, kind: str, tags: Tags) -> Recorder | None:
        if name in ONCE_A_SECOND:
            return None
        recs = [js.recorder(name, kind, tags) for js in self.json]
        if len(recs) == 1:
            return recs[0]

        def every(value: float) -> None:
            for rec in recs:
                rec(value)

        return every

    def window(self, nodeid: str, t: float, window: MetricStore, *, end: float) -> None:
        """The window of unix second ``t`` closed at ``end``: JSON gets the VU gauges and
        its buffer flushed, Prometheus the window (``window`` must not change afterwards)."""
        for js in self.json:
            for name in ONCE_A_SECOND:
                if name in window:
                    for tags, sink in window.series(name).items():
                        if not sink.empty:
                            js.sample(name, "gauge", sink.value("value"), tags, end)
            js.flush()
        for prom in self.prom:
            prom.window(nodeid, end, window)

    def end_test(self, nodeid: str, store: MetricStore | None = None) -> None:
        """No more samples of ``nodeid``."""
        if store is not None:
            store.tap(None)
        for js in self.json:
            js.flush()
            js.set_test("")
        for prom in self.prom:
            prom.end_test(nodeid)

    # -- the session's end ----------------------------------------------------------------
    def close(self, prom_timeout: float = 3.0, json_timeout: float = 60.0
              ) -> list[OutputReport]:
        """Flush and stop every output, joining the workers' JSON files; every report, kept in
        ``reports``. Prometheus gets ``prom_timeout`` seconds for its last windows (a dead or
        silent receiver delays the session's end by no more), a JSON file ``json_timeout`` to
        be written out."""
        reports = [o.close(prom_timeout) for o in self.prom]
        reports += [o.close(json_timeout) for o in self.json]
        reports += [join_parts(target) for target in self.join]
        self.reports = reports
        return reports


def open_outputs(specs: Sequence[OutSpec], *, env: Mapping[str, str] | None = None,
                 worker: str | None = None, controller: bool = False) -> Outputs:
    """This process's share of ``specs``: everything without xdist; on a worker its own JSON
    part files; on the xdist controller Prometheus, and the JSON files to join at the end
    (stale parts of an earlier run removed now, before any worker writes). Warnings are
    kept in ``Outputs.notices``."""
    notices: list[str] = []
    warn = notices.append
    if worker is not None:
        return Outputs(build_outputs([OutSpec("json", part_path(s.target, worker))
                                      for s in specs if s.name == "json"], env=env, warn=warn),
                       notices=notices)
    if controller:
        join = [s.target for s in specs if s.name == "json"]
        for target in join:
            try:
                Path(target).touch()
            except OSError as exc:
                raise ConfigError(f"json={target!r}: cannot write the file ({exc.strerror}); "
                                  "give a path in an existing, writable folder, e.g. "
                                  "'json=results.json.gz'") from None
            for stale in _parts(target):
                with contextlib.suppress(OSError):
                    stale.unlink()
        return Outputs(build_outputs([s for s in specs if s.name != "json"], env=env,
                                     warn=warn), join=join, notices=notices)
    return Outputs(build_outputs(specs, env=env, warn=warn), notices=notices)
