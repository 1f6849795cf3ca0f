"""Where redaction and the allowlist sit (issue 8): ErrorLog capture, cuts, the HTTP client's
user info and target checks, the session's artifacts. Nothing here opens a connection: the
HTTP client only resolves targets (no I/O) and the refusals come before any connect."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from pytest_novaload.allowlist import Allowlist
from pytest_novaload.clients.base import ClientContext
from pytest_novaload.clients.http import HttpClient
from pytest_novaload.errors import TargetRefused
from pytest_novaload.metrics import MetricStore
from pytest_novaload.metrics.errors import EXAMPLE_MAX, TRACEBACK_MAX, ErrorLog
from pytest_novaload.options import Options
from pytest_novaload.redact import MASK, Redactor
from pytest_novaload.session import NovaloadSession

SECRET = "s3cr3t-value-42"


def test_clip_redacts_before_cutting_and_leaves_no_piece_of_a_secret_at_a_cut() -> None:
    r = Redactor([SECRET])
    # The secret straddles the limit: cutting first would keep its first half.
    text = "x" * 95 + SECRET + "tail"
    assert r.clip(text, 110) == "x" * 95 + MASK + "tail"
    # A text that arrived cut already (the first bytes of a body) ends in a secret's prefix.
    assert r.clip("body " + SECRET[:9], 100) == "body " + MASK
    # Keeping the end: a secret's suffix at the start is masked.
    assert r.clip(SECRET[-8:] + " rest", 100, keep="tail") == MASK + " rest"
    long = SECRET + "y" * 200
    assert SECRET[3:] not in r.clip(long, 190, keep="tail")


def test_error_log_redacts_examples_and_tracebacks_once_at_capture() -> None:
    log = ErrorLog(Redactor([SECRET]))
    log.record("http_req_failed", "HTTP 500", "y" * (EXAMPLE_MAX - 5) + SECRET)
    log.record("http_req_failed", "HTTP 500", "second " + SECRET)  # only counted
    try:
        raise RuntimeError(f"token abc.def{SECRET[:6]}x " + "z" * TRACEBACK_MAX + SECRET)
    except RuntimeError as exc:
        log.add(exc)
    entries = log.to_list()
    assert [e["count"] for e in entries] == [1, 2]
    dumped = json.dumps(entries)
    assert SECRET not in dumped and SECRET[-6:] not in dumped
    assert entries[0]["traceback"].endswith(f"zzz{MASK}\n"), entries[0]["traceback"][-50:]
    assert entries[0]["example"].endswith(f"zzz{MASK}")
    assert len(entries[1]["example"]) <= EXAMPLE_MAX
    assert entries[1]["example"].endswith(MASK)


def test_error_log_defaults_to_the_environments_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", SECRET)
    log = ErrorLog()
    log.record("ws_failed", "WsConnectError", f"rejected {SECRET}")
    assert log.to_list()[0]["example"] == f"rejected {MASK}"


def _client(env: dict[str, str], allow: Allowlist | None = None) -> HttpClient:
    return HttpClient(ClientContext(MetricStore(), 1, env=env,
                                    allowlist=allow or Allowlist()))


def test_api_url_user_info_is_sent_as_basic_auth_and_never_in_a_url() -> None:
    client = _client({"API_URL": "http://app%40x:p%3Ass@127.0.0.1:8000/api", "API_TOKEN": "t"})
    target = client._target("GET", "/vms")
    assert target.url == "http://127.0.0.1:8000/api/vms"
    basic = base64.b64encode(b"app@x:p:ss").decode()
    assert target.defaults["authorization"] == ("Authorization", f"Basic {basic}")
    assert f"Authorization: Basic {basic}\r\n".encode() in target.simple
    # Per-call absolute URLs: their own user info, to their own origin.
    other = client._target("GET", "http://u:pw@127.0.0.2:9000/x")
    assert other.url == "http://127.0.0.2:9000/x"
    assert other.defaults["authorization"][1] == "Basic " + base64.b64encode(b"u:pw").decode()
    plain = client._target("GET", "http://127.0.0.3/")
    assert "authorization" not in plain.defaults  # neither token nor credentials elsewhere


def test_the_token_still_goes_to_the_api_origin_without_user_info() -> None:
    target = _client({"API_URL": "http://127.0.0.1:8000", "API_TOKEN": "tok"})._target("GET", "/")
    assert target.defaults["authorization"] == ("Authorization", "Bearer tok")


def test_http_targets_off_the_list_are_refused_before_any_io() -> None:
    with pytest.raises(TargetRefused, match=r"host '10\.1\.2\.3' \(API_URL http://u:\*\*\*@"):
        _client({"API_URL": "http://u:pw@10.1.2.3:8000"})
    client = _client({"API_URL": "http://127.0.0.1:8000"})
    with pytest.raises(TargetRefused, match=r"--load-allow-hosts api\.example\.com") as info:
        client._target("GET", "https://user:pw@api.example.com/v1")
    assert "pw@" not in str(info.value) and info.value.host == "api.example.com"
    allowed = _client({"API_URL": "http://127.0.0.1:8000"}, Allowlist(["*.example.com"]))
    assert allowed._target("GET", "https://api.example.com/v1").host == "api.example.com"


def test_session_artifacts_and_messages_hide_secrets_the_env_held_earlier(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1/db")
    written: list[str] = []
    session = NovaloadSession(Options(results=str(tmp_path)), write=written.append)
    session.note_targets()
    monkeypatch.delenv("DATABASE_URL")  # a fixture restored the environment
    session.write(f"progress {SECRET}\n")
    session._log(f"line {SECRET}")
    path = session.write_file("extra.txt", f"a {SECRET} b")
    assert path is not None and path.read_text() == f"a {MASK} b"
    assert written == [f"progress {MASK}\n"]
    log = (path.parent / "run.log").read_text()
    assert SECRET not in log and MASK in log
    assert session.targets["DATABASE_URL"] == "postgresql://app:***@127.0.0.1/db"
