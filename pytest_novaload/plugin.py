"""pytest hooks, options, the ``load`` marker and fixture. Everything else is delegated: the
options' table and resolver to ``options``, the run to ``NovaloadSession`` (on ``config.stash``)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_novaload.errors import BaselineError, ConfigError, TargetRefused
from pytest_novaload.gate.assess import rule_texts
from pytest_novaload.gate.options import make_gate
from pytest_novaload.load import Load
from pytest_novaload.options import (
    ALLOW_INI,
    OPTIONS,
    OUT_OPTION,
    Options,
    resolve_options,
    resolve_outputs,
)
from pytest_novaload.outputs.hub import Outputs, open_outputs
from pytest_novaload.redact import display_target
from pytest_novaload.session import NovaloadSession, report_properties
from pytest_novaload.spec import LoadSpec
from pytest_novaload.thresholds import Threshold

session_key = pytest.StashKey[NovaloadSession]()
out_source_key = pytest.StashKey[str | None]()
spec_key = pytest.StashKey[LoadSpec]()
MARKER_HELP = (
    "load(stages=..., executor=..., thresholds=..., vus=..., duration=..., ...): "
    "run this test as a load test through the `load` fixture (pytest-novaload; k6 executors "
    "and threshold grammar)")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("novaload", "load tests (pytest-novaload)")
    for flag, ini, env, help_ in OPTIONS:
        group.addoption(flag, dest=ini, default=None, help=f"{help_}. Env: {env}; ini: {ini}")
        parser.addini(ini, help=help_, default=None)
    flag, ini, env, help_ = OUT_OPTION
    group.addoption(flag, dest=ini, action="append", default=None, metavar="NAME=TARGET",
                    help=f"{help_}. Env: {env} (comma-separated); ini: {ini} (one per line)")
    parser.addini(ini, help=help_, type="linelist", default=[])


def _usage_error(exc: ConfigError) -> pytest.UsageError:
    """Bad option values as pytest's usage error, every problem on its own line."""
    return pytest.UsageError("pytest-novaload options:\n" + "\n".join(
        f"  - {p}" for p in exc.problems))


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> None:
    """Refuse ``--load-results DIR`` (two arguments) when DIR exists and so changed the ini.

    pytest picks the ini file and rootdir from the test paths before it loads plugins, so at
    that point it takes an option's separate value for a test path; an existing one moves the
    search (a second run into the same folder no longer reads the project's ini: no PR-gate
    profile, no testpaths). This hook runs before any conftest.py, so before the suite's
    targets start. Written ``--load-results=DIR`` the value is never taken for a path.
    """
    inv = early_config.invocation_params.dir
    flags = _value_flags(parser)
    separated = [(flag, value) for flag, value in itertools.pairwise(args)
                 if flag in flags and (inv / value).exists()]
    if not separated:
        return
    ns = early_config.known_args_namespace
    try:
        from _pytest.config.findpaths import determine_setup
        rootpath, inipath, *_ = determine_setup(
            inifile=ns.inifilename, override_ini=ns.override_ini, args=ns.file_or_dir,
            rootdir_cmd_arg=ns.rootdir or None, invocation_dir=inv)
    except Exception:  # another pytest's internals: then say nothing rather than guess
        return
    if (rootpath, inipath) == (early_config.rootpath, early_config.inipath):
        return
    fixes = ", ".join(f"{flag}={value}" for flag, value in separated)
    wrong = str(early_config.inipath) if early_config.inipath else "no ini file"
    raise pytest.UsageError(
        f"{' '.join(f'{f} {v}' for f, v in separated)}: pytest takes a separate value that "
        f"names an existing path for a test path while it looks for the ini file (before "
        f"plugins are loaded), so this run would read {wrong} instead of {inipath or 'none'} "
        f"(rootdir {early_config.rootpath} instead of {rootpath}). Write {fixes}")


def _value_flags(parser: pytest.Parser) -> frozenset[str]:
    """This plugin's options that take a value (every one the novaload group has)."""
    flags = {flag for flag, *_ in OPTIONS}
    try:
        for opt in parser.getgroup("novaload").options:
            if opt.attrs().get("action", "store") in ("store", "append"):
                flags.update(n for n in opt.names() if n.startswith("--"))
    except Exception:
        pass
    return frozenset(flags)


