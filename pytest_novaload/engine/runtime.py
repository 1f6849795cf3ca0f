"""State shared by one run's executor, VUs and clients inside the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any

from pytest_novaload.allowlist import Allowlist
from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import Counter, MetricStore, Rate, Tags, Trend, make_tags
from pytest_novaload.metrics.builtins import define_builtins
from pytest_novaload.metrics.errors import ErrorInfo, ErrorLog

if TYPE_CHECKING:
    from pytest_novaload.clients.postgres import DbPool
    from pytest_novaload.engine.vu import VU

__all__ = ["ErrorInfo", "ErrorLog", "ExecutionState", "RunContext", "ScenarioMix"]
# ErrorInfo and ErrorLog live in metrics.errors; RunContext is ExecutionState's former name

Scenario = Callable[["VU"], Awaitable[Any]]
ScenarioInput = Callable[..., Any] | Mapping[str, Any]


class ScenarioMix:
    """The scenarios of ``load.run`` and their weights, handed out in an exact smooth order.

    ``{"read": (f, 80), "write": (g, 20)}`` gives exactly 4 reads per write in every window of
    five iterations (smooth weighted round robin), not a random approximation.
    """

    def __init__(self, scenario: ScenarioInput) -> None:
        entries: list[tuple[str, Scenario, int]] = []
        problems: list[str] = []
        if callable(scenario) and not isinstance(scenario, Mapping):
            entries.append(("default", scenario, 1))
        elif isinstance(scenario, Mapping):
            if not scenario:
                problems.append("load.run({}): expected at least one scenario")
            for name, value in scenario.items():
                fn, weight = (value, 1) if callable(value) else (
                    value if isinstance(value, tuple) and len(value) == 2 else (None, None))
                if not callable(fn) or isinstance(weight, bool) or not isinstance(weight, int) \
                        or weight < 0:
                    problems.append(
                        f"scenario {name!r}: {value!r}: expected an async callable taking the vu, "
                        "or (callable, weight) with a whole weight >= 0, e.g. (read, 80)")
                    continue
                entries.append((str(name), fn, weight))
            if entries and not any(w for _, _, w in entries):
                problems.append("every scenario has weight 0: give at least one a weight > 0")
        else:
            problems.append(f"load.run({scenario!r}): expected an async callable taking the vu, "
                            "or a dict of name to callable or (callable, weight)")
        if problems:
            raise ConfigError(problems)
        entries = [e for e in entries if e[2] > 0]
        g = reduce(math.gcd, (w for _, _, w in entries))
        self.entries = [(n, f, w // g) for n, f, w in entries]
        self.names = [n for n, _, _ in self.entries]
        self._current = [0] * len(self.entries)
        self._total = sum(w for _, _, w in self.entries)

    def next(self) -> tuple[str, Scenario]:
        if len(self.entries) == 1:
            name, fn, _ = self.entries[0]
            return name, fn
        best = 0
        for i, (_, _, w) in enumerate(self.entries):
            self._current[i] += w
            if self._current[i] > self._current[best]:
                best = i
        self._current[best] -= self._total
        name, fn, _ = self.entries[best]
        return name, fn


@dataclass
class ExecutionState:
    """Everything the executor, the VUs and their clients share during one run (one shard):
    the VU pool and its counts, the metric store, the scenario mix, errors, targets. k6's
    ``lib.ExecutionState`` plays the same part."""

    store: MetricStore
    mix: ScenarioMix
    env: Mapping[str, str]
    client_options: dict[str, Any] = field(default_factory=dict)
    rank: int = 0
    world: int = 1
    errors: ErrorLog = field(default_factory=ErrorLog)
    allowlist: Allowlist = field(default_factory=Allowlist)  # hosts besides loopback
    allocated: int = 0
    reserved: int = 0
    active: int = 0
    plan_starts: int = 0   # VUs and arrival-rate iterations the executor started so far
    warm: int = 0          # VUs that finished their first iteration (their state is built)
    #: loop time at which the executor's plan ends (VU executors set it): a VU that stops from
    #: then on leaves its connections to `aclose`, after the load, instead of all the VUs
    #: closing thousands of them at once while the run still measures (its last iterations,
    #: the generator's lag)
    plan_ends: float = math.inf
    _db_pool: DbPool | None = None
    _checks: dict[tuple[str, Tags], Rate] = field(default_factory=dict)
    _iter_sinks: dict[str, tuple[Trend, Counter, Rate]] = field(default_factory=dict)
    vus: list[VU] = field(default_factory=list)
    on_fatal: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        s = self.store
        define_builtins(s, "run")
        self._vus_gauge = s.gauge("vus")
        self._vus_max_gauge = s.gauge("vus_max")
        self._vus_gauge.set(0)

    def new_vu(self) -> VU:
        """Allocate a VU; its id is unique across shards (interleaved by rank)."""
        from pytest_novaload.engine.vu import VU
        vu = VU(self, self.allocated * self.world + self.rank + 1)
        self.allocated += 1
        self.vus.append(vu)
        self._vus_max_gauge.set(self.vus_max)
        return vu

    @property
    def vus_max(self) -> int:
        """k6's vus_max: the VUs initialised, the plan's pool from the start on."""
        return max(self.reserved, self.allocated)

    def reserve(self, vus: int) -> None:
        """Before the start: ``vus`` VUs are the plan's initial pool (``vus_max`` from the
        first sample, as k6 initialises them before the start; VUs are still created when
        first needed, which costs nothing to the load)."""
        self.reserved = vus
        self._vus_max_gauge.set(self.vus_max)

    def vu_started(self) -> None:
        self.active += 1
        self._vus_gauge.set(self.active)

    def vu_stopped(self) -> None:
        self.active -= 1
        self._vus_gauge.set(self.active)

    def check_sink(self, name: str, base: Tags = ()) -> Rate:
        """``checks{check:name}`` plus the VU's scenario and group tags."""
        sink = self._checks.get((name, base))
        if sink is None:
            sink = self._checks[(name, base)] = self.store.rate(
                "checks", tuple(sorted((*base, *make_tags(check=name)))))
        return sink

    def db_pool(self) -> DbPool:
        if self._db_pool is None:
            from pytest_novaload.clients.postgres import DbPool
            self._db_pool = DbPool(options=self.client_options.get("db", {}),
                                   allowlist=self.allowlist)
        return self._db_pool

    async def iterate(self, vu: VU) -> None:
        """Run one iteration of the next scenario on ``vu`` and record it.

        An exception is counted (``iteration_failed``, grouped by type) and never stops the run;
        a cancellation (hard stop) propagates and the iteration is not counted as completed.
        """
        name, fn = self.mix.next()
        vu.enter_scenario(name)
        sinks = self._iter_sinks.get(name)
        if sinks is None:
            tags = make_tags(scenario=name)
            sinks = self._iter_sinks[name] = (self.store.trend("iteration_duration", tags),
                                              self.store.counter("iterations", tags),
                                              self.store.rate("iteration_failed", tags))
        start = time.perf_counter()
        failed = False
        try:
            result = fn(vu)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except ConfigError as exc:
            # A usage mistake (no API_URL for a relative URL, a bad client option...) fails
            # every iteration the same way: stop the run at once and say why.
            failed = True
            self.errors.add(exc)
            if self.on_fatal is not None:
                self.on_fatal(f"the scenario raised a usage error: {exc}")
        except Exception as exc:
            failed = True
            self.errors.add(exc)
        sinks[0].add((time.perf_counter() - start) * 1000.0)
        sinks[1].add(1)
        sinks[2].add(failed)
        vu.iteration += 1
        if vu.iteration == 1:
            self.warm += 1

    async def aclose(self) -> None:
        """Close every VU's connections and the shared database pool."""
        await asyncio.gather(*(vu.aclose() for vu in self.vus), return_exceptions=True)
        if self._db_pool is not None:
            with contextlib.suppress(Exception):
                await self._db_pool.aclose()
            self._db_pool = None


RunContext = ExecutionState
"""The former name, kept so that code importing it keeps working."""
