"""One module per executor (k6 names), each holding its config and its runtime side by side.

``EXECUTORS`` maps a k6 executor name to its config class; ``from_args`` resolves the marker's
arguments into a plan and ``plan.run(rt)`` follows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pytest_novaload.engine.executors.arrival_rate import (
    ConstantArrivalRateConfig,
    RampingArrivalRateConfig,
)
from pytest_novaload.engine.executors.config import Args, ExecutorConfig
from pytest_novaload.engine.executors.constant_vus import ConstantVusConfig
from pytest_novaload.engine.executors.per_vu_iterations import PerVuIterationsConfig
from pytest_novaload.engine.executors.ramping_vus import RampingVusConfig
from pytest_novaload.engine.executors.shared_iterations import SharedIterationsConfig

EXECUTORS: Mapping[str, type[ExecutorConfig]] = MappingProxyType({cls.type: cls for cls in (
    RampingVusConfig, ConstantVusConfig, PerVuIterationsConfig, SharedIterationsConfig,
    ConstantArrivalRateConfig, RampingArrivalRateConfig)})
"""Every executor by k6 name, in the order the docs and error messages list them."""

__all__ = ["EXECUTORS", "Args", "ConstantArrivalRateConfig", "ConstantVusConfig",
           "ExecutorConfig", "PerVuIterationsConfig", "RampingArrivalRateConfig",
           "RampingVusConfig", "SharedIterationsConfig"]
