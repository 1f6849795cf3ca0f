"""The protocol clients are imported before the load's clock starts, not by the first VU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CODE = '''
import json, sys
from pytest_novaload.engine.runner import LoadRunner
from pytest_novaload.spec import LoadSpec

names = ("pytest_novaload.clients.http", "pytest_novaload.clients.websocket",
         "pytest_novaload.clients.postgres")
before = [n in sys.modules for n in names]
seen = []

async def user(vu):
    seen.append([n in sys.modules for n in names])

LoadRunner(LoadSpec.parse({"vus": 1, "iterations": 1}).plan(), user, env={}).run()
print(json.dumps({"before": before, "first_iteration": seen[0]}))
'''


def test_clients_are_loaded_before_the_first_iteration() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["before"] == [False, False, False]   # a fresh process: nothing loaded yet
    assert got["first_iteration"] == [True, True, True]
