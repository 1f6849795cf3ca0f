"""Outputs that stream a run to the tools people already use (k6's ``--out`` convention).

``prometheus-rw=URL`` (``PrometheusRemoteWrite``: k6's series names and labels),
``otlp=URL`` (``OtlpOutput``: OTLP/HTTP metrics in k6's OpenTelemetry mapping) and
``json=PATH`` (``JsonOutput``: k6's JSON lines). Each runs its own thread behind a bounded
queue, so a slow or dead receiver never slows or fails the load. ``parse_out_specs`` and
``build_outputs`` turn ``--load-out`` values into them.
"""

from __future__ import annotations

from pytest_novaload.outputs.config import OutSpec, build_outputs, parse_out_specs, split_env
from pytest_novaload.outputs.jsonout import JsonOutput
from pytest_novaload.outputs.model import DEFAULT_TREND_STATS, Cumulative, SeriesValue
from pytest_novaload.outputs.otlp import OtlpOutput
from pytest_novaload.outputs.promrw import PrometheusRemoteWrite
from pytest_novaload.outputs.sender import Background, OutputReport

__all__ = ["DEFAULT_TREND_STATS", "Background", "Cumulative", "JsonOutput", "OtlpOutput",
           "OutSpec", "OutputReport", "PrometheusRemoteWrite", "SeriesValue", "build_outputs",
           "parse_out_specs", "split_env"]
