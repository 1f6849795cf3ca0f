"""The baseline file: what a run measured, kept to judge later runs against it.

Plain, diffable JSON (sorted keys, two-space indent, ``schema_version``), one entry per load
test nodeid. An entry holds the seed plan's baseline measures when the test is one of the four
suites (``seed.py``), every metric its thresholds name, the untagged metrics, throughput at the
peak VUs or rate, each with its summary stats, its 95% intervals (``ci95``) and what they were
derived from (``ci95_basis``: n, windows, block, batches, se) so a later comparison is
noise-aware, and the executor plan, shards, options (scale) and machine it was taken with.

Saving over an existing baseline (or with ``--load-baseline`` given) keeps the judged values of
up to ``MAX_RUNS - 1`` earlier compatible runs of each test in the entry's ``runs`` (oldest
first): from three runs on, a comparison measures the run-to-run spread the within-run
intervals cannot see (another runner, a noisy neighbour for a whole run) and judges against
their mean. An incompatible earlier entry (another plan, scale, shards or machine kind, or a
run that failed) starts the history over.

``load_baseline(PATH)`` reads a baseline file, a run folder (its ``summary.json``) or a
``summary.json``; a missing or corrupt PATH raises ``BaselineError`` naming the file.

Compatibility of two entries (refused, or compared with a warning) is ``compat.py``'s.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_novaload.errors import BaselineError
from pytest_novaload.gate import seed
from pytest_novaload.gate.compat import compatibility, machine_kind
from pytest_novaload.gate.rules import DEFAULT_RULES, DefaultRules, rules_for_test

__all__ = [
    "BASELINE_KIND",
    "MAX_RUNS",
    "SCHEMA_VERSION",
    "Baseline",
    "baseline_entry",
    "baseline_from_summary",
    "carry_runs",
    "compatibility",
    "dump_baseline",
    "load_baseline",
    "load_summary",
    "machine_kind",
    "metric_kinds",
    "rules_of",
    "save_baseline",
    "threshold_keys",
]

SCHEMA_VERSION = 1
MAX_RUNS = 10
"""Runs a baseline entry speaks for: its own and up to nine earlier ones (``runs``)."""
BASELINE_KIND = "pytest-novaload baseline"
_FIX = ("pass a baseline file (written by --load-baseline-save), a run folder under "
        "load-results/ or its summary.json")


@dataclass
class Baseline:
    """A loaded baseline: entries by nodeid, plus where they came from."""

    path: str
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    source: str = "baseline"
    """"baseline" (a baseline file) or "summary" (a run folder or summary.json)."""

    def entry(self, nodeid: str) -> dict[str, Any] | None:
        return self.tests.get(nodeid)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "kind": BASELINE_KIND,
                "created": self.created, "machine": self.machine, "options": self.options,
                "tests": self.tests}


def threshold_keys(test: Mapping[str, Any]) -> list[str]:
    """The metric keys a summary.json test entry's thresholds name, in order, once each."""
    return list(dict.fromkeys(str(t["metric"]) for t in test.get("thresholds") or ()
                              if isinstance(t, Mapping) and "metric" in t))


def metric_kinds(test: Mapping[str, Any]) -> dict[str, str]:
    """{metric key: kind} of a summary.json test entry."""
    return {k: str(v.get("type")) for k, v in (test.get("metrics") or {}).items()
            if isinstance(v, Mapping)}


def _recorded_rules(test: Mapping[str, Any]) -> dict[str, Any] | None:
    """The marker's ``regressions=`` as a test entry records it (rule texts), if it does."""
    value = test.get("regressions")
    return dict(value) if isinstance(value, Mapping) else None


def rules_of(test: Mapping[str, Any],
             default: DefaultRules = DEFAULT_RULES) -> dict[str, tuple[Any, ...]]:
    """The rules that judge a summary.json test entry or a baseline entry (its recorded
    ``regressions`` when it has them, else ``default``); a recorded rule that no longer
    parses counts as none."""
    from pytest_novaload.errors import ConfigError
    from pytest_novaload.gate.rules import parse_regressions

    recorded = _recorded_rules(test)
    marker = None
    if recorded is not None:
        try:
            marker = parse_regressions(recorded)
        except ConfigError:
            marker = None
    return rules_for_test(metric_kinds(test), threshold_keys(test), marker, default)


