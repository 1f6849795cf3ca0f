"""Whether a baseline entry and a run can be compared.

Compatibility (``compatibility``), from the strongest reason down:

- **incomparable** (refused, the test's verdict says so and nothing is judged): another
  executor type; another stage shape (number of stages, or targets and durations not in the
  same proportions, whatever the scale); either run interrupted. Latency under a ramp to 10K
  users says nothing about a constant 100.
- **warning** (compared, the warning shown beside the verdict): another scale
  (``load_scale``/``load_duration_scale`` or the plan's magnitudes), another number of shards,
  another machine kind (platform, CPU count, Python minor version; the hostname alone is not a
  kind: CI runners are named at random), a baseline that failed its thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pytest_novaload.units import parse_duration

__all__ = ["compatibility", "machine_kind"]


def _seconds(value: Any) -> float:
    try:
        return parse_duration(value)
    except Exception:
        return math.nan


def _shape(executor: Mapping[str, Any]) -> list[tuple[float, float]] | None:
    stages = executor.get("stages")
    if not isinstance(stages, list):
        return None
    out = []
    for s in stages:
        if isinstance(s, Mapping):
            out.append((_seconds(s.get("duration")), float(s.get("target", 0))))
        elif isinstance(s, list | tuple) and len(s) >= 2:
            out.append((_seconds(s[0]), float(s[1])))
    return out


def _magnitudes(executor: Mapping[str, Any]) -> dict[str, float]:
    """Peak target and total duration, whatever the executor."""
    shape = _shape(executor)
    if shape:
        return {"peak": max(t for _, t in shape), "duration": sum(d for d, _ in shape)}
    out: dict[str, float] = {}
    for key in ("vus", "rate", "iterations"):
        if isinstance(executor.get(key), int | float):
            out[key] = float(executor[key])
    for key in ("duration", "time_unit"):
        if key in executor:
            out[key] = _seconds(executor[key])
    return out


def _same_shape(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    if len(a) != len(b):
        return False
    peak_a = max((t for _, t in a), default=0.0) or 1.0
    peak_b = max((t for _, t in b), default=0.0) or 1.0
    tot_a = sum(d for d, _ in a) or 1.0
    tot_b = sum(d for d, _ in b) or 1.0
    tol_t = max(0.02, 1.5 / min(peak_a, peak_b))   # one VU of rounding at the smaller scale
    for (da, ta), (db, tb) in zip(a, b, strict=True):
        if abs(ta / peak_a - tb / peak_b) > tol_t or abs(da / tot_a - db / tot_b) > 0.02:
            return False
    return True


def machine_kind(machine: Mapping[str, Any]) -> tuple[str, str, str]:
    """(platform without the kernel build, CPUs, Python major.minor): what makes numbers
    comparable; the hostname is not part of it."""
    plat = str(machine.get("platform", "")).split("-")[0]
    python = ".".join(str(machine.get("python", "")).split(".")[:2])
    return plat, str(machine.get("cpus", "")), python


def compatibility(base: Mapping[str, Any], test: Mapping[str, Any], *,
                  machine: Mapping[str, Any] | None = None,
                  options: Mapping[str, Any] | None = None) -> tuple[str, list[str]]:
    """("ok" | "warn" | "incomparable", reasons) for a baseline entry against a test entry."""
    refuse: list[str] = []
    warn: list[str] = []
    be, te = base.get("executor") or {}, test.get("executor") or {}
    if be.get("type") != te.get("type"):
        refuse.append(f"another executor: {te.get('type')} now, {be.get('type')} in the "
                      "baseline")
    else:
        sa, sb = _shape(te), _shape(be)
        if sa is not None and sb is not None and not _same_shape(sa, sb):
            refuse.append(f"another stage shape: {te.get('stages')} now, {be.get('stages')} "
                          "in the baseline")
        ma, mb = _magnitudes(te), _magnitudes(be)
        diff = [k for k in sorted(set(ma) | set(mb)) if not _close(ma.get(k), mb.get(k))]
        if diff and not refuse:
            warn.append("another plan scale: " + ", ".join(
                f"{k} {_fmt(ma.get(k))} now, {_fmt(mb.get(k))} in the baseline" for k in diff))
    for who, entry in (("this run", test), ("the baseline run", base)):
        if entry.get("outcome") == "interrupted":
            refuse.append(f"{who} was interrupted")
    if base.get("outcome") == "failed":
        warn.append("the baseline run failed its thresholds")
    bo, to = base.get("options") or {}, options or {}
    for key in ("load_scale", "load_duration_scale"):
        if key in bo and key in to and not _close(_num(bo[key]), _num(to[key])):
            warn.append(f"another {key}: {to[key]} now, {bo[key]} in the baseline")
    if int(base.get("shards") or 1) != int(test.get("shards") or 1):
        warn.append(f"another number of shards: {test.get('shards') or 1} now, "
                    f"{base.get('shards') or 1} in the baseline")
    bm, tm = base.get("machine") or {}, machine or {}
    if bm and tm and machine_kind(bm) != machine_kind(tm):
        warn.append("another machine kind: {} now, {} in the baseline".format(
            "/".join(machine_kind(tm)), "/".join(machine_kind(bm))))
    if refuse:
        return "incomparable", refuse + warn
    return ("warn" if warn else "ok"), warn


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"
