"""What every protocol client is built from: the VU's metric store, its id and the targets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_novaload.metrics import MetricStore


@dataclass
class ClientContext:
    """Per-VU inputs of a client: where to record, who is calling, which targets to use."""

    store: MetricStore
    vu_id: int
    env: Mapping[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    # Called with (error type, full message) on a transport error, so the run's summary can
    # show one real example per error type (e.g. "ConnectError: [Errno 111] Connection refused").
    on_error: Callable[[str, str], None] | None = None
