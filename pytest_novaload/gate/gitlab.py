"""GitLab's metrics report (``artifacts:reports:metrics``): one ``name value`` line per key
number per load test, in the OpenMetrics text format, so the merge-request widget shows each
value against the target branch's.

GitLab reads each line as a name and a value, drops ``#`` comments and compares the values as
strings, so names carry the test (no labels), values are rounded to 4 significant digits (a
change in the 5th digit is noise, not news), and the file ends with OpenMetrics' ``# EOF``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from pytest_novaload.gate.baseline import threshold_keys
from pytest_novaload.gate.seed import throughput

__all__ = ["metric_name", "render_metrics"]

_BAD = re.compile(r"[^a-zA-Z0-9_]+")


def metric_name(*parts: str) -> str:
    """An OpenMetrics name from free text: ``[a-zA-Z_][a-zA-Z0-9_]*``, lowercase, ``_``-joined."""
    text = "_".join(_BAD.sub("_", p).strip("_") for p in parts if p)
    text = re.sub(r"_+", "_", text).lower() or "unnamed"
    return text if not text[0].isdigit() else "_" + text


def _test_part(nodeid: str) -> str:
    path, _, name = nodeid.partition("::")
    stem = path.rsplit("/", 1)[-1].removesuffix(".py")
    return f"{stem}_{name}" if name else stem


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e15 else f"{x:.6e}"


def render_metrics(summary: Mapping[str, Any], *, prefix: str = "novaload") -> str:
    """The metrics report text for a summary.json dict."""
    lines: list[str] = []
    seen: set[str] = set()

    def emit(name: str, value: float | None) -> None:
        if value is None:
            return
        unique, n = name, 1
        while unique in seen:
            n += 1
            unique = f"{name}_{n}"
        seen.add(unique)
        lines.append(f"{unique} {_fmt(value)}")

    for test in summary.get("tests") or ():
        if not isinstance(test, Mapping):
            continue
        t = _test_part(str(test.get("nodeid", "")))
        metrics: Mapping[str, Any] = test.get("metrics") or {}
        keys = [k for k in threshold_keys(test) if k in metrics]
        for extra in ("http_req_duration", "http_req_failed"):
            if extra in metrics and extra not in keys:
                keys.append(extra)
        for key in keys:
            entry = metrics[key]
            kind = entry.get("type")
            if kind == "trend":
                for stat, suffix in (("p(95)", "p95_ms"), ("p(99)", "p99_ms")):
                    emit(metric_name(prefix, t, key, suffix), _num(entry.get(stat)))
            elif kind == "rate":
                emit(metric_name(prefix, t, key, "rate"), _num(entry.get("rate")))
            elif kind == "counter":
                emit(metric_name(prefix, t, key, "per_s"), _num(entry.get("rate")))
            elif kind == "gauge":
                emit(metric_name(prefix, t, key, "max"), _num(entry.get("max")))
        tp = throughput(test)
        name = metric_name(prefix, t, str(tp["metric"]), "per_s")
        if name not in seen:
            emit(name, _num(tp.get("rate")))
        emit(metric_name(prefix, t, "vus_peak"), _num(tp.get("at_vus")))
        ths = [x for x in test.get("thresholds") or () if isinstance(x, Mapping)]
        emit(metric_name(prefix, t, "thresholds_failed"),
             float(sum(1 for x in ths if not x.get("ok"))))
        comparison = test.get("comparison")
        if isinstance(comparison, Mapping):
            stats = [s for s in comparison.get("stats") or () if isinstance(s, Mapping)]
            emit(metric_name(prefix, t, "regressions"),
                 float(sum(1 for s in stats if s.get("verdict") == "regressed")))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
