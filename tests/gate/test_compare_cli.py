"""``python -m pytest_novaload compare OLD NEW`` end to end, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_novaload.gate.baseline import save_baseline
from tests.gate.summaries import make_test, summary, write_run

NODE = "tests/perf/test_api_load.py::test_api_vm_crud"


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_novaload", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=60, check=False)


def test_regressed_run_exits_1_with_the_table(tmp_path: Path) -> None:
    old = write_run(tmp_path / "old", summary(make_test(p95=100.0)))
    new = write_run(tmp_path / "new", summary(make_test(p95=130.0)))
    r = _run("compare", old, new, cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert f"{NODE}  REGRESSED" in r.stdout
    assert "http_req_duration p(95)" in r.stdout and "+30 ms (+30.0%)" in r.stdout
    assert "130 ms [124, 136]" in r.stdout and r.stderr == ""


def test_unchanged_and_noisy_runs_exit_0(tmp_path: Path) -> None:
    old = write_run(tmp_path / "old", summary(make_test(p95=100.0)))
    same = write_run(tmp_path / "same", summary(make_test(p95=103.0)))
    r = _run("compare", old, same / "summary.json", cwd=tmp_path)
    assert r.returncode == 0 and f"{NODE}  pass" in r.stdout
    noisy = write_run(tmp_path / "noisy", summary(make_test(p95=125.0, width=0.3)))
    r = _run("compare", old, noisy, cwd=tmp_path)
    assert r.returncode == 0 and f"{NODE}  inconclusive" in r.stdout
    assert "within the noise" in r.stdout


def test_baseline_file_as_old_new_and_incomparable_tests(tmp_path: Path) -> None:
    base = save_baseline(tmp_path / "baseline.json",
                         summary(make_test(p95=100.0), make_test("x.py::other")))
    other = make_test("x.py::other", executor={"type": "constant-vus", "vus": 5,
                                                "duration": "10s"})
    new = write_run(tmp_path / "new", summary(make_test(p95=101.0), other,
                                              make_test("x.py::fresh")))
    r = _run("compare", base, new, "--format", "markdown", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"### `{NODE}` — pass" in r.stdout
    assert "### `x.py::other` — incomparable: another executor" in r.stdout
    assert "### `x.py::fresh` — new" in r.stdout


def test_json_output_and_rules_option(tmp_path: Path) -> None:
    old = write_run(tmp_path / "old", summary(make_test(p95=100.0)))
    new = write_run(tmp_path / "new", summary(make_test(p95=130.0)))
    r = _run("compare", old, new, "--format", "json", "--rules", "trend=p(95) +50%",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out[NODE]["verdict"] == "pass"
    assert [s["stat"] for s in out[NODE]["stats"]] == ["p(95)"]


@pytest.mark.parametrize(("args", "says"), [
    (("compare", "missing-dir", "new"), "error: OLD 'missing-dir': no such file or directory"),
    (("compare", "old", "corrupt.json"), "error: NEW 'corrupt.json' is not valid JSON"),
    (("compare", "old", "baseline.json"), "error: NEW 'baseline.json' is not a summary.json"),
    (("compare", "old", "new", "--rules", "trend=p95 +1%"),
     "Did you mean 'p(95) +1%'?"),
    (("compare", "old"), "the following arguments are required: NEW"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
    ((), "the following arguments are required: command"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path, args: tuple[str, ...],
                                                 says: str) -> None:
    write_run(tmp_path / "old", summary())
    write_run(tmp_path / "new", summary())
    (tmp_path / "corrupt.json").write_text('{"tests": [')
    save_baseline(tmp_path / "baseline.json", summary())
    r = _run(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert says in r.stderr and r.stdout == ""


def test_the_command_does_not_import_pytest(tmp_path: Path) -> None:
    old = write_run(tmp_path / "old", summary())
    code = ("import sys; from pytest_novaload.__main__ import main; "
            f"rc = main(['compare', {str(old)!r}, {str(old)!r}]); "
            "assert 'pytest' not in sys.modules, 'compare imports pytest'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stderr
