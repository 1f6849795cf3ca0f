"""The ``@pytest.mark.load(...)`` keywords, parsed and checked at the boundary.

``LoadSpec.parse(kwargs)`` validates everything at once and raises one ``ConfigError`` listing
every problem; ``spec.plan(scale=..., duration_scale=...)`` gives the scaled, pure executor plan
the engine follows. k6 names and semantics throughout.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_novaload.engine.stages import Ramp, Stage, parse_stages, share
from pytest_novaload.errors import ConfigError
from pytest_novaload.thresholds import Threshold, parse_thresholds
from pytest_novaload.units import format_duration, parse_duration

DEFAULT_GRACEFUL = 30.0
DEFAULT_MAX_DURATION = 600.0

# Keywords each executor takes (k6's, in snake case), besides the common ones.
EXECUTOR_KEYWORDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # name: (required, optional)
    "ramping-vus": (frozenset({"stages"}),
                    frozenset({"start_vus", "graceful_ramp_down", "graceful_stop"})),
    "constant-vus": (frozenset({"duration"}), frozenset({"vus", "graceful_stop"})),
    "per-vu-iterations": (frozenset(),
                          frozenset({"vus", "iterations", "max_duration", "graceful_stop"})),
    "shared-iterations": (frozenset(),
                          frozenset({"vus", "iterations", "max_duration", "graceful_stop"})),
    "constant-arrival-rate": (frozenset({"rate", "duration"}),
                              frozenset({"time_unit", "preallocated_vus", "max_vus",
                                         "graceful_stop"})),
    "ramping-arrival-rate": (frozenset({"stages"}),
                             frozenset({"start_rate", "time_unit", "preallocated_vus", "max_vus",
                                        "graceful_stop"})),
}
COMMON_KEYWORDS = frozenset({"executor", "thresholds", "http", "ws", "db"})
ALL_EXECUTOR_KEYWORDS = frozenset().union(*(r | o for r, o in EXECUTOR_KEYWORDS.values()))
ALL_KEYWORDS = COMMON_KEYWORDS | ALL_EXECUTOR_KEYWORDS
VU_EXECUTORS = frozenset({"ramping-vus", "constant-vus", "per-vu-iterations",
                          "shared-iterations"})
ARRIVAL_EXECUTORS = frozenset({"constant-arrival-rate", "ramping-arrival-rate"})


@dataclass(frozen=True)
class ExecutorPlan:
    """A fully resolved executor: every number scaled, every duration in seconds."""

    type: str
    vus: int = 1
    iterations: int = 1
    duration: float = 0.0
    max_duration: float = DEFAULT_MAX_DURATION
    ramp: Ramp | None = None          # VUs (ramping-vus) or rate (ramping-arrival-rate)
    rate: float = 0.0                 # constant-arrival-rate: iterations per time_unit
    time_unit: float = 1.0
    preallocated_vus: int = 0
    max_vus: int = 0
    graceful_stop: float = DEFAULT_GRACEFUL
    graceful_ramp_down: float = DEFAULT_GRACEFUL

    @property
    def arrival(self) -> bool:
        return self.type in ARRIVAL_EXECUTORS

    def rate_ramp(self) -> Ramp:
        """The arrival-rate plan as a ramp of iterations per ``time_unit``."""
        if self.ramp is not None:
            return self.ramp
        return Ramp(self.rate, (Stage(self.duration, self.rate),))

    def planned_duration(self) -> float:
        """How long iterations are started for (without graceful stop)."""
        if self.type in ("ramping-vus", "ramping-arrival-rate"):
            assert self.ramp is not None
            return self.ramp.total
        if self.type in ("per-vu-iterations", "shared-iterations"):
            return self.max_duration
        return self.duration

    def max_vus_needed(self) -> int:
        if self.type == "ramping-vus":
            assert self.ramp is not None
            return max(0, math.floor(self.ramp.peak() + 1e-9))
        if self.arrival:
            return self.max_vus
        return self.vus

    def shard(self, rank: int, world: int) -> ExecutorPlan:
        """This shard's part: VUs split with remainders, rates split exactly, per k6 totals."""
        if world <= 1:
            return self

        def part(n: int) -> int:
            return share(n, rank, world)

        if self.type == "ramping-vus":
            # The shard follows total(t) split: kept as the total ramp plus (rank, world).
            return self
        if self.type == "constant-vus":
            return replace(self, vus=part(self.vus))
        if self.type == "per-vu-iterations":
            return replace(self, vus=part(self.vus))
        if self.type == "shared-iterations":
            # Only shards that get a VU can run iterations: split the pool among those.
            active = min(self.vus, world)
            if rank >= active:
                return replace(self, vus=0, iterations=0)
            return replace(self, vus=part(self.vus),
                           iterations=share(self.iterations, rank, active))
        # Arrival rate: the shard starts every world-th iteration of the total plan (exact
        # totals, no bursts); only the VU pools are split, with remainders.
        return replace(self, preallocated_vus=max(1, part(self.preallocated_vus)),
                       max_vus=max(1, part(self.max_vus)))

    def describe(self) -> dict[str, Any]:
        """The plan as it goes into summary.json."""
        d: dict[str, Any] = {"type": self.type}
        if self.type == "ramping-vus":
            assert self.ramp is not None
            d["start_vus"] = int(self.ramp.start)
            d["stages"] = [[format_duration(s.duration), int(s.target)] for s in self.ramp.stages]
            d["graceful_ramp_down"] = format_duration(self.graceful_ramp_down)
        elif self.type == "constant-vus":
            d.update(vus=self.vus, duration=format_duration(self.duration))
        elif self.type in ("per-vu-iterations", "shared-iterations"):
            d.update(vus=self.vus, iterations=self.iterations,
                     max_duration=format_duration(self.max_duration))
        else:
            if self.type == "constant-arrival-rate":
                rate = int(self.rate) if float(self.rate).is_integer() else self.rate
                d.update(rate=rate, duration=format_duration(self.duration))
            else:
                assert self.ramp is not None
                d["start_rate"] = self.ramp.start
                d["stages"] = [[format_duration(s.duration), s.target] for s in self.ramp.stages]
            d.update(time_unit=format_duration(self.time_unit),
                     preallocated_vus=self.preallocated_vus, max_vus=self.max_vus)
        d["graceful_stop"] = format_duration(self.graceful_stop)
        return d


