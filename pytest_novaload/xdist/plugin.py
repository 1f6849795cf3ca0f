"""The xdist hooks: ``WorkerPlugin`` on each worker, ``ControllerPlugin`` on the controller.

Registered by pytest_novaload.plugin only when xdist distributes the session.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from _pytest.runner import runtestprotocol
from xdist.remote import Producer
from xdist.scheduler import LoadScheduling
from xdist.workermanage import WorkerController

from pytest_novaload.session import TARGET_ENV, NovaloadSession
from pytest_novaload.thresholds import Threshold
from pytest_novaload.xdist.controller import Coordinator
from pytest_novaload.xdist.report import ReportLogger
from pytest_novaload.xdist.scheduler import FanoutScheduling
from pytest_novaload.xdist.wire import LoadMeta, Meta
from pytest_novaload.xdist.worker import WorkerShard

ShardMetaFn = Callable[[pytest.Item], tuple[dict[str, Any], tuple[Threshold, ...],
                                            dict[str, list[str]] | None] | None]
"""plugin.py's view of an item: (executor description, thresholds, the marker's regression
rules) for a load test, else None."""


class WorkerPlugin:
    """Registered on xdist workers: describes the load tests, runs their shards."""

    def __init__(self, shard: WorkerShard, meta_of: ShardMetaFn) -> None:
        self.shard = shard
        self.meta_of = meta_of

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Sent before xdist's own collectionfinish (tryfirst, same gateway): the controller
        # knows the load tests when it schedules.
        metas: dict[str, LoadMeta] = {}
        for item in session.items:
            meta = self.meta_of(item)
            if meta is None:
                continue
            executor, thresholds, rules = meta
            path, line, name = item.location
            metas[item.nodeid] = LoadMeta((str(path), line, name), executor, thresholds, rules)
        self.shard.load_ids = set(metas)
        self.shard.send(Meta(metas))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item,
                                nextitem: pytest.Item | None) -> bool | None:
        if item.nodeid not in self.shard.load_ids:
            return None
        # Run without logging: the controller logs one report for all shards.
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        hook = item.config.hook
        data = [hook.pytest_report_to_serializable(config=item.config, report=r)
                for r in reports]
        self.shard.done(item.nodeid, data)
        return True


class ControllerPlugin:
    """Registered on the xdist controller: side channels, the fan-out scheduler, node loss."""

    def __init__(self, config: pytest.Config, session: NovaloadSession) -> None:
        self.config = config
        self.reports = ReportLogger(config, session)
        self.coordinator = Coordinator(session, self.reports)

    @pytest.hookimpl
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.reports.pytest_session = session

    @pytest.hookimpl
    def pytest_configure_node(self, node: WorkerController) -> None:
        channel = node.gateway.newchannel()
        node.workerinput["novaload_channel"] = channel
        node.workerinput["novaload_env"] = {k: os.environ[k] for k in TARGET_ENV
                                            if k in os.environ}
        wid = str(node.gateway.id)
        self.reports.nodes[wid] = node
        self.coordinator.connect(wid, channel)

    @pytest.hookimpl
    def pytest_xdist_make_scheduler(self, config: pytest.Config,
                                    log: Producer) -> LoadScheduling | None:
        if config.getvalue("dist") == "load":
            return FanoutScheduling(config, log, self.coordinator)
        return None

    @pytest.hookimpl
    def pytest_xdist_node_collection_finished(self, node: WorkerController,
                                              ids: Sequence[str]) -> None:
        dist = self.config.getvalue("dist")
        if dist == "load":
            return
        loads = sorted(self.coordinator.load_ids().intersection(ids))
        if loads:
            raise pytest.UsageError(
                f"--dist {dist} cannot run load tests ({len(loads)} collected, e.g. "
                f"{loads[0]}): pytest-novaload runs every load test on all workers at once "
                "and needs --dist load, the default of -n. Use -n N (or --dist load), "
                "deselect the load tests with -m 'not load', or run them without xdist (-n 0)")

    @pytest.hookimpl
    def pytest_testnodedown(self, node: WorkerController, error: object | None) -> None:
        output = getattr(node, "workeroutput", None) or {}
        self.coordinator.session.output_notes += [
            f"pytest-novaload: {line}" for line in output.get("novaload_outputs", ())]
        self.coordinator.node_down(str(node.gateway.id), error)

    @pytest.hookimpl(tryfirst=True)  # before DSession tears the workers down
    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self.coordinator.close()
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.coordinator.interrupt()
