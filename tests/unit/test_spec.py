"""Marker parsing: executor inference, every problem reported at once, scaling rules."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_novaload.errors import ConfigError
from pytest_novaload.spec import LoadSpec


def problems(**kw: Any) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        LoadSpec.parse(kw)
    return exc.value.problems


@pytest.mark.parametrize(("kw", "executor"), [
    ({"stages": [("1s", 10)]}, "ramping-vus"),
    ({"vus": 5, "duration": "10s"}, "constant-vus"),
    ({"iterations": 10}, "shared-iterations"),
    ({"iterations": 10, "vus": 2}, "shared-iterations"),
    ({"executor": "per-vu-iterations", "vus": 2, "iterations": 3}, "per-vu-iterations"),
    ({"executor": "constant-arrival-rate", "rate": 10, "duration": "1m",
      "preallocated_vus": 5}, "constant-arrival-rate"),
    ({"executor": "ramping-arrival-rate", "stages": [("1m", 10)]}, "ramping-arrival-rate"),
])
def test_executor_shortcuts(kw: dict[str, Any], executor: str) -> None:
    assert LoadSpec.parse(kw).executor == executor


def test_every_problem_is_reported_at_once() -> None:
    found = problems(stages=[("3x", 10), ("1s",)], vus_max=4, executor="ramping-vus",
                     thresholds={"http_req_duration": ["p95<500"]})
    text = "\n".join(found)
    assert "unknown keyword 'vus_max'" in text and "max_vus" in text  # did you mean
    assert "'3x'" in text
    assert "stages[1]" in text
    assert "p95<500" in text
    assert len(found) >= 4


def test_unknown_executor_suggests_the_closest() -> None:
    (p,) = problems(executor="constant-vu", vus=1, duration="1s")
    assert "constant-vus" in p


def test_arguments_that_do_not_belong_to_the_executor() -> None:
    (p,) = problems(executor="constant-vus", vus=2, duration="1s", iterations=3)
    assert "'iterations' does not apply to executor 'constant-vus'" in p


def test_missing_required_argument() -> None:
    (p,) = problems(executor="constant-arrival-rate", rate=10)
    assert "needs 'duration'" in p


def test_max_vus_below_preallocated() -> None:
    (p,) = problems(executor="constant-arrival-rate", rate=10, duration="1s",
                    preallocated_vus=10, max_vus=5)
    assert "max_vus" in p


def test_no_load_given() -> None:
    (p,) = problems(thresholds={})
    assert "no load given" in p


def test_scaling_rounds_and_never_zeroes() -> None:
    spec = LoadSpec.parse({"stages": [("10s", 100), ("10s", 3), ("5s", 0)], "start_vus": 0})
    plan = spec.plan(scale=0.01, duration_scale=0.5)
    assert plan.ramp is not None
    assert [s.target for s in plan.ramp.stages] == [1, 1, 0]
    assert [s.duration for s in plan.ramp.stages] == [5, 5, 2.5]


def test_scaling_leaves_iterations_and_time_unit_alone() -> None:
    spec = LoadSpec.parse({"executor": "shared-iterations", "vus": 10, "iterations": 100,
                           "max_duration": "10s"})
    plan = spec.plan(scale=0.5, duration_scale=0.1)
    assert (plan.vus, plan.iterations, plan.max_duration) == (5, 100, 1.0)
    spec = LoadSpec.parse({"executor": "constant-arrival-rate", "rate": 200, "time_unit": "1m",
                           "duration": "1m", "preallocated_vus": 20, "max_vus": 40})
    plan = spec.plan(scale=0.1, duration_scale=0.5)
    assert (plan.rate, plan.time_unit, plan.duration) == (20, 60, 30)
    assert (plan.preallocated_vus, plan.max_vus) == (2, 4)


def test_shard_splits_vus_with_remainders() -> None:
    plan = LoadSpec.parse({"vus": 3, "duration": "1s"}).plan()
    assert [plan.shard(k, 2).vus for k in range(2)] == [2, 1]
    plan = LoadSpec.parse({"iterations": 5, "vus": 3}).plan()
    assert [plan.shard(k, 2).iterations for k in range(2)] == [3, 2]


def test_shared_iterations_only_go_to_shards_with_vus() -> None:
    plan = LoadSpec.parse({"iterations": 20, "vus": 1}).plan()
    parts = [plan.shard(k, 2) for k in range(2)]
    assert [(p.vus, p.iterations) for p in parts] == [(1, 20), (0, 0)]
    plan = LoadSpec.parse({"iterations": 7, "vus": 2}).plan()
    assert [plan.shard(k, 4).iterations for k in range(4)] == [4, 3, 0, 0]


def test_client_options_are_checked_at_collection() -> None:
    found = "\n".join(problems(iterations=1, http={"timeout": "zz", "bogus": 1},
                                ws={"nope": 1}, db={"max_sizee": 3}))
    assert "http option timeout='zz'" in found
    assert "http option 'bogus'" in found
    assert "ws option 'nope'" in found
    assert "db option 'max_sizee'" in found and "max_size" in found


# -- k6's shortcuts, with k6's meaning (issue 9) ----------------------------------------------


def test_iterations_with_duration_is_shared_iterations_limited_by_the_duration() -> None:
    spec = LoadSpec.parse({"vus": 2, "iterations": 4, "duration": "3s"})
    assert spec.executor == "shared-iterations"
    plan = spec.plan()
    assert (plan.vus, plan.iterations, plan.max_duration) == (2, 4, 3.0)
    (p,) = problems(iterations=4, duration="3s", max_duration="5s")
    assert "duration='3s' and max_duration='5s'" in p and "give one" in p


def test_stages_with_vus_start_the_ramp_there() -> None:
    spec = LoadSpec.parse({"vus": 3, "stages": [("1s", 1)]})
    assert spec.executor == "ramping-vus"
    assert spec.plan().ramp.start == 3
    (p,) = problems(vus=3, start_vus=2, stages=[("1s", 1)])
    assert "vus=3 and start_vus=2" in p and "give start_vus= only" in p


@pytest.mark.parametrize("other", ["iterations", "duration"])
def test_stages_with_iterations_or_duration_are_refused_as_in_k6(other: str) -> None:
    (p,) = problems(stages=[("1s", 1)], **{other: 5 if other == "iterations" else "5s"})
    assert f"{other}= and stages= together" in p
    assert f"using `{other}` and `stages` options simultaneously is not allowed" in p


def test_vus_alone_names_the_fix() -> None:
    (p,) = problems(vus=10)
    assert p.startswith("vus=10 alone runs 1 VU for 1 iteration in k6")
    assert "add duration= (constant-vus), iterations= (shared-iterations)" in p
    assert LoadSpec.parse({"vus": 1}).plan().vus == 1          # k6: silent, 1 x 1


def test_more_vus_than_shared_iterations_is_refused_but_a_scale_caps() -> None:
    (p,) = problems(vus=10, iterations=5)
    assert p == ("vus=10 is more than iterations=5: k6 refuses it (the number of iterations "
                 "(5) can't be less than the number of VUs (10)); set vus <= 5 or "
                 "iterations >= 10")
    plan = LoadSpec.parse({"vus": 4, "iterations": 5}).plan(scale=3.0)
    assert (plan.vus, plan.iterations) == (5, 5)


def test_plans_that_run_nothing_are_refused() -> None:
    (p,) = problems(executor="constant-arrival-rate", rate=0, duration="1s")
    assert p.startswith("rate=0: expected more than 0 iterations per time_unit")
    (p,) = problems(executor="ramping-arrival-rate", stages=[("1s", 0), ("1s", 0)])
    assert "start_rate and every stage target are 0: nothing would run" in p
    (p,) = problems(start_vus=0, stages=[("1s", 0)])
    assert "either startVUs or one of the stages' target values must be greater than 0" in p
    # start_vus defaults to 1 (k6's vus default): one VU ramping down to 0 is a load.
    assert LoadSpec.parse({"stages": [("1s", 0)]}).plan().ramp.start == 1


def test_initial_vus_is_each_shards_peak_or_pool() -> None:
    plan = LoadSpec.parse({"start_vus": 0, "stages": [("1s", 5), ("1s", 2), ("1s", 0)]}).plan()
    assert plan.initial_vus() == 5
    assert [plan.shard(r, 2).initial_vus(r, 2) for r in range(2)] == [3, 2]
    plan = LoadSpec.parse({"executor": "constant-arrival-rate", "rate": 10, "duration": "1s",
                           "preallocated_vus": 3, "max_vus": 9}).plan()
    assert plan.initial_vus() == 3
    assert [plan.shard(r, 2).initial_vus(r, 2) for r in range(2)] == [2, 1]
    assert LoadSpec.parse({"vus": 4, "duration": "1s"}).plan().shard(1, 3).initial_vus() == 1
