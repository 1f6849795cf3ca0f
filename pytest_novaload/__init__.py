"""pytest-novaload: load tests as ordinary pytest tests.

Mark a test ``@pytest.mark.load(stages=..., thresholds=...)``, take the ``load`` fixture and call
``load.run(user)`` with an async function of the virtual user. See README.md.
"""

from __future__ import annotations

from pytest_novaload.clients.websocket import WsConnectError
from pytest_novaload.engine.vu import VU
from pytest_novaload.errors import (
    ConfigError,
    LoadAborted,
    NovaloadError,
    ShardError,
    ThresholdsFailed,
    UsageError,
)
from pytest_novaload.load import CustomMetric, Load
from pytest_novaload.reporting.model import MetricStats, RunResult

__version__ = "0.1.0"

__all__ = [
    "VU",
    "ConfigError",
    "CustomMetric",
    "Load",
    "LoadAborted",
    "MetricStats",
    "NovaloadError",
    "RunResult",
    "ShardError",
    "ThresholdsFailed",
    "UsageError",
    "WsConnectError",
    "__version__",
]
