"""The ``@pytest.mark.load(...)`` keywords, parsed and checked at the boundary.

``LoadSpec.parse(kwargs)`` validates everything at once and raises one ``ConfigError`` listing
every problem: it infers the executor from the shortcuts, checks which keywords belong to it,
and hands the values to the executor's config (``engine/executors/<name>.py``), which reads
them; thresholds and client options go to their own parsers. ``spec.plan(scale=...,
duration_scale=...)`` gives the scaled, pure executor plan the engine follows.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_novaload.display import show
from pytest_novaload.engine.executors import EXECUTORS, Args, ExecutorConfig
from pytest_novaload.errors import ConfigError
from pytest_novaload.gate.rules import Rule, parse_regressions
from pytest_novaload.limits import plan_problems, screen
from pytest_novaload.metrics.timeline import find_stage, spans_of, strip_stage
from pytest_novaload.thresholds import Threshold, parse_thresholds
from pytest_novaload.thresholds.kinds import check_builtin_kinds

COMMON_KEYWORDS = frozenset({"executor", "thresholds", "regressions", "http", "ws", "db"})
ALL_EXECUTOR_KEYWORDS = frozenset().union(*(cls.keywords() for cls in EXECUTORS.values()))
ALL_KEYWORDS = COMMON_KEYWORDS | ALL_EXECUTOR_KEYWORDS


@dataclass(frozen=True)
class LoadSpec:
    """A validated marker: the executor's raw arguments, thresholds and client options."""

    executor: str
    args: Mapping[str, Any]
    thresholds: tuple[Threshold, ...] = ()
    client_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    regressions: Mapping[str, tuple[Rule, ...]] | None = None
    """The marker's ``regressions=`` (None: the session's default rules)."""

    @classmethod
    def parse(cls, kwargs: Mapping[str, Any], args: tuple[Any, ...] = ()) -> LoadSpec:
        """Check every keyword of the marker; raise one ConfigError listing all problems."""
        problems: list[str] = []
        if args:
            problems.append(
                f"positional arguments {show(args)}: the load marker takes keywords only, "
                "e.g. @pytest.mark.load(stages=[('30s', 100)])")
        for key, value in kwargs.items():  # bounded values first: every check below can run
            problems.extend(screen(show(key), value))
        if problems:
            raise ConfigError(problems)
        unknown = sorted(set(kwargs) - ALL_KEYWORDS)
        for k in unknown:
            # Same words in another order (vus_max -> max_vus) first, then spelling.
            swapped = [w for w in sorted(ALL_KEYWORDS)
                       if sorted(w.split("_")) == sorted(k.split("_"))]
            close = swapped or difflib.get_close_matches(k, sorted(ALL_KEYWORDS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            problems.append(
                f"unknown keyword '{show(k)}'.{hint} Allowed: {', '.join(sorted(ALL_KEYWORDS))}")
        executor, args_ = cls._infer_executor(kwargs, problems)
        thresholds: tuple[Threshold, ...] = ()
        raw_th = kwargs.get("thresholds")
        if raw_th is not None:
            if not isinstance(raw_th, Mapping):
                problems.append(
                    f"thresholds={show(raw_th)}: expected a dict of metric name to expressions, "
                    "e.g. {'http_req_duration': ['p(95)<500']}")
            else:
                try:
                    thresholds = tuple(parse_thresholds(raw_th))
                except ConfigError as exc:
                    problems.extend(exc.problems)
                problems.extend(check_builtin_kinds(thresholds))
        regressions = None
        if "regressions" in kwargs:
            try:
                regressions = parse_regressions(kwargs["regressions"])
            except ConfigError as exc:
                problems.extend(exc.problems)
        client_options: dict[str, Mapping[str, Any]] = {}
        for proto in ("http", "ws", "db"):
            if proto in kwargs:
                opt = kwargs[proto]
                if not isinstance(opt, Mapping):
                    problems.append(f"{proto}={show(opt)}: expected a dict of {proto} client "
                                    "options")
                else:
                    problems.extend(f"{proto} option {p}" for p in _validate_client(proto, opt))
                    client_options[proto] = dict(opt)
        spec = cls(executor or "", args_, thresholds, client_options, regressions)
        if executor:
            # Run the checks of plan() once now, at scale 1, to report value problems early.
            plan = spec._resolve(1.0, 1.0, problems)
            if plan is not None:
                problems.extend(_check_stages(thresholds, regressions, plan))
        if problems:
            raise ConfigError(problems)
        return spec

    @staticmethod
    def _infer_executor(kwargs: Mapping[str, Any],
                        problems: list[str]) -> tuple[str | None, dict[str, Any]]:
        """The executor and its arguments: explicit, or k6's shortcuts with k6's meaning.

        k6 (``DeriveScenariosFromShortcuts``): ``iterations`` -> shared-iterations, with
        ``duration`` as its max_duration; else ``duration`` -> constant-vus; else ``stages``
        -> ramping-vus with ``vus`` as start_vus. ``rate`` (constant-arrival-rate) is ours and
        comes first. ``vus`` alone k6 ignores with a warning (1 VU, 1 iteration): an error.
        """
        args = {k: v for k, v in kwargs.items() if k in ALL_EXECUTOR_KEYWORDS}
        explicit = kwargs.get("executor")
        if explicit is not None:
            if not isinstance(explicit, str) or explicit not in EXECUTORS:
                close = difflib.get_close_matches(str(explicit), list(EXECUTORS), n=1) \
                    if isinstance(explicit, str) else []
                hint = f" Did you mean '{close[0]}'?" if close else ""
                problems.append(f"executor={show(explicit)} is not an executor.{hint} "
                                f"Expected one of: {', '.join(EXECUTORS)}")
                return None, args
            name = str(explicit)
        else:
            inferred = _shortcut(args, problems)
            if inferred is None:
                return None, args
            name = inferred
        required, optional = EXECUTORS[name].required, EXECUTORS[name].optional
        given = set(args)
        for k in sorted(required - given):
            problems.append(f"executor '{name}' needs '{k}'; "
                            f"it takes {', '.join(sorted(required | optional))}")
        for k in sorted(given - required - optional):
            takes = ", ".join(sorted(required | optional))
            owners = [e for e, cls in EXECUTORS.items() if k in cls.keywords()]
            problems.append(f"'{k}' does not apply to executor '{name}' (it takes {takes}); "
                            f"'{k}' belongs to {', '.join(owners)}: remove it or set executor=")
        return name, args

    def plan(self, *, scale: float = 1.0, duration_scale: float = 1.0) -> ExecutorConfig:
        """The executor's resolved plan at these scales (``--load-scale``, duration scale)."""
        problems: list[str] = []
        plan = self._resolve(scale, duration_scale, problems)
        if problems or plan is None:
            raise ConfigError(problems or ["could not resolve the executor"])
        return plan

    def _resolve(self, scale: float, duration_scale: float,
                 problems: list[str]) -> ExecutorConfig | None:
        n_before = len(problems)
        args = Args(self.args, scale=scale, duration_scale=duration_scale, problems=problems)
        plan = EXECUTORS[self.executor].from_args(args)
        if len(problems) == n_before:
            problems.extend(plan_problems(plan))
        return plan if len(problems) == n_before else None


def _shortcut(args: dict[str, Any], problems: list[str]) -> str | None:
    """The executor k6's shortcuts mean; renames ``args`` in place (k6's meaning)."""
    if "rate" in args:
        return "constant-arrival-rate"
    if "stages" in args:
        for other in ("iterations", "duration"):
            if other in args:
                problems.append(
                    f"{other}= and stages= together: k6 refuses them too (using `{other}` and "
                    f"`stages` options simultaneously is not allowed); the stages give the "
                    f"length and the VUs: drop {other}=, or drop stages= for a fixed load")
                return None
    if "iterations" in args:
        if "duration" in args:
            if "max_duration" in args:
                problems.append(
                    f"duration={args['duration']!r} and max_duration={args['max_duration']!r}: "
                    "with iterations= both mean the shared-iterations time limit: give one")
                return None
            args["max_duration"] = args.pop("duration")   # k6: duration limits the iterations
        return "shared-iterations"
    if "duration" in args:
        return "constant-vus"
    if "stages" in args:
        if "vus" in args:
            if "start_vus" in args:
                problems.append(
                    f"vus={args['vus']!r} and start_vus={args['start_vus']!r}: with stages= both "
                    "mean the VUs ramping-vus starts with: give start_vus= only")
                return None
            args["start_vus"] = args.pop("vus")           # k6: vus is the ramp's start
        return "ramping-vus"
    if "vus" in args:
        vus = args["vus"]
        if vus != 1:
            problems.append(
                f"vus={vus!r} alone runs 1 VU for 1 iteration in k6 (it warns that vus only works "
                "with iterations, duration or stages): add duration= (constant-vus), "
                "iterations= (shared-iterations) or stages= (ramping-vus)")
            return None
        return "shared-iterations"
    problems.append(
        "no load given: pass stages=[('30s', 100), ...] (ramping-vus), vus= and duration= "
        "(constant-vus), iterations= (shared-iterations), or executor= with its arguments")
    return None


def _check_stages(thresholds: tuple[Threshold, ...],
                  regressions: Mapping[str, tuple[Rule, ...]] | None,
                  plan: ExecutorConfig) -> list[str]:
    """Every ``{stage:...}`` a threshold or rule key names must be a stage of the plan."""
    spans = spans_of(plan.describe())
    keys = [t.metric for t in thresholds] + list(regressions or ())
    problems: list[str] = []
    for key in dict.fromkeys(keys):
        _, stage = strip_stage(key)
        if stage is None or find_stage(stage, spans) is not None:
            continue
        if not spans:
            problems.append(f"'{key}': {{stage:{stage}}} needs an executor with stages "
                            f"(ramping-vus, ramping-arrival-rate); {plan.type} has none")
            continue
        names = [s.name for s in spans if s.name]
        known = (f"stage names: {', '.join(names)}; " if names else "") + \
            f"stage numbers 1 to {len(spans)}"
        problems.append(f"'{key}': there is no stage '{stage}' in this plan ({known}); name a "
                        "stage with a third item, e.g. ('5m', 100, 'peak'), and write "
                        "{stage:peak}")
    return problems


def _validate_client(proto: str, options: Mapping[str, Any]) -> list[str]:
    """Every problem of a marker's ``http=``/``ws=``/``db=`` dict, by the client's own rules."""
    if proto == "http":
        from pytest_novaload.clients.http import validate_http_options
        return validate_http_options(options)
    if proto == "ws":
        from pytest_novaload.clients.websocket import validate_ws_options
        return validate_ws_options(options)
    from pytest_novaload.clients.postgres import validate_db_options
    return validate_db_options(options)