@pytest.hookimpl(trylast=True)  # after the terminal plugin has made its reporter
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    try:
        options = resolve_options(config.getoption, config.getini, os.environ)
        specs, config.stash[out_source_key] = resolve_outputs(
            config.getoption, config.getini, os.environ)
    except ConfigError as exc:
        raise _usage_error(exc) from None
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)

    def outputs(**where: Any) -> Outputs:
        if not specs:
            return Outputs()
        try:
            return open_outputs(specs, env=os.environ, **where)
        except ConfigError as exc:
            raise _usage_error(exc) from None

    if workerinput is not None:
        # An xdist worker runs shards; the controller writes the artifacts and the terminal.
        options = replace(options, results=None, baseline=None, baseline_save=None)
        # Remote workers (--tx socket=/ssh=) target what the controller targets, unless their
        # host sets its own value.
        for key, value in dict(workerinput.get("novaload_env") or {}).items():
            os.environ.setdefault(str(key), str(value))
        channel = workerinput.get("novaload_channel")
        if channel is not None:
            from pytest_novaload.xdist.plugin import WorkerPlugin
            from pytest_novaload.xdist.worker import WorkerShard
            shard = WorkerShard(channel, str(workerinput.get("workerid", "?")),
                                            barrier_timeout=options.barrier_timeout)
            config.stash[session_key] = NovaloadSession(
                options, shard=shard, rootdir=Path(str(config.rootpath)),
                outputs=outputs(worker=str(workerinput.get("workerid", "gw"))), worker=True)
            config.pluginmanager.register(
                WorkerPlugin(shard, lambda item: _shard_meta(item, options)),
                "novaload-worker")
            return
        config.stash[session_key] = NovaloadSession(
            options, rootdir=Path(str(config.rootpath)),
            outputs=outputs(worker=str(workerinput.get("workerid", "gw"))), worker=True)
        return
    tr = config.pluginmanager.get_plugin("terminalreporter")
    write = None
    width = None
    isatty = False
    if tr is not None:
        capman = config.pluginmanager.get_plugin("capturemanager")

        def write(text: str) -> None:
            # Fd-level capture is on while a test runs: step out of it, as live logging does.
            if capman is None:
                tr.write(text, flush=True)
                return
            with capman.global_and_fixture_disabled():
                tr.write(text, flush=True)

        def width() -> int:
            # Measured with capture off too: under fd capture stdout is a file, not the tty.
            if capman is None:
                return int(config.get_terminal_writer().fullwidth)
            with capman.global_and_fixture_disabled():
                return int(config.get_terminal_writer().fullwidth)

        isatty = bool(tr.hasmarkup)
    controller = _xdist_controller(config)
    try:
        gate = make_gate(options.baseline, options.baseline_save, options.regressions,
                         options.marginal_fails)
    except BaselineError as exc:
        raise pytest.UsageError(f"pytest-novaload: {exc}") from None
    session = NovaloadSession(options, write=write, isatty=isatty, width=width,
                              rootdir=Path(str(config.rootpath)),
                              outputs=outputs(controller=controller), gate=gate)
    config.stash[session_key] = session
    if controller:
        from pytest_novaload.xdist.plugin import ControllerPlugin
        config.pluginmanager.register(ControllerPlugin(config, session),
                                      "novaload-controller")


def _xdist_controller(config: pytest.Config) -> bool:
    """xdist will distribute this session (the same test as xdist's own DSession)."""
    return (not config.getoption("collectonly", False)
            and config.getoption("dist", "no") != "no"
            and bool(config.getoption("tx", None)))


def _shard_meta(item: pytest.Item, options: Options) -> tuple[
        dict[str, Any], tuple[Threshold, ...], dict[str, list[str]] | None] | None:
    """What the xdist controller needs of a load test: its plan, thresholds and rules."""
    spec = item.stash.get(spec_key, None)
    if spec is None or item.get_closest_marker("load") is None:
        return None
    try:
        executor = spec.plan(scale=options.scale,
                             duration_scale=options.duration_scale).describe()
    except ConfigError:
        executor = {"type": spec.executor}
    rules = rule_texts(spec.regressions).get("regressions")
    return executor, spec.thresholds, rules


def _session(config: pytest.Config) -> NovaloadSession:
    return config.stash[session_key]


class InvalidLoadTest(pytest.Collector):
    """Stands in for a test whose load marker is invalid: collecting it is an error naming the
    test and every problem of its marker, while the other tests of the file still collect."""

    def __init__(self, *, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        raise self.CollectError(self.message)


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str,
                              obj: object) -> Generator[None, Any, Any]:
    """Check every load marker at collection: all problems of a test reported at once."""
    result = yield
    items = result if isinstance(result, list) else [result]
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        marker = item.get_closest_marker("load")
        if marker is None:
            continue
        try:
            item.stash[spec_key] = LoadSpec.parse(marker.kwargs, tuple(marker.args))
        except ConfigError as exc:
            message = "\n".join([f"{item.nodeid}: invalid @pytest.mark.load(...):",
                                  *(f"  - {p}" for p in exc.problems)])
            return InvalidLoadTest.from_parent(collector, name=name, message=message)
    return result


