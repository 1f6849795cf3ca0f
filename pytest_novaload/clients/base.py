"""What every protocol client is built from: the VU's metric store, its id and the targets."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_novaload.allowlist import Allowlist

if TYPE_CHECKING:
    from pytest_novaload.metrics import MetricStore

#: Receives (metric, error type, example) for each failed sample: `ErrorLog.record` in a run.
ErrorSink = Callable[[str, str, str], None]
Tags = tuple[tuple[str, str], ...]


def no_tags() -> Tags:
    return ()


def with_tags(base: Tags, own: Tags) -> Tags:
    """``own`` tags plus the VU's ``base`` ones (scenario, group), sorted as the store keeps
    them; called once per new tag set, never per sample."""
    return tuple(sorted((*base, *own))) if base else own


@dataclass
class ClientContext:
    """Per-VU inputs of a client: where to record, who is calling, which targets to use."""

    store: MetricStore
    vu_id: int
    env: Mapping[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    # Told the cause of every failed sample of a client's rate metric (http_req_failed,
    # ws_failed, db_query_failed), so the run's summary counts errors by type with one real
    # example each (e.g. "ConnectError: [Errno 111] Connection refused (GET http://...)").
    on_error: ErrorSink | None = None
    # The VU's tags for every sample right now: ("scenario", name) and, inside vu.group,
    # ("group", path), as k6 tags every sample; one tuple, swapped when they change.
    base_tags: Callable[[], Tags] = no_tags
    # The hosts load may go to besides loopback: every client checks each target once, before
    # any DNS lookup or connection (pytest_novaload.allowlist; default: loopback only).
    allowlist: Allowlist = field(default_factory=Allowlist)

    def report(self, metric: str, error_type: str, example: str) -> None:
        """Hand one failure's cause to ``on_error``: the one call every client makes. A broken
        callback is ignored, so that it never changes the outcome of the call it describes."""
        if self.on_error is not None:
            with contextlib.suppress(Exception):
                self.on_error(metric, error_type, example)
