"""One object per pytest session: runs loads, keeps results, writes artifacts.

The plugin creates it, keeps it on ``config.stash`` and delegates to it. It knows nothing of
pytest: it takes plain values and callables (a ``write`` for the terminal, a ``Shard`` for xdist).

It is the choke point for secrets (``redact``): every artifact (`write_file`), run.log line
(`_log`), terminal text (``write``, progress included, and `terminal_summaries`) and failure
message (`_failure`, a crashed run's traceback too: ``LoadCrashed``) passes through `redactor`;
error examples are redacted where they are captured (``ErrorLog``). Targets are checked
against the allowlist before any load.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pytest_novaload.engine.runner import LoadRunner, Measurements
from pytest_novaload.engine.runtime import ScenarioMix
from pytest_novaload.errors import (
    LoadAborted,
    LoadCrashed,
    RegressionFailed,
    ShardError,
    ThresholdsFailed,
)
from pytest_novaload.gate.assess import Gate, assess, interval_keys, rule_texts
from pytest_novaload.gate.baseline import save_baseline
from pytest_novaload.gate.gitlab import render_metrics
from pytest_novaload.gate.rules import Rule
from pytest_novaload.metrics import MetricStore
from pytest_novaload.metrics.spool import LineSpool
from pytest_novaload.metrics.timeline import Timeline
from pytest_novaload.options import Options
from pytest_novaload.outputs.hub import Outputs
from pytest_novaload.redact import Redactor, display_target, env_secrets
from pytest_novaload.reporting import html, markdown, terminal
from pytest_novaload.reporting.model import RunResult, threshold_keys
from pytest_novaload.reporting.terminal import LiveProgress
from pytest_novaload.spec import LoadSpec
from pytest_novaload.thresholds import Threshold, Verdict, judge
from pytest_novaload.xdist.wire import Merged

TARGET_ENV = ("API_URL", "WS_URL", "DWCP_WS_URL", "API_TOKEN", "DATABASE_URL")


class Shard(Protocol):
    """The xdist side of a run (see xdist/worker.py): barrier, rank/world, abort, results."""

    def begin(self, nodeid: str) -> tuple[int, int]:
        """Wait at the start barrier; return (rank, world). Raises ShardError when the
        controller cancels the start."""

    def attach(self, runner: LoadRunner) -> None:
        """Let the controller abort ``runner`` (abort_on_fail across shards, crashes) and
        stream its progress."""

    def finish(self, nodeid: str, measured: Measurements, runner: LoadRunner) -> Merged:
        """Send this shard's measurements to the controller; return every shard's merged
        and the controller's verdict on them."""