@pytest.fixture
def load(request: pytest.FixtureRequest) -> Load:
    """Runs the test's ``@pytest.mark.load`` executor: ``result = load.run(user)``."""
    item = request.node
    spec = item.stash.get(spec_key, None)
    if spec is None:
        marker = item.get_closest_marker("load")
        if marker is None:
            raise pytest.UsageError(
                f"{item.nodeid} uses the 'load' fixture without @pytest.mark.load(...): add the "
                "marker with the load to run, e.g. @pytest.mark.load(vus=10, duration='30s')")
        spec = LoadSpec.parse(marker.kwargs, tuple(marker.args))
    session = _session(request.config)
    nodeid = item.nodeid
    refused: str | None = None
    try:  # a target outside the allowlist errors the test before any load (or packet)
        session.check_targets()
    except TargetRefused as exc:
        refused = session.redactor.redact(str(exc))  # a URL may carry the token
    if refused is not None:  # out of the except block: the failure shows the message alone
        pytest.fail(refused, pytrace=False)

    def run(scenario: Any, store: Any) -> Any:
        __tracebackhide__ = True
        try:
            return session.run_load(nodeid, spec, scenario, store)
        except TargetRefused as exc:  # a fixture set a refused target after set-up
            message = session.redactor.redact(str(exc))
        pytest.fail(message, pytrace=False)

    return Load(nodeid, run, spec.thresholds)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    result = yield
    if item.get_closest_marker("load") is not None and isinstance(item, pytest.Function):
        fixture = item.funcargs.get("load")
        if not isinstance(fixture, Load) or not fixture.called:
            pytest.fail(
                f"{item.nodeid} is marked @pytest.mark.load but never calls load.run(...): "
                "take the 'load' fixture and call load.run(user) with an async function "
                "of the vu", pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    if call.when == "call" and item.get_closest_marker("load") is not None:
        session = _session(item.config)
        result = session.results.get(item.nodeid)
        if result is not None:
            session.set_outcome(item.nodeid, report.outcome)
            props = report_properties(result)
            report.user_properties += props
            # JUnit reads the properties off the teardown report, which copies the item's.
            item.user_properties += props
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Targets are set by now (a conftest may start them in pytest_sessionstart)."""
    s = session.config.stash.get(session_key, None)
    if s is not None:
        s.note_targets()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    session = config.stash.get(session_key, None)
    if session is None:
        return
    _report_outputs(terminalreporter, session)
    if not session.results:
        return
    for text in session.terminal_summaries():
        terminalreporter.write_sep("=", "load test summary")
        terminalreporter.write(text + "\n")
    directory = session.write_artifacts()
    if directory is not None:
        terminalreporter.write_line(f"load results: {directory}")
    for line in session.finish():
        terminalreporter.write_line(line)


def _report_outputs(terminalreporter: Any, session: NovaloadSession) -> None:
    """Warnings not shown yet, and one line per output that lost anything (redacted: a
    receiver's answer is quoted)."""
    redact = session.redactor.redact
    for text in session.outputs.take_notices():
        terminalreporter.write_line(redact(f"pytest-novaload: {text}"), yellow=True)
    for report in session.outputs.reports:
        if not report.ok:
            notes = "".join(f"; {n}" for n in report.notes)
            terminalreporter.write_line(redact(f"pytest-novaload output {report.line()}{notes} "
                                               "(the load and its verdict were not affected)"),
                                        yellow=True)
    for line in session.output_notes:
        terminalreporter.write_line(redact(line), yellow=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    s = session.config.stash.get(session_key, None)
    if s is not None:
        s.write_artifacts()
        s.finish()
        reports = s.outputs.close()
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # xdist worker: the controller prints these
            workeroutput["novaload_outputs"] = [
                *s.outputs.take_notices(),
                *(f"output {r.line()} on worker {workeroutput.get('workerid', '?')}"
                  for r in reports if not r.ok)]


def pytest_report_header(config: pytest.Config) -> str | None:
    """The resolved options and where each came from, so a run's profile is never a guess."""
    session = config.stash.get(session_key, None)
    if session is None:
        return None
    o = session.options
    src = o.sources

    def where(key: str) -> str:
        return f" ({src[key]})" if key in src else ""

    from pytest_novaload.engine.runner import loop_name
    outs = session.outputs
    targets = [f"prometheus-rw={display_target(p.url)}" for p in outs.prom]
    targets += [f"json={j.path}" for j in outs.json] + [f"json={t}" for t in outs.join]
    source = config.stash.get(out_source_key, None)
    out = f", load_out={' '.join(targets)} ({source})" if targets else ""
    return (f"novaload: load_scale={o.scale:g}{where('load_scale')}, "
            f"load_duration_scale={o.duration_scale:g}{where('load_duration_scale')}, "
            f"load_results={o.results or 'off'}{where('load_results')}, loop={loop_name()}"
            f"{out}{_gate_header(o)}\nnovaload: load_allow_hosts=loopback"
            + "".join(f",{e}" for e in o.allow_hosts.entries) + where(ALLOW_INI))


def _gate_header(o: Options) -> str:
    """The PR gate's options, when any is set."""
    src = o.sources
    parts = [f"{key}={value}" + (f" ({src[key]})" if key in src else "")
             for key, value in (("load_baseline", o.baseline),
                                ("load_baseline_save", o.baseline_save),
                                ("load_regressions", o.regressions),
                                ("load_marginal_fails", "yes" if o.marginal_fails else None))
             if value]
    return "".join(f", {p}" for p in parts)
