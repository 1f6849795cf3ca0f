"""The PR gate's session options (the usual CLI/ini/env triple) and the ``Gate`` they make.

``gate_fields`` checks the raw values (every problem named with where it came from);
``make_gate`` loads the baseline file and checks the one to be written, so a missing or
corrupt file is a usage error naming it before any load runs, and nothing is overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_novaload.errors import BaselineError, ConfigError
from pytest_novaload.gate.assess import Gate
from pytest_novaload.gate.baseline import load_baseline
from pytest_novaload.gate.rules import DEFAULT_RULES, DEFAULT_RULES_TEXT, parse_default_rules

__all__ = ["GATE_OPTIONS", "gate_fields", "make_gate"]

GATE_OPTIONS = (
    ("--load-baseline", "load_baseline", "NOVALOAD_BASELINE",
     "compare every load test with its entry in PATH (a baseline file, a run folder or a "
     "summary.json); a regressed test fails"),
    ("--load-baseline-save", "load_baseline_save", "NOVALOAD_BASELINE_SAVE",
     "write this run's baseline file to PATH (entries of tests that did not run are kept)"),
    ("--load-regressions", "load_regressions", "NOVALOAD_REGRESSIONS",
     f"default regression rules (default '{DEFAULT_RULES_TEXT}')".replace("%", "%%")),
    ("--load-marginal-fails", "load_marginal_fails", "NOVALOAD_MARGINAL_FAILS",
     "yes: a threshold whose 95%% interval straddles its limit fails (default no)"),
)
_YES = ("1", "yes", "true", "on")
_NO = ("0", "no", "false", "off")


def gate_fields(raw: Mapping[str, tuple[str, str]], problems: list[str]) -> dict[str, Any]:
    """The ``Options`` fields of the gate from raw (value, source) pairs; problems appended."""
    out: dict[str, Any] = {}
    for key, field in (("load_baseline", "baseline"), ("load_baseline_save", "baseline_save")):
        if key in raw:
            out[field] = raw[key][0]
    if "load_regressions" in raw:
        text, source = raw["load_regressions"]
        try:
            parse_default_rules(text, what=source)
        except ConfigError as e:
            problems.extend(p if p.startswith(source) else f"{source}: {p}" for p in e.problems)
        else:
            out["regressions"] = text
    if "load_marginal_fails" in raw:
        value, source = raw["load_marginal_fails"]
        if value.strip().lower() in _YES:
            out["marginal_fails"] = True
        elif value.strip().lower() not in _NO:
            problems.append(f"{source}={value!r}: expected yes or no (also 1/0, true/false, "
                            "on/off)")
    return out


def make_gate(baseline: str | None, save: str | None, regressions: str | None,
              marginal_fails: bool) -> Gate:
    """The session's Gate; BaselineError (naming the file) for a missing or corrupt
    baseline, or a baseline-save path that holds something else."""
    loaded = load_baseline(baseline) if baseline else None
    if save:
        target = Path(save)
        if target.is_dir():
            raise BaselineError(f"--load-baseline-save '{save}' is a folder: give a file "
                                "name, e.g. perf/baseline.json")
        if target.exists():
            load_baseline(target, what="baseline to update")  # corrupt: refuse, keep it
    rules = parse_default_rules(regressions) if regressions else DEFAULT_RULES
    return Gate(baseline=loaded, save=save, rules=rules, marginal_fails=marginal_fails)
