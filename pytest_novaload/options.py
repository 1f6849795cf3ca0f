"""The session options: their table (CLI flag, ini name, env var, help), the resolved
``Options`` and the one resolver of the triple.

Precedence, for every option: command line > environment variable > ini > built-in default
(the first that gives a value wins; an empty env var counts as unset). The resolver takes plain
getters, not a pytest config, so it stays testable and pytest stays at the edge (``plugin.py``
reads the config and turns a ``ConfigError`` into a usage error). Every bad value is reported
at once, each naming where it came from, the value, what was expected and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_novaload.allowlist import ALLOW_HOSTS_OPTION, Allowlist
from pytest_novaload.errors import ConfigError
from pytest_novaload.gate.options import GATE_OPTIONS, gate_fields
from pytest_novaload.outputs.config import OutSpec, parse_out_specs, split_env

__all__ = ["ALLOW_INI", "OPTIONS", "OUT_OPTION", "Getter", "Options", "raw_values",
           "resolve_options", "resolve_outputs"]

Getter = Callable[[str], Any]
"""Reads one option by its ini name (pytest's ``config.getoption`` / ``config.getini``)."""

ALLOW_INI = ALLOW_HOSTS_OPTION[1]

# (cli flag, ini name, env var, help); the ini name is also the CLI option's dest
OPTIONS = (
    ("--load-scale", "load_scale", "NOVALOAD_SCALE",
     "multiply every VU and rate target, e.g. 0.01 for a PR gate (default 1)"),
    ("--load-duration-scale", "load_duration_scale", "NOVALOAD_DURATION_SCALE",
     "multiply every duration, e.g. 0.1 (default 1)"),
    ("--load-results", "load_results", "NOVALOAD_RESULTS",
     "folder for run folders (summary.json, SUMMARY.md, ...); 'off' writes none "
     "(default load-results)"),
    ("--load-progress", "load_progress", "NOVALOAD_PROGRESS",
     "live progress while a load runs: auto, tty, lines or off (default auto)"),
    ("--load-barrier-timeout", "load_barrier_timeout", "NOVALOAD_BARRIER_TIMEOUT",
     "xdist: seconds every shard of a load test may take to reach the start barrier "
     "(default 60)"),
    ALLOW_HOSTS_OPTION,
    *GATE_OPTIONS,
)
OUT_OPTION = (
    "--load-out", "load_out", "NOVALOAD_OUT",
    "stream metrics while loads run, k6's --out: prometheus-rw=URL (Prometheus remote "
    "write, k6's series names), otlp=URL (OTLP/HTTP metrics, k6's OpenTelemetry names) or "
    "json=PATH (k6's JSON lines, gzipped for .gz); repeatable")
"""The one repeatable option: CLI repeated, env comma-separated, ini one per line."""
PROGRESS_MODES = ("auto", "tty", "lines", "off")


@dataclass(frozen=True)
class Options:
    """Resolved session options (command line > environment > ini > default)."""

    scale: float = 1.0
    duration_scale: float = 1.0
    results: str | None = "load-results"      # None: write no artifacts
    progress: str = "auto"                    # auto | tty | lines | off
    barrier_timeout: float = 60.0             # xdist: seconds to wait for every shard to start
    allow_hosts: Allowlist = field(default_factory=Allowlist)  # besides loopback
    sources: Mapping[str, str] = field(default_factory=dict)  # option -> where it came from
    baseline: str | None = None               # PR gate: compare with this baseline
    baseline_save: str | None = None          # PR gate: write a baseline file here
    regressions: str | None = None            # PR gate: the default rules' text
    marginal_fails: bool = False              # a marginal threshold fails

    def to_dict(self) -> dict[str, Any]:
        return {"load_scale": self.scale, "load_duration_scale": self.duration_scale,
                "load_results": self.results if self.results is not None else "off",
                "load_barrier_timeout": self.barrier_timeout,
                "load_allow_hosts": list(self.allow_hosts.entries),
                "load_baseline": self.baseline, "load_baseline_save": self.baseline_save,
                "load_regressions": self.regressions,
                "load_marginal_fails": self.marginal_fails,
                "sources": dict(self.sources)}


def raw_values(cli: Getter, ini: Getter, env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Each option that is set, by ini name: (its text, where it came from), the source
    being the flag, the env var's name or ``ini NAME``."""
    raw: dict[str, tuple[str, str]] = {}
    for flag, name, var, _ in OPTIONS:
        value = cli(name)
        if value is not None:
            raw[name] = (str(value), flag)
        elif env.get(var):
            raw[name] = (env[var], var)
        elif ini(name):
            raw[name] = (str(ini(name)), f"ini {name}")
    return raw


def resolve_options(cli: Getter, ini: Getter, env: Mapping[str, str]) -> Options:
    """The session's ``Options``; one ConfigError listing every bad value."""
    raw = raw_values(cli, ini, env)
    problems: list[str] = []

    def number(key: str, default: float = 1.0, example: str = "0.1") -> float:
        if key not in raw:
            return default
        value, source = raw[key]
        try:
            f = float(value)
        except ValueError:
            f = -1.0
        if not f > 0 or f != f or f == float("inf"):
            problems.append(
                f"{source}={value!r}: expected a number greater than 0, e.g. {example}")
            return default
        return f

    scale = number("load_scale")
    duration_scale = number("load_duration_scale")
    barrier_timeout = number("load_barrier_timeout", 60.0, "120")
    results_raw = raw.get("load_results", ("load-results", "default"))[0]
    results = None if results_raw.strip().lower() == "off" else results_raw
    progress, psrc = raw.get("load_progress", ("auto", "default"))
    if progress not in PROGRESS_MODES:
        problems.append(f"{psrc}={progress!r}: expected one of {', '.join(PROGRESS_MODES)}")
        progress = "auto"
    allow_hosts = Allowlist()
    if ALLOW_INI in raw:
        try:
            allow_hosts = Allowlist.parse(raw[ALLOW_INI][0], source=raw[ALLOW_INI][1])
        except ConfigError as exc:
            problems.extend(exc.problems)
    gate = gate_fields(raw, problems)
    if problems:
        raise ConfigError(problems)
    return Options(scale=scale, duration_scale=duration_scale, results=results,
                   progress=progress, barrier_timeout=barrier_timeout,
                   allow_hosts=allow_hosts, sources={k: v[1] for k, v in raw.items()},
                   **gate)


def resolve_outputs(cli: Getter, ini: Getter,
                    env: Mapping[str, str]) -> tuple[list[OutSpec], str | None]:
    """``--load-out`` specs and where they came from (None: no output). The first source that
    gives any spec wins, as for every option and as k6's --out replaces K6_OUT; the same spec
    twice is one output. A ConfigError names every bad spec and its source."""
    flag, name, var, _ = OUT_OPTION
    given = cli(name)
    if given:
        raw, source = [str(x) for x in given], flag
    elif env.get(var, "").strip():
        raw, source = split_env(env[var]), var
    elif ini(name):
        raw, source = [str(x) for x in ini(name)], f"ini {name}"
    else:
        return [], None
    try:
        return parse_out_specs(dict.fromkeys(raw)), source
    except ConfigError as exc:
        raise ConfigError([f"{p} (from {source})" for p in exc.problems]) from None