class NovaloadSession:
    """Runs every load test of the session and writes ``<results>/<UTC timestamp>/``."""

    def __init__(self, options: Options, *, write: Callable[[str], None] | None = None,
                 isatty: bool = False, shard: Shard | None = None,
                 rootdir: Path | None = None, outputs: Outputs | None = None,
                 width: Callable[[], int] | None = None, gate: Gate | None = None,
                 worker: bool = False) -> None:
        self.options = options
        self.width = width   # the terminal's columns now, for the live progress line
        self.gate = gate or Gate()
        self.worker = worker                # an xdist worker: the controller reports
        self._finished = False
        self.outputs = outputs or Outputs()  # --load-out: fed while each load runs
        self.output_notes: list[str] = []   # xdist: what the workers' outputs said
        self._secrets: list[str] = []
        self._redactor = Redactor()
        self.write = None if write is None else self._redacting(write)
        self.isatty = isatty
        self.shard = shard
        self.rootdir = rootdir or Path.cwd()
        self.results: dict[str, RunResult] = {}
        self.order: list[str] = []
        self.started = time.time()
        self._run_dir: Path | None = None
        self._timeseries = LineSpool()   # every test's lines, redacted, on disk
        self.targets: dict[str, str] = {}

    # -- running ------------------------------------------------------------------------------
    def run_load(self, nodeid: str, spec: LoadSpec, scenario: Any,
                 store: MetricStore) -> RunResult:
        """Run one load test and record it; raise ThresholdsFailed when a threshold broke.

        Under xdist (``shard`` set) this runs one shard; the controller merges every shard,
        judges the merged numbers once and sends them with its verdict back to each shard.
        """
        __tracebackhide__ = True
        plan = spec.plan(scale=self.options.scale, duration_scale=self.options.duration_scale)
        ScenarioMix(scenario)  # a bad scenario fails here, before any shard starts
        self.check_targets()  # and a refused target, before any shard starts or packet leaves
        rank, world = (0, 1) if self.shard is None else self.shard.begin(nodeid)
        env = {k: os.environ[k] for k in TARGET_ENV if k in os.environ}
        self.note_targets()
        redactor = self.redactor
        progress = None if self.shard is not None else LiveProgress.create(
            self.write, nodeid, mode=self.options.progress, isatty=self.isatty,
            width=self.width)
        if self.write is not None:
            write = self.write
            store.on_series_limit = lambda text: write(f"pytest-novaload: warning: {text}")
        outs = self.outputs
        outs.start_test(nodeid, store, spec.thresholds)

        def on_window(t: int, window: MetricStore, now: float) -> None:
            outs.window(nodeid, t, window, end=min(t + 1.0, now))
            if outs.notices:
                self.show_notices()

        runner = LoadRunner(plan, scenario, env=env, client_options=dict(spec.client_options),
                            thresholds=spec.thresholds, rank=rank, world=world, store=store,
                            progress=progress.show if progress is not None else None,
                            timeseries_keys=threshold_keys(spec.thresholds), test_id=nodeid,
                            keep_windows=self.shard is not None,
                            on_window=on_window if outs else None,
                            allowlist=self.options.allow_hosts, redactor=redactor,
                            interval_keys=self.gate_keys(spec.thresholds, spec.regressions))
        self._log(f"start {nodeid}: {plan.describe()} shard {rank + 1}/{world}")
        if self.shard is not None:
            self.shard.attach(runner)
        try:
            measured = runner.run()
        finally:
            outs.end_test(nodeid, store)
        if progress is not None:
            progress.end()
        failure = None
        if self.shard is None:
            result = build_result(nodeid, plan.describe(), measured, judge(
                spec.thresholds, measured.store, measured.duration, aborted=measured.aborted,
                interrupted=measured.interrupted, stages=measured.stages,
                timeline=measured.timeline), shards=1, extra=rule_texts(spec.regressions))
            self.apply_gate(result, spec.thresholds, spec.regressions, measured.timeline)
        else:
            merged = self.shard.finish(nodeid, measured, runner)
            result = build_result(nodeid, plan.describe(), merged.measured, merged.verdict,
                                  shards=merged.shards, extra=merged.extra)
            failure = merged.failure
        self.record(result, measured.timeseries)
        if measured.interrupted or result.verdict.interrupted:
            raise KeyboardInterrupt
        if failure:
            raise ShardError(self._failure(f"{failure}\n{result.failure_message()}"))
        if measured.crashed is not None:
            result.outcome = "error"
            message = self._failure(LoadCrashed.story(nodeid, measured.crashed))
            self._log(message)
            self.write_artifacts()
            raise LoadCrashed(message) from None
        regressed = result.regression_message()
        if not result.ok:
            exc = LoadAborted if result.aborted else ThresholdsFailed
            raise exc(self._failure(result.failure_message()
                                    + (f"\n{regressed}" if regressed else "")))
        if regressed:
            raise RegressionFailed(self._failure(regressed))
        return result

    @property
    def redactor(self) -> Redactor:
        """The session's redactor: every secret the environment has held so far (a fixture may
        restore it before the last artifacts are written), and the credential patterns."""
        return self._learn_secrets()

    def _learn_secrets(self) -> Redactor:
        new = [s for s in env_secrets() if s not in self._secrets]
        if new:
            self._secrets.extend(new)
            self._redactor = Redactor(self._secrets)
            self.outputs.set_redactor(self._redactor)  # --load-out's tags hide them too
        return self._redactor

    def _redacting(self, write: Callable[[str], None]) -> Callable[[str], None]:
        def redacted(text: str) -> None:
            write(self.redactor.redact(text))
        return redacted

    def _failure(self, message: str) -> str:
        return self.redactor.redact(message)

    def note_crash(self, message: str) -> None:
        """run.log gets a shard's crash (the xdist controller: the worker raised LoadCrashed)."""
        self._log(message)

    def check_targets(self) -> None:
        """Raise TargetRefused when a target of the environment (API_URL, WS_URL, DWCP_WS_URL,
        DATABASE_URL) is neither loopback nor allowed: before any load, DNS or connect."""
        allow = self.options.allow_hosts
        for key in ("API_URL", "WS_URL", "DWCP_WS_URL"):
            if os.environ.get(key):
                allow.check_url(os.environ[key], what=key)
        if os.environ.get("DATABASE_URL"):
            allow.check_dsn(os.environ["DATABASE_URL"], what="DATABASE_URL")

    # -- the PR gate --------------------------------------------------------------------------
    def gate_keys(self, thresholds: tuple[Threshold, ...],
                  regressions: Mapping[str, tuple[Rule, ...]] | None) -> tuple[str, ...]:
        """The metric keys whose per-second numbers a run keeps for the gate."""
        return interval_keys(thresholds, regressions, self.gate.rules)

    def apply_gate(self, result: RunResult, thresholds: tuple[Threshold, ...],
                   regressions: Mapping[str, tuple[Rule, ...]] | None,
                   timeline: Timeline | None) -> None:
        """Where the verdict is made (here, or the xdist controller on every shard merged):
        95% intervals, marginal thresholds, and the comparison with the baseline."""
        if result.verdict.interrupted:
            return
        verdict, extra = assess(self.gate, entry=result.to_dict(), verdict=result.verdict,
                                store=result.store, duration=result.duration,
                                timeline=timeline, stages=result.stages,
                                thresholds=thresholds, regressions=regressions,
                                machine=machine_info(), options=self.options.to_dict())
        result.verdict = verdict
        result.outcome = verdict.outcome
        result.extra.update(extra)

    def finish(self) -> list[str]:
        """Once, after the last test: the baseline file (``--load-baseline-save``) and, under
        GitHub Actions, SUMMARY.md appended to ``$GITHUB_STEP_SUMMARY``. What it wrote."""
        if self._finished or self.worker or not self.results:
            return []
        self._finished = True
        summary = self.redactor.redact_obj(self.summary_dict())  # no secret in a baseline
        done: list[str] = []
        if self.gate.save:
            path = save_baseline(self.gate.save, summary, default=self.gate.rules,
                                 previous=self.gate.baseline)
            done.append(f"load baseline written: {path}")
            self._log(f"baseline written to {path}")
        step = os.environ.get("GITHUB_STEP_SUMMARY")
        if step:
            with contextlib.suppress(OSError), open(step, "a", encoding="utf-8") as fh:
                fh.write(markdown.render(summary) + "\n")
                done.append(f"load summary appended to $GITHUB_STEP_SUMMARY ({step})")
        return done

    def show_notices(self) -> None:
        """Print the outputs' warnings not shown yet (each output warns once)."""
        if self.write is None:
            return  # an xdist worker: they go to the controller with the worker's output
        for text in self.outputs.take_notices():
            self.write(f"\npytest-novaload: {text}\n")

    def record(self, result: RunResult, timeseries: Iterable[dict[str, Any]]) -> None:
        """Keep a finished (or merged) result and write the artifacts at once."""
        if result.nodeid not in self.results:
            self.order.append(result.nodeid)
        self.results[result.nodeid] = result
        self._timeseries.extend(self.redactor.redact_obj(line) for line in timeseries)
        self._log(f"finish {result.nodeid}: {result.outcome}"
                  + "".join(f"\n  {o.line()}" for o in result.thresholds))
        for err in result.errors:
            self._log(f"  error {err['type']} x{err['count']}: {err.get('example', '')}")
        self.write_artifacts()

    def set_outcome(self, nodeid: str, outcome: str) -> None:
        """The test's final pytest outcome (a user assertion after load.run can fail it)."""
        res = self.results.get(nodeid)
        if res is not None and res.outcome == "error" and outcome == "failed":
            return  # the run crashed (LoadCrashed fails the test): it stays an error
        if res is not None and res.outcome != "interrupted" and res.outcome != outcome:
            res.outcome = outcome
            self.write_artifacts()

    def note_targets(self) -> None:
        """Keep what the run aims at now: a fixture may restore the environment before the
        last artifacts are written."""
        self.targets.update({k: display_target(os.environ[k]) for k in TARGET_ENV
                             if k in os.environ and k != "API_TOKEN"})
        self._learn_secrets()

    # -- artifacts ------------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path | None:
        if self.options.results is None:
            return None
        if self._run_dir is None:
            stamp = datetime.fromtimestamp(self.started, UTC).strftime("%Y%m%dT%H%M%SZ")
            base = Path(self.options.results)
            if not base.is_absolute():
                base = self.rootdir / base
            path = base / stamp
            n = 1
            while path.exists():
                n += 1
                path = base / f"{stamp}-{n}"
            path.mkdir(parents=True)
            self._run_dir = path
        return self._run_dir

    def _log(self, message: str) -> None:
        directory = self.run_dir
        if directory is None:
            return
        with open(directory / "run.log", "a", encoding="utf-8") as fh:
            stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
            fh.write(f"{stamp} {self.redactor.redact(message)}\n")

    def summary_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "started": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "options": self.options.to_dict(),
            "targets": dict(self.targets),
            "tests": [self.results[n].to_dict() for n in self.order],
        }

    def write_artifacts(self) -> Path | None:
        if not self.results:
            return None  # a session that ran no load test writes no run folder
        directory = self.run_dir
        if directory is None:
            return None
        redactor = self.redactor
        summary = redactor.redact_obj(self.summary_dict())
        self.write_file("summary.json", json.dumps(summary, indent=2, default=str), data=True)
        self.write_file("SUMMARY.md", markdown.render(summary))
        self.write_file("metrics.txt", render_metrics(summary))  # GitLab's metrics report
        self.write_file("report.html", html.render(summary, self._timeseries))
        self.write_file("timeseries.ndjson",  # its lines were redacted as they came
                        "".join(json.dumps(line) + "\n" for line in self._timeseries), data=True)
        return directory

    def write_file(self, name: str, text: str, *, data: bool = False) -> Path | None:
        """Write an artifact of the run folder: the one way files are written, so every one is
        redacted. ``data``: JSON made from ``redactor.redact_obj`` data, where only the known
        secrets are replaced (the patterns could break its syntax; its values are clean)."""
        directory = self.run_dir
        if directory is None:
            return None
        redactor = self.redactor
        text = redactor.redact_literals(text) if data else redactor.redact(text)
        _atomic_write(directory / name, text)
        return directory / name

    def terminal_summaries(self) -> list[str]:
        return [self.redactor.redact(terminal.render(self.results[n])) for n in self.order]


