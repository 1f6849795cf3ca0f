"""``FanoutScheduling``: ``--dist load`` plus fan-out of the load tests to every worker."""

from __future__ import annotations

from itertools import cycle

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScheduling
from xdist.workermanage import WorkerController

from pytest_novaload.xdist.controller import Coordinator


class FanoutScheduling(LoadScheduling):  # type: ignore[misc]  # xdist ships no type hints
    """``--dist load`` plus fan-out: every load test goes to every worker, first and in the
    same order; ordinary tests are load-balanced after them as LoadScheduling does."""

    collection: list[str] | None
    pending: list[int]
    node2pending: dict[WorkerController, list[int]]
    node2collection: dict[WorkerController, list[str]]
    maxschedchunk: int | None

    def __init__(self, config: pytest.Config, log: Producer | None,
                 coordinator: Coordinator) -> None:
        super().__init__(config, log)
        self.coordinator = coordinator
        self.fanout: set[int] = set()

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:
            super().schedule()  # a replacement worker joined: ordinary tests only
            return
        load_ids = self.coordinator.load_ids()
        first = next(iter(self.node2collection.values()))
        if not load_ids.intersection(first):
            super().schedule()
            return
        if not self._check_nodes_have_same_collection():
            self.log("**Different tests collected, aborting run**")
            return
        collection = self.collection = list(first)
        fan = [i for i, nodeid in enumerate(collection) if nodeid in load_ids]
        self.fanout = set(fan)
        self.pending[:] = [i for i in range(len(collection)) if i not in self.fanout]
        if self.maxschedchunk is None:
            self.maxschedchunk = len(collection)
        nodes: list[WorkerController] = self.nodes
        self.coordinator.plan_runs([collection[i] for i in fan],
                                   [str(n.gateway.id) for n in nodes])
        # The whole block at once: a worker runs an item only once the next one is queued.
        for node in nodes:
            self.node2pending[node].extend(fan)
            node.send_runtest_some(fan)
        if self.pending:
            if len(self.pending) < 2 * len(nodes):
                ring = cycle(nodes)
                for _ in range(len(self.pending)):
                    self._send_tests(next(ring), 1)
            else:
                per_node = len(self.pending) // len(nodes)
                chunk = max(min(per_node // 4, self.maxschedchunk), 2)
                for node in nodes:
                    self._send_tests(node, chunk)
        if not self.pending:
            for node in nodes:
                node.shutdown()

    def mark_test_complete(self, node: WorkerController, item_index: int,
                           duration: float = 0) -> None:
        super().mark_test_complete(node, item_index, duration)
        if item_index in self.fanout and self.collection is not None:
            self.coordinator.shard_complete(str(node.gateway.id), self.collection[item_index])

    def mark_test_pending(self, item: str) -> None:
        if self.collection is not None and self.collection.index(item) in self.fanout:
            self.log(f"not re-queuing fan-out load test {item}: a shard never runs twice")
            return
        super().mark_test_pending(item)

    def remove_node(self, node: WorkerController) -> str | None:
        """Fan-out shards are never handed to another worker (the coordinator fails or
        shrinks their load tests); ordinary items are re-queued as usual."""
        pending = self.node2pending.pop(node)
        if not pending:
            return None
        assert self.collection is not None
        crashitem: str | None = None
        if pending[0] not in self.fanout:
            crashitem = self.collection[pending.pop(0)]
        self.pending.extend(i for i in pending if i not in self.fanout)
        for other in self.node2pending:
            self.check_schedule(other)
        return crashitem

