"""No secret in what ``--load-out`` streams (issue 8): k6 JSON samples, Prometheus
remote-write labels and OTLP attributes carry tags (names, groups, checks, custom tags) and
the test id, and those may quote a token or a URL with user info. A loopback receiver keeps
every request it gets; the JSON file and the protobuf bodies are searched for every secret,
with and without xdist. Positive checks make sure the tagged samples really were streamed."""

from __future__ import annotations

import gzip
import http.server
import secrets
import threading
from collections.abc import Iterator

import pytest

from pytest_novaload.outputs import _snappy
from tests.plugin.conftest import Target, target  # noqa: F401  (the fixture)
from tests.timing import scaled

TOKEN = "tok" + secrets.token_hex(12)
API_PW = "apipw" + secrets.token_hex(8)
DB_PW = "dbpw" + secrets.token_hex(8)
OTHER_PW = "otherpw" + secrets.token_hex(8)   # in no environment variable: by its place
API_KEY = "key" + secrets.token_hex(10)        # in no environment variable: by its tag name

SCENARIO = '''
import os

import pytest

@pytest.mark.load(executor="per-vu-iterations", vus=2, iterations=3)
def test_tagged(load):
    token = os.environ["API_TOKEN"]
    logins = load.counter("logins")

    async def user(vu):
        await vu.http.get("/items/" + token)                     # the default name: the path
        await vu.http.get("/x", name="http://bob:%(other)s@127.0.0.1/x")  # user info
        await vu.http.get("/y", name="/y?access_token=" + token)
        await vu.http.get("/z", name="/z " + os.environ["API_URL"])
        with vu.group("as " + token):
            vu.check(True, {"token " + token: True})
        logins.add(1, tags={"auth": "Bearer " + token, "api_key": "%(key)s",
                            "dsn": os.environ["DATABASE_URL"]})

    load.run(user)
'''


class Receiver:
    """A remote-write receiver on loopback that keeps every body, decoded (snappy)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.otlp: list[bytes] = []
        self.refuse: bytes = b""  # set: answer 400 with this body (quoting what it was sent)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(size)
                if self.path.endswith("/v1/metrics"):  # OTLP: plain protobuf
                    outer.otlp.append(body)
                else:
                    outer.bodies.append(_snappy.decompress(body))
                if outer.refuse:
                    self.send_response(400)
                    self.send_header("Content-Length", str(len(outer.refuse)))
                    self.end_headers()
                    self.wfile.write(outer.refuse)
                    return
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/api/v1/write"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def _environment(monkeypatch: pytest.MonkeyPatch, target: Target) -> None:  # noqa: F811
    monkeypatch.setenv("API_URL", target.url.replace("http://", f"http://apiuser:{API_PW}@"))
    monkeypatch.setenv("API_TOKEN", TOKEN)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres:{DB_PW}@127.0.0.1:9/novacron")
    for env in ("WS_URL", "DWCP_WS_URL", "NOVALOAD_ALLOW_HOSTS", "NOVALOAD_RESULTS",
                "NOVALOAD_OUT", "K6_PROMETHEUS_RW_TREND_STATS", "K6_PROMETHEUS_RW_STALE_MARKERS"):
        monkeypatch.delenv(env, raising=False)


@pytest.mark.parametrize("xdist", [False, True], ids=["n0", "n2"])
def test_no_secret_in_json_samples_or_remote_write_labels(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, target: Target,  # noqa: F811
        receiver: Receiver, xdist: bool) -> None:
    if xdist:
        pytest.importorskip("xdist")
    _environment(monkeypatch, target)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(SCENARIO % {"other": OTHER_PW, "key": API_KEY})
    json_path = pytester.path / "out.json.gz"
    args = ["-p", "no:cacheprovider", "--load-progress", "off", "--load-results", "off",
            "--load-out", f"json={json_path}", "--load-out", f"prometheus-rw={receiver.url}",
            "--load-out", f"otlp={receiver.base}"]
    if xdist:
        args += ["-n", "2"]
    result = pytester.runpytest_subprocess(*args, timeout=scaled(120))
    result.assert_outcomes(passed=1)
    assert target.counts.get(f"/items/{TOKEN}") == 6  # the tagged requests were made

    with gzip.open(json_path, "rt", encoding="utf-8") as fh:
        samples = fh.read()
    labels = b"".join(receiver.bodies).decode("utf-8", "replace")
    attributes = b"".join(receiver.otlp).decode("utf-8", "replace")
    # What was streamed: every tagged series, its secrets masked.
    for name, text in (("json", samples), ("prometheus-rw", labels), ("otlp", attributes)):
        assert "/items/***" in text and "http://bob:***@127.0.0.1/x" in text, (name, text[:2000])
        assert "/y?access_token=***" in text and "as ***" in text, name
        assert "token ***" in text and "Bearer ***" in text, name
        assert "postgresql://postgres:***@127.0.0.1:9/novacron" in text, name
        for secret in (TOKEN, API_PW, DB_PW, OTHER_PW, API_KEY):
            assert secret not in text, f"{secret} leaked into the {name} output"
    assert "logins" in samples and "k6_logins_total" in labels and "logins" in attributes


def test_a_receiver_quoting_secrets_in_its_refusal_is_redacted_in_the_terminal(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, target: Target,  # noqa: F811
        receiver: Receiver) -> None:
    _environment(monkeypatch, target)
    receiver.refuse = (f"bad sample for series {{name=\"/items/{TOKEN}\"}} from apiuser:"
                       f"{API_PW}@").encode()
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(SCENARIO % {"other": OTHER_PW, "key": API_KEY})
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--load-progress", "off", "--load-results", "off",
        "--load-out", f"prometheus-rw={receiver.url}", timeout=scaled(120))
    result.assert_outcomes(passed=1)
    text = result.stdout.str() + result.stderr.str()
    assert "answered 400: bad sample for series" in text, text[-3000:]
    assert "/items/***" in text, text[-3000:]
    for secret in (TOKEN, API_PW):
        assert secret not in text, f"{secret} leaked into the terminal"
