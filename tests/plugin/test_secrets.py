"""No secret in any artifact, log, terminal line or JUnit XML (issue 8), end to end.

A loopback server echoes the Authorization and Cookie headers it receives into its error
bodies (JSON and raw text) and reason phrases; the scenario also raises exceptions that carry
the DSN and the token, and runs a query whose PostgreSQL error quotes the database password.
Then every file the run wrote, the terminal output and the JUnit XML are searched for every
secret in every spelling that matters. Positive checks make sure the secrets really were sent
and echoed, so the test cannot pass by missing the leak.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from tests.plugin.conftest import serve_app
from tests.timing import scaled

TOKEN = "tok" + secrets.token_hex(12)
API_PW = "apipw" + secrets.token_hex(8)
DB_PW = "dbpw" + secrets.token_hex(8)
COOKIE = "ck" + secrets.token_hex(10)
BASIC = base64.b64encode(f"apiuser:{API_PW}".encode()).decode()

SCENARIO = '''
import os
from urllib.parse import urlsplit

import pytest

@pytest.mark.load(executor="per-vu-iterations", vus=2, iterations=3,
                  thresholds={"http_req_failed": ["rate<0.01"]})
def test_leaky(load):
    async def user(vu):
        await vu.http.get("/echo/500", cookies={"session_id": os.environ["SESSION_COOKIE"]})
        await vu.http.get("/echo/401?fmt=text")
        if vu.iteration == 0:
            raise RuntimeError("cannot use " + os.environ["DATABASE_URL"] + " token "
                               + os.environ["API_TOKEN"] + " api " + os.environ["API_URL"])
        if vu.iteration == 1:
            # PostgreSQL's error quotes the value: here the password itself.
            await vu.db.fetchval("SELECT $1::text::int",
                                 urlsplit(os.environ["DATABASE_URL"]).password)

    load.run(user)
'''


@dataclass
class Echo:
    url: str = ""
    seen: list[str] = field(default_factory=list)


def _app(echo: Echo) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        cookie = request.headers.get("Cookie", "")
        echo.seen.append(auth)
        status = int(request.match_info["status"])
        headers = {"Set-Cookie": f"sid={COOKIE}; HttpOnly"}
        reason = f"Denied {auth}"
        if request.query.get("fmt") == "text":
            body = (f"you sent\r\nAuthorization: {auth}\r\nCookie: {cookie}\r\n"
                    f"Set-Cookie: sid={COOKIE}\r\n")
            return web.Response(status=status, reason=reason, text=body, headers=headers)
        return web.Response(status=status, reason=reason, headers=headers,
                            text=json.dumps({"error": "no", "headers": dict(request.headers)}))

    app = web.Application()
    app.router.add_get("/echo/{status}", handle)
    return app


@pytest.fixture
def echo() -> Iterator[Echo]:
    e = Echo()
    with serve_app(_app(e)) as port:
        e.url = f"127.0.0.1:{port}"
        yield e


@pytest.fixture(scope="module")
def pg_port() -> Iterator[int]:
    from novacron_sim.pg import PostgresNotFound, start_postgres

    try:
        cluster = start_postgres()
    except PostgresNotFound as exc:
        pytest.skip(str(exc))
    try:
        yield cluster.port
    finally:
        cluster.stop()


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize(("userinfo", "xdist"), [(False, False), (True, False), (True, True)],
                         ids=["token", "userinfo", "userinfo-n2"])
def test_no_secret_in_any_artifact_terminal_or_junit(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, echo: Echo, pg_port: int,
        userinfo: bool, xdist: bool) -> None:
    if xdist:
        pytest.importorskip("xdist")
    api_url = f"http://apiuser:{API_PW}@{echo.url}" if userinfo else f"http://{echo.url}"
    monkeypatch.setenv("API_URL", api_url)
    monkeypatch.setenv("API_TOKEN", TOKEN)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres:{DB_PW}@127.0.0.1:{pg_port}/"
                                       "novacron")
    for env in ("WS_URL", "DWCP_WS_URL", "NOVALOAD_ALLOW_HOSTS", "NOVALOAD_RESULTS"):
        monkeypatch.delenv(env, raising=False)
    pytester.makeini("[pytest]\n")
    monkeypatch.setenv("SESSION_COOKIE", COOKIE)  # not in the source: pytest shows it
    pytester.makepyfile(SCENARIO)
    junit = pytester.path / "junit.xml"
    args = ["-p", "no:cacheprovider", "--load-progress", "lines", "-rA", "-v",
            f"--load-results={pytester.path / 'results'}", f"--junitxml={junit}"]
    if xdist:
        args += ["-n", "2"]
    result = pytester.runpytest_subprocess(*args, timeout=scaled(120))
    result.assert_outcomes(failed=1)

    # The secrets were really sent and echoed: Basic auth from API_URL's user info (as httpx),
    # else the Bearer token, to the API origin.
    want = f"Basic {BASIC}" if userinfo else f"Bearer {TOKEN}"
    assert echo.seen and all(a == want for a in echo.seen), echo.seen[:3]
    text = result.stdout.str() + result.stderr.str()
    assert "http_req_failed" in text and "HTTP 500" in text, text[-3000:]

    (run_dir,) = (pytester.path / "results").iterdir()
    files = _files(run_dir)
    names = {p.name for p in files}
    assert {"summary.json", "SUMMARY.md", "report.html", "timeseries.ndjson",
            "run.log"} <= names, names
    leaks = {TOKEN, API_PW, DB_PW, COOKIE, BASIC}
    for path in [*files, junit]:
        content = path.read_text(encoding="utf-8", errors="replace")
        for secret in leaks:
            assert secret not in content, f"{secret} leaked into {path.name}"
    for secret in leaks:
        assert secret not in text, f"{secret} leaked into the terminal"

    # What the user sees instead: the examples with masks, the targets with the user kept.
    data = json.loads((run_dir / "summary.json").read_text())
    (test,) = data["tests"]
    examples = " ".join(f'{e["type"]} {e["example"]} {e.get("traceback", "")}'
                        for e in test["errors"])
    assert '"Authorization": "***"' in examples and "Authorization: ***" in examples, examples
    assert "HTTP 500" in examples and "RuntimeError" in examples, examples
    assert "InvalidTextRepresentation" in examples, examples
    assert data["targets"]["DATABASE_URL"] == (
        f"postgresql://postgres:***@127.0.0.1:{pg_port}/novacron")
    if userinfo:
        assert data["targets"]["API_URL"] == f"http://apiuser:***@{echo.url}"
        # The user info is never part of a shown URL: it went as a header.
        assert f"GET http://{echo.url}/echo/500 -> 500" in examples, examples


CRASH_CONFTEST = '''
import os

import pytest_novaload.engine.runtime as runtime


def broken_new_vu(self):
    # A bug or broken set-up inside the runner itself (not the scenario): its exception, and
    # the one it was raised from, quote every secret of the environment.
    try:
        raise ConnectionError("no route to " + os.environ["API_URL"])
    except ConnectionError as exc:
        raise RuntimeError("pool broke for " + os.environ["DATABASE_URL"] + " with token "
                           + os.environ["API_TOKEN"]) from exc


runtime.RunContext.new_vu = broken_new_vu
'''


@pytest.mark.parametrize("xdist", [False, True], ids=["n0", "n2"])
def test_a_runner_crash_is_redacted_in_terminal_run_log_and_junit(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: bool) -> None:
    if xdist:
        pytest.importorskip("xdist")
    monkeypatch.setenv("API_URL", f"http://apiuser:{API_PW}@127.0.0.1:9")
    monkeypatch.setenv("API_TOKEN", TOKEN)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres:{DB_PW}@127.0.0.1:9/novacron")
    for env in ("WS_URL", "DWCP_WS_URL", "NOVALOAD_ALLOW_HOSTS", "NOVALOAD_RESULTS"):
        monkeypatch.delenv(env, raising=False)
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(CRASH_CONFTEST)
    pytester.makepyfile('''
        import pytest

        @pytest.mark.load(executor="per-vu-iterations", vus=1, iterations=1)
        def test_crash(load):
            load.run(lambda vu: None)
    ''')
    junit = pytester.path / "junit.xml"
    args = ["-p", "no:cacheprovider", "--load-progress", "lines", "-rA", "-v",
            "--tb=long", f"--load-results={pytester.path / 'results'}", f"--junitxml={junit}"]
    if xdist:
        args += ["-n", "2"]
    result = pytester.runpytest_subprocess(*args, timeout=scaled(120))
    result.assert_outcomes(failed=1)
    text = result.stdout.str() + result.stderr.str()
    # The crash is shown, with its story (both exceptions), the secrets masked.
    assert "pool broke for postgresql://postgres:***@127.0.0.1:9/novacron" in text, text[-4000:]
    assert "with token ***" in text and "no route to http://apiuser:***@127.0.0.1:9" in text
    (run_dir,) = (pytester.path / "results").iterdir()
    log = (run_dir / "run.log").read_text()
    assert "pool broke for postgresql://postgres:***@" in log, log
    (test,) = json.loads((run_dir / "summary.json").read_text())["tests"]
    assert test["outcome"] == "error", test["outcome"]
    leaks = {TOKEN, API_PW, DB_PW, BASIC}
    for path in [*_files(run_dir), junit]:
        content = path.read_text(encoding="utf-8", errors="replace")
        for secret in leaks:
            assert secret not in content, f"{secret} leaked into {path.name}"
    for secret in leaks:
        assert secret not in text, f"{secret} leaked into the terminal"
