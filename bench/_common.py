"""What the one-core speed benchmarks (http_rps, ws_rps, db_qps) share: CPU pinning, a free
loopback port, a target server started pinned to its CPU (its whole process group stopped on
exit), a generator run in a child process that prints its result as one JSON line, and the
per-round ratios against the peer measured in the same run.

The scripts import it as ``_common`` (they run as ``python bench/NAME.py``, so this folder
is on ``sys.path``). The generators' measured loops stay in each script, untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def pin(cpu: int, pid: int = 0) -> None:
    """Pin process ``pid`` (0: this one) to ``cpu``; a no-op where affinity is unsupported."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(pid, {cpu})


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def add_cpu_args(parser: argparse.ArgumentParser) -> None:
    """``--client-cpu`` (the generators) and ``--server-cpu`` (the target), 0 and 1."""
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--server-cpu", type=int, default=1)


def wait_listening(port: int, proc: subprocess.Popen[Any] | None = None,
                   timeout: float = 10.0) -> None:
    """Return once 127.0.0.1:``port`` accepts; raise when ``proc`` exits first or after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
            raise RuntimeError(f"the target on 127.0.0.1:{port} did not start")
        time.sleep(0.05)


@contextlib.contextmanager
def serve(cmd: Sequence[str], port: int, cpu: int, *,
          quiet: bool = True) -> Iterator[subprocess.Popen[Any]]:
    """Run the server ``cmd`` in its own process group pinned to ``cpu`` (what it forks
    inherits the pin) until it listens on ``port``; on exit SIGTERM the group, SIGKILL it
    after 10 s. ``quiet``: its output goes to /dev/null."""
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(list(cmd), preexec_fn=lambda: pin(cpu), stdout=out, stderr=out,
                            start_new_session=True)
    try:
        wait_listening(port, proc)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_json(script: str, argv: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run ``script`` with ``argv`` in a child Python (this checkout first on its path) and
    return the JSON object its last output line holds."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True,
                         env=env, check=True, timeout=timeout)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def print_ratios(tools: Sequence[str], runs: Mapping[str, Sequence[float]],
                 cpus: Mapping[str, Sequence[float]], *, base: str, per: str,
                 notes: Mapping[str, str]) -> None:
    """Each tool against ``base``, round by round (median printed): by throughput, and by CPU
    seconds per ``per`` where both measured it every round (on a shared machine a generator
    may not get its whole core; CPU per operation compares the code even then)."""
    if not runs.get(base):
        return
    for tool in tools:
        if tool == base or not runs[tool]:
            continue
        ratios = [a / b for a, b in zip(runs[tool], runs[base], strict=False) if b]
        print(f"{tool}/{base} = {statistics.median(ratios):.2f}x (per round: "
              f"{', '.join(f'{x:.2f}' for x in ratios)}){notes.get(tool, '')}")
        if cpus[tool] and len(cpus[tool]) == len(cpus[base]):
            eff = [b / a for a, b in zip(cpus[tool], cpus[base], strict=True)]
            print(f"{tool}/{base} by CPU per {per} = {statistics.median(eff):.2f}x")
