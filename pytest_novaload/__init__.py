"""pytest-novaload: load tests as ordinary pytest tests.

Mark a test ``@pytest.mark.load(stages=..., thresholds=...)``, take the ``load`` fixture and call
``load.run(user)`` with an async function of the virtual user. See README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_novaload.errors import (
    ConfigError,
    LoadAborted,
    NovaloadError,
    ShardError,
    ThresholdsFailed,
    UsageError,
)

if TYPE_CHECKING:
    from pytest_novaload.clients.websocket import WsConnectError
    from pytest_novaload.engine.vu import VU
    from pytest_novaload.load import CustomMetric, Load
    from pytest_novaload.reporting.model import MetricStats, RunResult

__version__ = "0.1.0"

# Types for annotating tests (``def test_x(load: Load)``), imported on first use so that
# importing one client never pulls in another client's library.
_LAZY = {
    "VU": "pytest_novaload.engine.vu",
    "CustomMetric": "pytest_novaload.load",
    "Load": "pytest_novaload.load",
    "MetricStats": "pytest_novaload.reporting.model",
    "RunResult": "pytest_novaload.reporting.model",
    "WsConnectError": "pytest_novaload.clients.websocket",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_novaload' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(module), name)

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
