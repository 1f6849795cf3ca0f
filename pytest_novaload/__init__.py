"""pytest-novaload: load tests as ordinary pytest tests.

Mark a test ``@pytest.mark.load(stages=..., thresholds=...)``, take the ``load`` fixture and call
``load.run(user)`` with an async function of the virtual user. See README.md.
"""

from __future__ import annotations

from pytest_novaload.errors import (
    ConfigError,
    LoadAborted,
    NovaloadError,
    ShardError,
    ThresholdsFailed,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "LoadAborted",
    "NovaloadError",
    "ShardError",
    "ThresholdsFailed",
    "UsageError",
    "__version__",
]
