"""The target allowlist end to end (issue 8): load goes to loopback and allowed hosts only.

Every run that names a non-loopback address happens inside a network namespace that has only
loopback (``unshare -n``, then ``ip link set lo up``): even a broken check could not send a
packet off the machine. The refusal must come before DNS and connect, name the host and the
option, error (or fail) that test only, and let the rest of the session run; an allowed host
passes the check and then fails as the network does (unreachable), not as a refusal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.timing import scaled

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None,
    reason="needs root, unshare and ip for a loopback-only network namespace")

# A loopback target inside the namespace (the outer test's servers are not reachable there).
CONFTEST = '''
import asyncio, threading
import pytest
from aiohttp import web

@pytest.fixture
def local_api(monkeypatch):
    ready, state = threading.Event(), {}

    async def ok(request):
        return web.json_response({"ok": True})

    def serve():
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/{tail:.*}", ok)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        state["port"] = site._server.sockets[0].getsockname()[1]
        state["loop"], state["stop"] = loop, asyncio.Event()
        ready.set()
        loop.run_until_complete(state["stop"].wait())
        loop.run_until_complete(runner.cleanup())

    threading.Thread(target=serve, daemon=True).start()
    assert ready.wait(10)
    monkeypatch.setenv("API_URL", f"http://127.0.0.1:{state['port']}")
    yield
    state["loop"].call_soon_threadsafe(state["stop"].set)
'''

PER_CALL = '''
import pytest

@pytest.mark.load(executor="per-vu-iterations", vus=1, iterations=3)
def test_remote_http(load):
    async def user(vu):
        await vu.http.get("http://10.255.1.2:8000/vms")
    load.run(user)

@pytest.mark.load(executor="per-vu-iterations", vus=1, iterations=3)
def test_remote_ws(load):
    async def user(vu):
        async with vu.ws("ws://api.staging.example:9000/ws") as conn:
            await conn.send("x")
    load.run(user)

@pytest.mark.load(executor="per-vu-iterations", vus=1, iterations=3)
def test_mapped_ipv6(load):
    async def user(vu):
        await vu.http.get("http://[::ffff:10.9.9.9]:80/")
    load.run(user)

@pytest.mark.load(executor="per-vu-iterations", vus=1, iterations=4)
def test_loopback(local_api, load):
    async def user(vu):
        r = await vu.http.get("/ok")
        assert r.status_code == 200
    result = load.run(user)
    assert result.metric("http_reqs").count == 4

def test_plain():
    pass
'''

ENV_TARGET = '''
import pytest

CASES = {
    "api": ("API_URL", "http://10.255.1.2:8000"),
    "ws": ("WS_URL", "ws://ws.staging.example/ws"),
    "dwcp": ("DWCP_WS_URL", "ws://[fd00::7]:9000/dwcp"),
    "db": ("DATABASE_URL", "postgresql://app:S3cretDbPw@db.internal:5432/app"),
}

@pytest.fixture(params=list(CASES))
def remote(request, monkeypatch):
    key, value = CASES[request.param]
    monkeypatch.setenv(key, value)

@pytest.mark.load(executor="per-vu-iterations", vus=1, iterations=2)
def test_env_target(remote, load):
    async def user(vu):
        await vu.http.get("/vms")
    load.run(user)

def test_plain():
    pass
'''

ALLOWED = '''
import pytest

@pytest.mark.load(executor="per-vu-iterations", vus=1, iterations=2)
def test_allowed(load):
    async def user(vu):
        await vu.http.get("/vms")
    load.run(user)
'''


def _run_in_netns(pytester: pytest.Pytester, env: dict[str, str], *args: str,
                  ini: str = "") -> subprocess.CompletedProcess[str]:
    """pytest on pytester's folder in a fresh network namespace with only loopback up."""
    pytester.makeini(f"[pytest]\n{ini}")
    clean = {k: v for k, v in os.environ.items()
             if k not in ("API_URL", "WS_URL", "DWCP_WS_URL", "DATABASE_URL", "API_TOKEN",
                          "NOVALOAD_ALLOW_HOSTS", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    clean.update(env)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
           "--load-progress", "off", f"--load-results={pytester.path / 'results'}",
           "-rA", *args]
    script = "ip link set lo up && exec " + " ".join(_quote(c) for c in cmd)
    return subprocess.run(["unshare", "-n", "bash", "-c", script], cwd=pytester.path,
                          env=clean, capture_output=True, text=True, timeout=scaled(120))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _outcomes(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_per_call_targets_off_the_list_are_refused_and_the_session_goes_on(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(PER_CALL)
    proc = _run_in_netns(pytester, {})
    out = proc.stdout + proc.stderr
    assert "3 failed, 2 passed" in _outcomes(out), out[-4000:]
    for host, entry in (("10.255.1.2", "10.255.1.2"), ("api.staging.example",) * 2,
                        ("::ffff:10.9.9.9", "10.9.9.9")):
        assert f"refused to send load to host '{host}'" in out, out[-4000:]
        assert f"--load-allow-hosts {entry} " in out
    assert "(vu.http URL http://10.255.1.2:8000/vms)" in out
    assert "NOVALOAD_ALLOW_HOSTS" in out and "load_allow_hosts" in out
    # Refused before anything was tried: no connection error, no DNS error was counted.
    assert "ConnectError" not in out and "gaierror" not in out and "Name or service" not in out
    assert "PASSED test_per_call_targets_off_the_list_are_refused_and_the_session_goes_on.py" \
           "::test_loopback" in out


def test_an_env_target_off_the_list_errors_the_test_before_any_load(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ENV_TARGET)
    proc = _run_in_netns(pytester, {"API_URL": "http://127.0.0.1:9"})
    out = proc.stdout + proc.stderr
    assert "1 passed, 4 errors" in _outcomes(out), out[-4000:]
    for case, key, host in (("api", "API_URL", "10.255.1.2"),
                            ("ws", "WS_URL", "ws.staging.example"),
                            ("dwcp", "DWCP_WS_URL", "fd00::7"),
                            ("db", "DATABASE_URL", "db.internal")):
        assert f"ERROR at setup of test_env_target[{case}]" in out, out[-4000:]
        assert f"refused to send load to host '{host}' ({key} " in out, out[-4000:]
    assert "postgresql://app:***@db.internal:5432/app" in out
    assert "S3cretDbPw" not in out
    assert not any((pytester.path / "results").rglob("summary.json"))  # no load ran


def test_a_refusal_never_shows_the_token_in_the_refused_url(pytester: pytest.Pytester) -> None:
    token = "tok" + "5f1d" * 6
    pytester.makepyfile(ALLOWED)
    proc = _run_in_netns(pytester, {"API_URL": f"http://api.staging.example/v1?k={token}",
                                    "API_TOKEN": token})
    out = proc.stdout + proc.stderr
    assert "refused to send load to host 'api.staging.example' (API_URL " in out, out[-4000:]
    assert "?k=***" in out, out[-4000:]
    assert token not in out, out[-4000:]


@pytest.mark.parametrize("how", ["cli", "env", "ini"])
def test_an_allowed_host_passes_the_check_and_fails_as_the_network_does(
        pytester: pytest.Pytester, how: str) -> None:
    pytester.makepyfile(ALLOWED)
    env = {"API_URL": "http://10.255.1.2:8000"}
    args: list[str] = ["--junitxml", str(pytester.path / "j.xml")]
    if how == "cli":
        args += ["--load-allow-hosts", "10.0.0.0/8,api.example"]
    elif how == "env":
        env["NOVALOAD_ALLOW_HOSTS"] = "10.0.0.0/8 api.example"
    ini = "load_allow_hosts = 10.0.0.0/8, api.example\n" if how == "ini" else ""
    proc = _run_in_netns(pytester, env, *args, ini=ini)
    out = proc.stdout + proc.stderr
    assert "refused to send load" not in out, out[-3000:]
    # The request went to the network and failed there (the namespace has only loopback).
    assert "ConnectError" in out and "unreachable" in out.lower(), out[-3000:]
    source = {"cli": "--load-allow-hosts", "env": "NOVALOAD_ALLOW_HOSTS",
              "ini": "ini load_allow_hosts"}[how]
    assert f"load_allow_hosts=loopback,10.0.0.0/8,api.example ({source})" in out, out[:2000]


DB_POOL = '''
import asyncio
from pytest_novaload.clients.db_pool import DbPool
from pytest_novaload.errors import TargetRefused

async def main():
    for dsn in ("postgresql://app:S3cretDbPw@10.255.1.2/app", "host=db.internal user=app"):
        try:
            await DbPool(dsn).get({}, {})
        except TargetRefused as exc:
            print("REFUSED", exc)
asyncio.run(main())
'''


def test_the_db_pool_refuses_a_dsn_off_the_list_before_it_connects(tmp_path: Path) -> None:
    script = tmp_path / "pool.py"
    script.write_text(DB_POOL)
    inner = f"ip link set lo up && exec {_quote(sys.executable)} {_quote(str(script))}"
    proc = subprocess.run(["unshare", "-n", "bash", "-c", inner], capture_output=True,
                          text=True, timeout=scaled(60))
    out = proc.stdout + proc.stderr
    assert out.count("REFUSED") == 2, out
    assert "host '10.255.1.2' (dsn postgresql://app:***@10.255.1.2/app)" in out
    assert "host 'db.internal'" in out and "S3cretDbPw" not in out
