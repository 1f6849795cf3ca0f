"""The option triples: command line > environment > ini > default, every bad value named with
its source and the fix, all at once; ``--load-out`` repeatable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pytest_novaload.errors import ConfigError
from pytest_novaload.options import (
    OPTIONS,
    Getter,
    Options,
    raw_values,
    resolve_options,
    resolve_outputs,
)
from pytest_novaload.outputs.config import OutSpec


def getter(values: Mapping[str, Any], default: Any = None) -> Getter:
    """A ``config.getoption``/``getini`` stand-in: unset options give pytest's default."""
    return lambda name: values.get(name, default)


def resolve(cli: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
            ini: Mapping[str, Any] | None = None) -> Options:
    return resolve_options(getter(cli or {}), getter(ini or {}), env or {})


def problems(**where: Mapping[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        resolve(**where)
    return info.value.problems


def test_nothing_set_gives_the_defaults_and_no_sources() -> None:
    options, default = resolve(), Options()
    assert options.to_dict() == default.to_dict()
    assert (options.progress, options.results, options.sources) == ("auto", "load-results", {})
    assert options.allow_hosts.entries == ()


@pytest.mark.parametrize(("flag", "name", "var"), [row[:3] for row in OPTIONS])
def test_every_option_takes_cli_over_env_over_ini(flag: str, name: str, var: str) -> None:
    """Each row of the table: the first source that is set wins and is named."""
    cli, env, ini = {name: "from-cli"}, {var: "from-env"}, {name: "from-ini"}
    assert raw_values(getter(cli), getter(ini), env)[name] == ("from-cli", flag)
    assert raw_values(getter({}), getter(ini), env)[name] == ("from-env", var)
    assert raw_values(getter({}), getter(ini), {})[name] == ("from-ini", f"ini {name}")
    assert name not in raw_values(getter({}), getter({}), {})


def test_precedence_shows_in_the_resolved_values() -> None:
    both = resolve(cli={"load_scale": "0.5"}, env={"NOVALOAD_SCALE": "0.25"},
                   ini={"load_scale": "0.125", "load_duration_scale": "0.1"})
    assert both.scale == 0.5
    assert both.duration_scale == 0.1
    assert both.sources == {"load_scale": "--load-scale",
                            "load_duration_scale": "ini load_duration_scale"}
    env_over_ini = resolve(env={"NOVALOAD_SCALE": "0.25"}, ini={"load_scale": "0.125"})
    assert env_over_ini.scale == 0.25
    assert env_over_ini.sources == {"load_scale": "NOVALOAD_SCALE"}


def test_an_empty_env_var_is_unset() -> None:
    options = resolve(env={"NOVALOAD_SCALE": ""}, ini={"load_scale": "0.125"})
    assert options.scale == 0.125
    assert options.sources["load_scale"] == "ini load_scale"


def test_values_of_each_kind() -> None:
    options = resolve(cli={"load_results": "OFF", "load_progress": "lines",
                           "load_barrier_timeout": "120"},
                      env={"NOVALOAD_ALLOW_HOSTS": "api.staging.example, 10.0.0.0/8",
                           "NOVALOAD_MARGINAL_FAILS": "yes"},
                      ini={"load_baseline": "perf/baseline.json"})
    assert options.results is None
    assert options.progress == "lines"
    assert options.barrier_timeout == 120.0
    assert options.allow_hosts.entries == ("api.staging.example", "10.0.0.0/8")
    assert options.allow_hosts.source == "NOVALOAD_ALLOW_HOSTS"
    assert options.marginal_fails is True
    assert options.baseline == "perf/baseline.json"
    assert options.to_dict()["load_results"] == "off"


@pytest.mark.parametrize("bad", ["fast", "0", "-1", "nan", "inf", ""])
def test_a_bad_number_names_source_value_expectation_and_example(bad: str) -> None:
    [problem] = problems(cli={"load_scale": bad})
    assert problem == (f"--load-scale={bad!r}: expected a number greater than 0, e.g. 0.1")


def test_the_barrier_timeout_example_fits_its_option() -> None:
    [problem] = problems(env={"NOVALOAD_BARRIER_TIMEOUT": "soon"})
    assert problem == ("NOVALOAD_BARRIER_TIMEOUT='soon': expected a number greater than 0, "
                       "e.g. 120")


def test_every_bad_value_is_reported_at_once_with_where_it_came_from() -> None:
    found = problems(cli={"load_duration_scale": "x"},
                     env={"NOVALOAD_PROGRESS": "fancy", "NOVALOAD_MARGINAL_FAILS": "maybe"},
                     ini={"load_scale": "-2", "load_allow_hosts": "bad host!"})
    assert len(found) == 5, found
    text = "\n".join(found)
    assert "--load-duration-scale='x': expected a number greater than 0" in text
    assert "NOVALOAD_PROGRESS='fancy': expected one of auto, tty, lines, off" in text
    assert "NOVALOAD_MARGINAL_FAILS='maybe': expected yes or no" in text
    assert "ini load_scale='-2': expected a number greater than 0" in text
    assert "ini load_allow_hosts: entry 'host!': expected a hostname" in text


def test_bad_regression_rules_name_their_source() -> None:
    [problem] = problems(cli={"load_regressions": "p(95) is fine"})
    assert problem.startswith("--load-regressions")


def outputs(cli: list[str] | None = None, env: Mapping[str, str] | None = None,
            ini: list[str] | None = None) -> tuple[list[OutSpec], str | None]:
    return resolve_outputs(getter({"load_out": cli}), getter({"load_out": ini or []}),
                           env or {})


def test_out_is_repeatable_and_a_spec_given_twice_is_one_output() -> None:
    specs, source = outputs(cli=["json=a.json", "json=b.json.gz", "json=a.json"])
    assert specs == [OutSpec("json", "a.json"), OutSpec("json", "b.json.gz")]
    assert source == "--load-out"


def test_out_takes_the_first_source_that_gives_any_spec_whole() -> None:
    env = {"NOVALOAD_OUT": "json=env1.json, ,json=env2.json"}
    ini = ["json=ini.json"]
    assert outputs(cli=["json=cli.json"], env=env, ini=ini) == (
        [OutSpec("json", "cli.json")], "--load-out")
    assert outputs(env=env, ini=ini) == (
        [OutSpec("json", "env1.json"), OutSpec("json", "env2.json")], "NOVALOAD_OUT")
    assert outputs(env={"NOVALOAD_OUT": "  "}, ini=ini) == (
        [OutSpec("json", "ini.json")], "ini load_out")
    assert outputs() == ([], None)


def test_bad_out_specs_are_all_named_with_their_source() -> None:
    with pytest.raises(ConfigError) as info:
        outputs(env={"NOVALOAD_OUT": "json,carbon=x"})
    first, second = info.value.problems
    assert first.startswith("--load-out 'json': expected NAME=TARGET, e.g. ")
    assert first.endswith("(from NOVALOAD_OUT)")
    assert "unknown output 'carbon'; expected one of" in second
    assert second.endswith("(from NOVALOAD_OUT)")