@dataclass(frozen=True)
class LoadSpec:
    """A validated marker: the executor's raw arguments, thresholds and client options."""

    executor: str
    args: Mapping[str, Any]
    thresholds: tuple[Threshold, ...] = ()
    client_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, kwargs: Mapping[str, Any], args: tuple[Any, ...] = ()) -> LoadSpec:
        """Check every keyword of the marker; raise one ConfigError listing all problems."""
        problems: list[str] = []
        if args:
            problems.append(
                f"positional arguments {args!r}: the load marker takes keywords only, "
                "e.g. @pytest.mark.load(stages=[('30s', 100)])")
        unknown = sorted(set(kwargs) - ALL_KEYWORDS)
        for k in unknown:
            # Same words in another order (vus_max -> max_vus) first, then spelling.
            swapped = [w for w in sorted(ALL_KEYWORDS)
                       if sorted(w.split("_")) == sorted(k.split("_"))]
            close = swapped or difflib.get_close_matches(k, sorted(ALL_KEYWORDS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            problems.append(
                f"unknown keyword '{k}'.{hint} Allowed: {', '.join(sorted(ALL_KEYWORDS))}")
        executor = cls._infer_executor(kwargs, problems)
        thresholds: tuple[Threshold, ...] = ()
        raw_th = kwargs.get("thresholds")
        if raw_th is not None:
            if not isinstance(raw_th, Mapping):
                problems.append(
                    f"thresholds={raw_th!r}: expected a dict of metric name to expressions, "
                    "e.g. {'http_req_duration': ['p(95)<500']}")
            else:
                try:
                    thresholds = tuple(parse_thresholds(raw_th))
                except ConfigError as exc:
                    problems.extend(exc.problems)
        client_options: dict[str, Mapping[str, Any]] = {}
        for proto in ("http", "ws", "db"):
            if proto in kwargs:
                opt = kwargs[proto]
                if not isinstance(opt, Mapping):
                    problems.append(f"{proto}={opt!r}: expected a dict of {proto} client options")
                else:
                    problems.extend(f"{proto} option {p}" for p in _validate_client(proto, opt))
                    client_options[proto] = dict(opt)
        args_ = {k: v for k, v in kwargs.items() if k in ALL_EXECUTOR_KEYWORDS}
        spec = cls(executor or "", args_, thresholds, client_options)
        if executor:
            # Run the checks of plan() once now, at scale 1, to report value problems early.
            spec._resolve(1.0, 1.0, problems)
        if problems:
            raise ConfigError(problems)
        return spec

    @staticmethod
    def _infer_executor(kwargs: Mapping[str, Any], problems: list[str]) -> str | None:
        explicit = kwargs.get("executor")
        if explicit is not None:
            if explicit not in EXECUTOR_KEYWORDS:
                close = difflib.get_close_matches(str(explicit), list(EXECUTOR_KEYWORDS), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                problems.append(f"executor={explicit!r} is not an executor.{hint} "
                                f"Expected one of: {', '.join(EXECUTOR_KEYWORDS)}")
                return None
            name = str(explicit)
        elif "stages" in kwargs:
            name = "ramping-vus"
        elif "rate" in kwargs:
            name = "constant-arrival-rate"
        elif "duration" in kwargs:
            name = "constant-vus"
        elif "iterations" in kwargs or "vus" in kwargs:
            name = "shared-iterations"
        else:
            problems.append(
                "no load given: pass stages=[('30s', 100), ...] (ramping-vus), vus= and duration= "
                "(constant-vus), iterations= (shared-iterations), or executor= with its arguments")
            return None
        required, optional = EXECUTOR_KEYWORDS[name]
        given = set(kwargs) & ALL_EXECUTOR_KEYWORDS
        for k in sorted(required - given):
            problems.append(f"executor '{name}' needs '{k}'; "
                            f"it takes {', '.join(sorted(required | optional))}")
        for k in sorted(given - required - optional):
            takes = ", ".join(sorted(required | optional))
            owners = [e for e, (r, o) in EXECUTOR_KEYWORDS.items() if k in r | o]
            problems.append(f"'{k}' does not apply to executor '{name}' (it takes {takes}); "
                            f"'{k}' belongs to {', '.join(owners)}: remove it or set executor=")
        return name

    def plan(self, *, scale: float = 1.0, duration_scale: float = 1.0) -> ExecutorPlan:
        problems: list[str] = []
        plan = self._resolve(scale, duration_scale, problems)
        if problems or plan is None:
            raise ConfigError(problems or ["could not resolve the executor"])
        return plan

    def _resolve(self, scale: float, duration_scale: float,
                 problems: list[str]) -> ExecutorPlan | None:
        a = self.args
        n_before = len(problems)

        def dur(key: str, default: float | None = None, *, scaled: bool = True) -> float:
            if key not in a:
                return default if default is not None else 0.0
            try:
                v = parse_duration(a[key], what=key)
            except ConfigError as exc:
                problems.extend(exc.problems)
                return 0.0
            return v * duration_scale if scaled else v

        def count(key: str, default: int, *, scaled: bool = True, minimum: int = 0) -> int:
            raw = a.get(key, default)
            if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < minimum or (
                    isinstance(raw, float) and not raw.is_integer()):
                problems.append(f"{key}={raw!r}: expected a whole number >= {minimum}")
                return default
            return scale_count(int(raw), scale) if scaled else int(raw)

        def rate_value(key: str, raw: object) -> float:
            if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
                problems.append(f"{key}={raw!r}: expected a number of iterations >= 0")
                return 0.0
            return scale_rate(float(raw), scale)

        t = self.executor
        gs = dur("graceful_stop", DEFAULT_GRACEFUL, scaled=False)
        if t == "ramping-vus":
            ramp = self._ramp(problems, lambda k, v: float(scale_count_checked(k, v, scale,
                                                                              problems)),
                              duration_scale, start=count("start_vus", 1))
            plan = ExecutorPlan(t, ramp=ramp, graceful_stop=gs,
                                graceful_ramp_down=dur("graceful_ramp_down", DEFAULT_GRACEFUL,
                                                       scaled=False))
        elif t == "constant-vus":
            plan = ExecutorPlan(t, vus=count("vus", 1, minimum=1), duration=dur("duration"),
                                graceful_stop=gs)
            if "duration" in a and plan.duration <= 0 and len(problems) == n_before:
                problems.append(f"duration={a['duration']!r}: expected more than 0 seconds")
        elif t in ("per-vu-iterations", "shared-iterations"):
            plan = ExecutorPlan(t, vus=count("vus", 1, minimum=1),
                                iterations=count("iterations", 1, scaled=False, minimum=1),
                                max_duration=dur("max_duration", DEFAULT_MAX_DURATION),
                                graceful_stop=gs)
            if t == "shared-iterations" and plan.vus > plan.iterations:
                plan = replace(plan, vus=plan.iterations)  # k6 caps VUs at the iteration count
        else:
            time_unit = dur("time_unit", 1.0, scaled=False)
            if "time_unit" in a and time_unit <= 0:
                problems.append(f"time_unit={a['time_unit']!r}: expected more than 0 seconds")
                time_unit = 1.0
            ramp = None
            rate = 0.0
            if t == "constant-arrival-rate":
                rate = rate_value("rate", a.get("rate", 0))
                duration = dur("duration")
                peak = rate
            else:
                start = rate_value("start_rate", a.get("start_rate", 0))
                ramp = self._ramp(problems, rate_value, duration_scale, start=start)
                duration = ramp.total
                peak = ramp.peak()
            per_sec = peak / time_unit if time_unit > 0 else peak
            default_pre = max(1, math.ceil(per_sec))
            if "preallocated_vus" in a:
                pre = count("preallocated_vus", default_pre, minimum=0)
            elif "max_vus" in a:
                pre = count("max_vus", default_pre, minimum=1)
            else:
                pre = default_pre
            mx = count("max_vus", pre, minimum=1) if "max_vus" in a else pre
            if mx < pre:
                problems.append(
                    f"max_vus={a.get('max_vus')!r} is below preallocated_vus="
                    f"{a.get('preallocated_vus')!r}: max_vus must be >= preallocated_vus")
            plan = ExecutorPlan(t, duration=duration, ramp=ramp, rate=rate, time_unit=time_unit,
                                preallocated_vus=pre, max_vus=max(mx, pre), graceful_stop=gs)
        return plan if len(problems) == n_before else None

    def _ramp(self, problems: list[str], conv: Any, duration_scale: float,
              start: float) -> Ramp:
        raw = self.args.get("stages")
        if not isinstance(raw, list | tuple) or not raw:
            problems.append(f"stages={raw!r}: expected a non-empty list of (duration, target) "
                            "pairs, e.g. [('30s', 100), ('1m', 100), ('30s', 0)]")
            return Ramp(start, ())
        pairs, bad = parse_stages(raw)
        problems.extend(bad)
        stages: list[Stage] = []
        for i, (d, target) in enumerate(pairs):
            try:
                seconds = parse_duration(d, what=f"stages[{i}] duration")  # type: ignore[arg-type]
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            stages.append(Stage(seconds * duration_scale, conv(f"stages[{i}] target", target)))
        return Ramp(start, tuple(stages))


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


def scale_count(n: int, scale: float) -> int:
    """Scale a VU count: rounded to nearest, never turning a non-zero value into 0."""
    if n == 0:
        return 0
    return max(1, round(n * scale))


def scale_rate(r: float, scale: float) -> float:
    """Scale a rate like a count (k6 rates are whole numbers of iterations per time unit)."""
    if r == 0 or scale == 1:
        return r
    return float(max(1, round(r * scale)))


def scale_count_checked(key: str, raw: object, scale: float, problems: list[str]) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0 or (
            isinstance(raw, float) and not raw.is_integer()):
        problems.append(f"{key}={raw!r}: expected a whole number of VUs >= 0")
        return 0
    return scale_count(int(raw), scale)