def build_result(nodeid: str, executor: dict[str, Any], measured: Measurements,
                 verdict: Verdict, *, shards: int,
                 extra: dict[str, Any] | None = None) -> RunResult:
    """The result of ``measured`` (one run, or every shard merged) with ``judge``'s verdict
    on it: the same on the controller and on the shards."""
    return RunResult(
        nodeid, measured.store, measured.duration, executor, verdict,
        errors=measured.errors.summary(),
        shards=shards, started=measured.started, finished=measured.finished,
        generator=measured.generator, extra=dict(extra or {}), stages=measured.stages)


def report_properties(result: RunResult) -> list[tuple[str, object]]:
    """The JUnit ``<property>`` entries of a load test: p95/p99 and the error rate."""
    props: list[tuple[str, object]] = []
    for key in ("http_req_duration", "iteration_duration"):
        if key in result.store:
            m = result.metric(key)
            props += [(f"{key}_p95_ms", round(m.p(95), 3)), (f"{key}_p99_ms", round(m.p(99), 3))]
            break
    if "http_req_failed" in result.store:
        props.append(("http_req_failed_rate", result.metric("http_req_failed").rate))
    comparison = result.comparison()
    if comparison is not None:
        from pytest_novaload.gate.report import stat_line
        props.append(("comparison", comparison.verdict))
        props += [(f"comparison {s.metric} {s.stat}", stat_line(s)) for s in comparison.stats]
    return props


def machine_info() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "platform": platform.platform(),
            "python": sys.version.split()[0], "cpus": os.cpu_count()}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
