"""A fanned-out load test's ONE report, logged on the controller through pytest's hooks
(``logstart``, three ``TestReport``s, ``logfinish``), as DSession does for a crashed item:
one terminal result and one JUnit testcase per load test, whatever the number of shards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pytest_novaload.session import NovaloadSession, report_properties
from pytest_novaload.xdist.fanout import Fanout

__all__ = ["ReportLogger"]


class ReportLogger:
    """The controller's ``Reporter``: the chosen shard's reports (or a synthetic failure),
    with the merged result's JUnit properties; the result recorded with pytest's outcome."""

    def __init__(self, config: pytest.Config, session: NovaloadSession) -> None:
        self.config = config
        self.session = session
        self.nodes: dict[str, Any] = {}          # worker id -> its xdist WorkerController
        self.pytest_session: pytest.Session | None = None

    def report(self, run: Fanout) -> str | None:
        hook = self.config.hook
        wid, data = run.pick()
        reports: list[pytest.TestReport] = [
            hook.pytest_report_from_serializable(config=self.config, data=d) for d in data]
        if run.failure and not any(r.failed for r in reports):
            # A shard crashed after it had sent everything: still a failure.
            reports, wid = self._synthetic(run, run.failure), None
        elif not reports:
            reason = run.cancel.reason if run.cancel is not None else None
            reports = self._synthetic(run, run.failure or reason or
                                      f"{run.nodeid}: no shard reported")
        props = report_properties(run.result) if run.result is not None else []
        for rep in reports:
            if rep.when in ("call", "teardown") and props:  # JUnit reads the teardown's
                have = {k for k, _ in rep.user_properties}
                rep.user_properties = list(rep.user_properties) + [
                    (k, v) for k, v in props if k not in have]
        if run.result is not None:
            outcome = ("failed" if any(r.failed for r in reports) else
                       next((r.outcome for r in reports if r.when == "call"), "passed"))
            self.session.record(run.result, run.timeseries())
            crash = _crash_text(reports)
            if crash is not None:  # a shard's run crashed: run.log says how (redacted)
                self.session.note_crash(crash)
                outcome = "error"
            self.session.set_outcome(run.nodeid, outcome)
        node = self.nodes.get(wid) if wid is not None else None
        location = run.meta.location
        hook.pytest_runtest_logstart(nodeid=run.nodeid, location=location)
        for rep in reports:
            if node is not None:
                rep.node = node  # type: ignore[attr-defined]
            hook.pytest_runtest_logreport(report=rep)
        hook.pytest_runtest_logfinish(nodeid=run.nodeid, location=location)
        return self._stop_reason()

    def _stop_reason(self) -> str | None:
        """-x/--maxfail: pytest's own session counted our report; DSession counts only the
        reports that come from workers, so tell it to stop when pytest says so."""
        dsession = self.config.pluginmanager.getplugin("dsession")
        if dsession is None:
            return None
        should = self.pytest_session.shouldfail if self.pytest_session is not None else False
        if should and not dsession.shouldstop:
            dsession.shouldstop = str(should)
        return str(dsession.shouldstop) if dsession.shouldstop else None

    def _synthetic(self, run: Fanout, message: str) -> list[pytest.TestReport]:
        props = report_properties(run.result) if run.result is not None else []
        common: Mapping[str, Any] = {"nodeid": run.nodeid, "location": run.meta.location,
                                     "keywords": {run.nodeid.rsplit("::", 1)[-1]: 1}}
        return [pytest.TestReport(outcome="passed", longrepr=None, when="setup", **common),
                pytest.TestReport(outcome="failed", longrepr=message, when="call",
                                  user_properties=props, **common),
                pytest.TestReport(outcome="passed", longrepr=None, when="teardown", **common)]


def _crash_text(reports: list[pytest.TestReport]) -> str | None:
    """The LoadCrashed message of a failed call report (a shard's run crashed), else None:
    pytest's ``E   `` lines from the exception's own, the prefix taken off."""
    marker = "LoadCrashed: "
    for rep in reports:
        if not (rep.when == "call" and rep.failed):
            continue
        lines = rep.longreprtext.splitlines()
        for i, line in enumerate(lines):
            at = line.find(marker)
            if at < 0:
                continue
            out = [line[at + len(marker):]]
            for more in lines[i + 1:]:
                if not more.startswith("E "):
                    break
                out.append(more[1:].removeprefix("       ").rstrip())
            return "\n".join(out)
    return None