def baseline_entry(test: Mapping[str, Any], *, machine: Mapping[str, Any] | None = None,
                   options: Mapping[str, Any] | None = None,
                   default: DefaultRules = DEFAULT_RULES,
                   extra_keys: Iterable[str] = ()) -> dict[str, Any]:
    """One baseline entry from one summary.json test entry."""
    metrics: Mapping[str, Any] = test.get("metrics") or {}
    recorded = _recorded_rules(test)
    rules = rules_of(test, default)
    measures = seed.measures(test)
    keys = {*threshold_keys(test), *rules, *extra_keys,
            *(m["metric"] for m in measures.get("items", ()) if m.get("metric")),
            *(k for k in metrics if "{" not in k)}
    entry: dict[str, Any] = {
        "executor": test.get("executor") or {},
        "shards": test.get("shards", 1),
        "duration_s": test.get("duration_s"),
        "outcome": test.get("outcome"),
        "started": test.get("started", ""),
        "metrics": {k: dict(metrics[k]) for k in sorted(keys) if k in metrics},
        "thresholds": [{"metric": t.get("metric"), "expression": t.get("expression"),
                        "observed": t.get("observed"), "ok": t.get("ok")}
                       for t in test.get("thresholds") or () if isinstance(t, Mapping)],
        "throughput": seed.throughput(test),
        "machine": dict(machine or {}),
        "options": {k: v for k, v in (options or {}).items() if k != "sources"},
    }
    if measures:
        entry["measures"] = measures
    if recorded is not None:
        entry["regressions"] = recorded
    return entry


def _snapshot(entry: Mapping[str, Any], default: DefaultRules) -> dict[str, Any]:
    """What a later comparison needs of one run: the value of every statistic its rules
    judge, by metric key (``{"started", "values": {key: {stat: value}}}``)."""
    from pytest_novaload.gate.values import stat_value

    metrics: Mapping[str, Any] = entry.get("metrics") or {}
    duration = entry.get("duration_s")
    seconds = float(duration) if isinstance(duration, int | float) else None
    values: dict[str, dict[str, float]] = {}
    for key, rules in rules_of(entry, default).items():
        for rule in rules:
            v = stat_value(metrics.get(key), rule.stat, seconds)
            if v is not None and math.isfinite(v):
                values.setdefault(key, {})[rule.stat] = v
    return {"started": entry.get("started", ""), "values": values}


def carry_runs(new: dict[str, Any], old: Mapping[str, Any] | None, *,
               default: DefaultRules = DEFAULT_RULES) -> dict[str, Any]:
    """``new`` (a baseline entry) with the ``runs`` history of ``old``, the same test's
    earlier entry, plus ``old`` itself, when the two are fully comparable (same plan, scale,
    shards, machine kind, and ``old`` did not fail); otherwise ``new`` starts over."""
    if old is None:
        return new
    level, _ = compatibility(old, new, machine=new.get("machine") or {},
                             options=new.get("options") or {})
    if level != "ok":
        return new
    earlier = [r for r in old.get("runs") or () if isinstance(r, Mapping)
               and isinstance(r.get("values"), Mapping)]
    runs = [*earlier, _snapshot(old, default)][-(MAX_RUNS - 1):]
    return {**new, "runs": runs}


def baseline_from_summary(summary: Mapping[str, Any], *,
                          default: DefaultRules = DEFAULT_RULES) -> dict[str, Any]:
    """A whole baseline file (as a dict) from a summary.json dict."""
    machine = dict(summary.get("machine") or {})
    options = {k: v for k, v in (summary.get("options") or {}).items() if k != "sources"}
    tests = {str(t["nodeid"]): baseline_entry(t, machine=machine, options=options,
                                              default=default)
             for t in summary.get("tests") or () if isinstance(t, Mapping) and "nodeid" in t}
    return {"schema_version": SCHEMA_VERSION, "kind": BASELINE_KIND,
            "created": str(summary.get("finished") or summary.get("started") or ""),
            "machine": machine, "options": options, "tests": tests}


def dump_baseline(baseline: Mapping[str, Any]) -> str:
    """The file's text: sorted keys, two-space indent, a final newline (clean diffs)."""
    return json.dumps(baseline, indent=2, sort_keys=True, allow_nan=False,
                      default=str) + "\n"


