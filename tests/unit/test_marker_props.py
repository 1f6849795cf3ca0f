"""The whole marker and the client option validators under any input (Hypothesis): a valid
plan or the plugin's own ConfigError (or a list of problems), never another exception, and a
valid plan is one a generator can run (limits.py)."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_novaload.clients.db_pool import validate_db_options
from pytest_novaload.clients.http.options import validate_http_options
from pytest_novaload.clients.ws_config import validate_ws_options
from pytest_novaload.engine.executors import EXECUTORS
from pytest_novaload.errors import ConfigError
from pytest_novaload.limits import MAX_RATE, MAX_VUS, plan_problems, screen
from pytest_novaload.spec import ALL_KEYWORDS, LoadSpec
from pytest_novaload.units import MAX_DURATION
from tests.unit.hostile import VALUES, deep_list

_KEYS = sorted(ALL_KEYWORDS - {"thresholds"})  # thresholds: tests/unit/thresholds
_SMALL = st.integers(0, 50) | st.floats(0, 100) | st.sampled_from(["1s", "500ms", "2m", "0s"])
_MARKER_VALUES = VALUES | _SMALL | st.lists(st.tuples(_SMALL, _SMALL), max_size=4)
_SETTINGS = settings(max_examples=2000, deadline=None,
                     suppress_health_check=list(HealthCheck))


def _plan_ok(spec: LoadSpec) -> None:
    for scale in (1.0, 0.3, 4.0):
        try:
            plan = spec.plan(scale=scale, duration_scale=scale)
        except ConfigError as exc:
            assert str(exc)
            continue
        assert plan_problems(plan) == []
        assert math.isfinite(plan.max_run_time()) and plan.planned_duration() <= MAX_DURATION
        for field in ("vus", "max_vus", "preallocated_vus"):
            assert getattr(plan, field, 0) <= MAX_VUS
        if hasattr(plan, "rate_ramp"):
            assert plan.rate_ramp().peak() / plan.time_unit <= MAX_RATE
        plan.describe()
        for world in (2, 3):
            for rank in range(world):
                plan.shard(rank, world).describe()


@_SETTINGS
@given(st.dictionaries(st.sampled_from(_KEYS), _MARKER_VALUES, max_size=5),
       st.sampled_from([*EXECUTORS, None]))
@example({"executor": ["constant-vus"]}, None)
@example({"vus": 10**400, "duration": "1s"}, None)
@example({"vus": math.nan, "duration": "1s"}, None)
@example({"rate": math.inf, "duration": "1s"}, None)
@example({"start_rate": math.nan, "stages": [("1s", 1)]}, "ramping-arrival-rate")
@example({"stages": [("1s", math.inf)]}, None)
@example({"vus": 1, "duration": 1e306}, None)
@example({"rate": 1_000_000, "time_unit": "1ns", "duration": "10s"}, None)
@example({"stages": [("168h", 1)] * 3}, None)
@example({"iterations": 10**14, "vus": 10**4}, None)
@example({"max_vus": 0, "db": 0, "vus": ["9" * 5710] * 2, "stages": ["9" * 5710] * 2,
          "graceful_ramp_down": {-2381: []}}, None)  # long values shown whole: 23 KB
def test_any_marker_is_a_plan_or_its_own_error(kwargs: dict[str, Any],
                                               executor: str | None) -> None:
    if executor is not None:
        kwargs = {**kwargs, "executor": executor}
    try:
        spec = LoadSpec.parse(kwargs)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        assert len(str(exc)) < 20_000
        return
    _plan_ok(spec)


def test_the_issue_examples_are_refused_with_the_reason() -> None:
    def problems(**kw: Any) -> str:
        try:
            LoadSpec.parse(kw)
        except ConfigError as exc:
            return str(exc)
        raise AssertionError(f"accepted {kw}")

    assert "arrival rate of 1000000000000000.0 iterations/s" in problems(
        rate=1_000_000, time_unit="1ns", duration="10s")
    assert "longer than the limit of 168h0m0s" in problems(vus=1, duration=1e306)
    assert "is not an executor" in problems(executor=["constant-vus"], vus=1, duration="1s")
    assert "beyond the limit of 10^15" in problems(vus=10**400, duration="1s")
    assert "nested more than 8 deep" in problems(stages=deep_list(100_000))
    assert f"more than {MAX_VUS} VUs" in problems(vus=MAX_VUS + 1, duration="1s")
    assert "stages add up to" in problems(stages=[("168h", 1), ("168h", 1)])
    assert "expected a finite number of iterations" in problems(rate=math.inf, duration="1s")


def test_screen_is_iterative_and_bounded() -> None:
    assert screen("stages", deep_list(1_000_000))  # no RecursionError
    assert screen("stages", [0] * 20_000)
    assert screen("x", "a" * 20_000)
    assert screen("x", {"a": [1, 2, ("3s", 4)]}) == []


_OPTION_VALUES = st.dictionaries(st.text(max_size=12) | st.integers() | st.none() | st.floats()
                                 | st.binary(max_size=4), VALUES, max_size=5)


def _keys(names: tuple[str, ...] | frozenset[str]) -> Any:
    return st.dictionaries(st.sampled_from(sorted(names)), VALUES, max_size=5)


@_SETTINGS
@given(_OPTION_VALUES | _keys(("timeout", "headers", "transport", "keep_alive", "max_redirects",
                               "verify", "http2", "parser", "max_body_size", "discard_bodies"))
       | VALUES)
@example({"timeout": 10**5000})
@example({"headers": {"X": 10**5000}})
@example({"max_body_size": math.inf})
def test_http_options_give_problems_never_an_exception(opts: Any) -> None:
    problems = validate_http_options(opts)
    assert all(isinstance(p, str) and len(p) < 2000 for p in problems)


@_SETTINGS
@given(_OPTION_VALUES | _keys(("open_timeout", "close_timeout", "ping_interval",
                               "ping_timeout", "max_size", "compression", "local_addrs",
                               "keep", "headers", "transport")) | VALUES)
@example({"open_timeout": 10**400})
def test_ws_options_give_problems_never_an_exception(opts: Any) -> None:
    problems = validate_ws_options(opts)
    assert all(isinstance(p, str) and len(p) < 2000 for p in problems)


@_SETTINGS
@given(_OPTION_VALUES | _keys(("min_size", "max_size", "max_queries", "command_timeout",
                               "connect_timeout", "acquire_timeout", "server_settings",
                               "statement_cache_size", "max_inactive_connection_lifetime"))
       | VALUES)
@example({"max_size": 10**9})
@example({"command_timeout": math.nan})
def test_db_options_give_problems_never_an_exception(opts: Any) -> None:
    problems = validate_db_options(opts)
    assert all(isinstance(p, str) and len(p) < 2000 for p in problems)
    if isinstance(opts, dict) and isinstance(opts.get("max_size"), int) \
            and opts["max_size"] > 10_000:
        assert any(p.startswith("max_size=") for p in problems)