def save_baseline(path: str | os.PathLike[str], summary: Mapping[str, Any], *,
                  default: DefaultRules = DEFAULT_RULES, keep_others: bool = True,
                  previous: Baseline | None = None) -> Path:
    """Write (atomically) the baseline of ``summary`` to ``path``.

    With ``keep_others`` the entries of tests this run did not run (``-k``, a subset) are kept
    from the existing file, so a partial run loses nothing. Each entry carries the history of
    the earlier entry it replaces (``carry_runs``): the existing file's, else ``previous``'s
    (the baseline this run was compared with, e.g. main's last one downloaded by CI). A
    corrupt existing file is an error (BaselineError), never silently overwritten.
    """
    target = Path(path)
    new = baseline_from_summary(summary, default=default)
    old = load_baseline(target) if target.exists() else None
    if old is not None and old.source != "baseline":
        old = None
    earlier = old if old is not None else previous
    if earlier is not None:
        new["tests"] = {k: carry_runs(v, earlier.entry(k), default=default)
                        for k, v in new["tests"].items()}
    if keep_others and old is not None:
        new["tests"] = {**old.tests, **new["tests"]}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(dump_baseline(_finite(new)), encoding="utf-8")
    os.replace(tmp, target)
    return target


def _finite(value: Any) -> Any:
    """NaN and infinities become None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{what} '{path}': no such file or directory; {_FIX}") from None
    except IsADirectoryError:
        raise BaselineError(f"{what} '{path}' is a directory; {_FIX}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BaselineError(f"{what} '{path}' cannot be read ({e}); {_FIX}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BaselineError(f"{what} '{path}' is not valid JSON (line {e.lineno}, column "
                            f"{e.colno}: {e.msg}); {_FIX}") from None


def _resolve(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if p.is_dir():
        summary = p / "summary.json"
        if not summary.exists():
            raise BaselineError(f"{what} '{p}' is a folder without a summary.json; {_FIX}")
        return summary
    return p


def load_summary(path: str | os.PathLike[str], *, what: str = "run") -> dict[str, Any]:
    """A summary.json dict from a run folder or the file; BaselineError naming the file."""
    p = _resolve(path, what)
    data = _read_json(p, what)
    if (not isinstance(data, dict) or not isinstance(data.get("tests"), list)
            or data.get("kind") == BASELINE_KIND):
        raise BaselineError(f"{what} '{p}' is not a summary.json (expected an object with a "
                            "'tests' list, as pytest-novaload writes in each run folder); "
                            f"{_FIX}")
    _check_version(data, p, what)
    return data


def _check_version(data: Mapping[str, Any], p: Path, what: str) -> None:
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BaselineError(f"{what} '{p}' has no integer schema_version; {_FIX}")
    if version > SCHEMA_VERSION:
        raise BaselineError(f"{what} '{p}' has schema_version {version}, newer than this "
                            f"pytest-novaload reads ({SCHEMA_VERSION}): upgrade pytest-novaload")


def load_baseline(path: str | os.PathLike[str], *, what: str = "baseline") -> Baseline:
    """A Baseline from a baseline file, a run folder or a summary.json."""
    p = _resolve(path, what)
    data = _read_json(p, what)
    if not isinstance(data, dict):
        raise BaselineError(f"{what} '{p}' holds a JSON {type(data).__name__}, not an object; "
                            f"{_FIX}")
    tests = data.get("tests")
    if isinstance(tests, list):
        _check_version(data, p, what)
        built = baseline_from_summary(data)
        return Baseline(str(p), built["tests"], built["machine"], built["options"],
                        built["created"], source="summary")
    if not isinstance(tests, dict) or data.get("kind") != BASELINE_KIND:
        raise BaselineError(f"{what} '{p}' is neither a baseline file (kind "
                            f"'{BASELINE_KIND}', 'tests' by nodeid) nor a summary.json; {_FIX}")
    _check_version(data, p, what)
    bad = [k for k, v in tests.items() if not isinstance(v, dict)
           or not isinstance(v.get("metrics"), dict)]
    if bad:
        raise BaselineError(f"{what} '{p}': entry '{bad[0]}' has no 'metrics' object (the "
                            f"file is damaged); restore it from version control or {_FIX}")
    return Baseline(str(p), dict(tests), dict(data.get("machine") or {}),
                    dict(data.get("options") or {}), str(data.get("created") or ""))
