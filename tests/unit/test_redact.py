"""Redaction: no known secret and no credential-shaped value survives, whatever surrounds it."""

from __future__ import annotations

import base64
import html
import json
import math
import time
from urllib.parse import quote

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from pytest_novaload.redact import (
    MASK,
    Redactor,
    display_target,
    dsn_password,
    redact,
    redact_obj,
    redactor_from_env,
)
from tests.timing import scaled

TOKEN = "tok-Zq81x9mPLk"
ENV = {
    "API_TOKEN": TOKEN,
    "API_URL": "http://bob:b0b-pass@127.0.0.1:8000",
    "WS_URL": "ws://wsuser:ws%2Fpass%40x@127.0.0.1:8001",
    "DWCP_WS_URL": "ws://127.0.0.1:8002",
    "DATABASE_URL": "postgresql://app:db-s3cret@127.0.0.1:5432/app",
}
SECRETS = [TOKEN, "b0b-pass", "ws/pass@x", "db-s3cret",
           base64.b64encode(b"bob:b0b-pass").decode()]


@pytest.fixture
def r() -> Redactor:
    return Redactor.from_env(ENV)


# -- known secrets ---------------------------------------------------------------------------

@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("wrap", [
    lambda s: s,
    lambda s: f"error: unexpected body b'...{s}...'",
    lambda s: json.dumps({"echo": f"you sent {s}"}),
    lambda s: repr(f"x\n{s}\ty"),
    lambda s: html.escape(f"<td>{s}</td>"),
    lambda s: f"/search?q={quote(s, safe='')}",
])
def test_every_env_secret_is_hidden_in_every_spelling(r: Redactor, secret: str, wrap) -> None:
    out = r.redact(wrap(secret))
    assert secret not in out
    assert MASK in out


def test_dsn_key_value_password_is_a_secret() -> None:
    r = Redactor.from_env({"DATABASE_URL": "host=db user=app password='p w\\'x' dbname=app"})
    assert r.redact("server said: p w'x is wrong") == f"server said: {MASK} is wrong"
    r = Redactor.from_env({"DATABASE_URL": "host=db password=hunter22 user=app"})
    assert r.redact("hunter22") == MASK


def test_query_password_is_a_secret() -> None:
    r = Redactor.from_env({"DATABASE_URL": "postgresql://db/app?user=app&password=q%26pw9"})
    assert "q&pw9" not in r.redact("the password q&pw9")


def test_short_secrets_are_hidden_by_place_only() -> None:
    r = Redactor.from_env({"API_URL": "http://user:pw@127.0.0.1:8000", "API_TOKEN": "abc"})
    assert base64.b64encode(b"user:pw").decode() in r.secrets
    assert all(len(s) >= 4 for s in r.secrets)
    assert r.redact("pwd in password=pw and abc") == f"pwd in password={MASK} and abc"
    assert r.redact("GET http://user:pw@127.0.0.1:8000/x") == f"GET http://user:{MASK}@127.0.0.1:8000/x"
    assert r.redact("Authorization: Bearer abc") == f"Authorization: {MASK}"


def test_no_env_no_secrets() -> None:
    assert Redactor.from_env({}).secrets == frozenset()
    assert Redactor.from_env({"API_URL": "http://127.0.0.1:1", "DATABASE_URL": "host=db"}).secrets \
        == frozenset()


def test_longest_secret_first_and_with_secrets() -> None:
    r = Redactor(["abcd", "abcdefgh"]).with_secrets("zzzz")
    assert r.redact("abcdefgh abcd zzzz") == f"{MASK} {MASK} {MASK}"


def test_mask_joining_text_into_a_new_occurrence_is_hidden_too() -> None:
    r = Redactor(["****"])
    assert "****" not in r.redact("*****" * 7)
    r = Redactor(["x***x"])
    assert "x***x" not in r.redact("xx***xx***x")


# -- patterns, no environment needed ---------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("GET / HTTP/1.1\r\nAuthorization: Basic dXNlcjpwdw==\r\nHost: h\r\n",
     f"GET / HTTP/1.1\r\nAuthorization: {MASK}\r\nHost: h\r\n"),
    ("proxy-authorization:  Digest u=1, r=2\nnext", f"proxy-authorization:  {MASK}\nnext"),
    ("COOKIE: a=1; b=2", f"COOKIE: {MASK}"),
    ("Set-Cookie: sid=xyz; HttpOnly\r\n", f"Set-Cookie: {MASK}\r\n"),
    ("b'HTTP/1.1 200\\r\\nSet-Cookie: sid=1\\r\\nX: y'",
     f"b'HTTP/1.1 200\\r\\nSet-Cookie: {MASK}\\r\\nX: y'"),
    ('{"authorization": "Bearer abc", "x": 1}', f'{{"authorization": "{MASK}", "x": 1}}'),
    ('{"Authorization":"Token a\\"b", "x": 1}', f'{{"Authorization":"{MASK}", "x": 1}}'),
    ("{'Cookie': 'a=1', 'set-cookie': ['a', 'b'], 'ok': 3}",
     f"{{'Cookie': '{MASK}', 'set-cookie': {MASK}, 'ok': 3}}"),
    ('"{\\"cookie\\": \\"s=1\\"}"', f'"{{\\"cookie\\": \\"{MASK}\\"}}"'),
    ("Headers([('Cookie', 'a=1'), ('X', 'y')])", f"Headers([('Cookie', '{MASK}'), ('X', 'y')])"),
    ('{"password": 12345, "n": 2}', f'{{"password": {MASK}, "n": 2}}'),
    ('{"token": "abc"}', f'{{"token": "{MASK}"}}'),
    ("sent bearer eyJhbGciOi.J9x-_~+/== ok", f"sent bearer {MASK} ok"),
    ("Bearer\tabc", f"Bearer\t{MASK}"),
    ("http://u:p%40ss@host:1/x", f"http://u:{MASK}@host:1/x"),
    ("see postgresql://app:a@b@db/app.", f"see postgresql://app:{MASK}@db/app."),
    ("wss://:onlypw@h", f"wss://:{MASK}@h"),
    ("host=db user=app password=hunter2 port=1", f"host=db user=app password={MASK} port=1"),
    ("password = 'a b c' x", f"password = {MASK} x"),
    ("/login?user=a&password=zz&next=1", f"/login?user=a&password={MASK}&next=1"),
    ("/cb?access_token=abc.def&x=1", f"/cb?access_token={MASK}&x=1"),
])
def test_credential_shaped_values_are_hidden(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


@pytest.mark.parametrize("text", [
    "http://127.0.0.1:8000/vms/1", "user@example.com", "a: b", "basic usage: 3 VUs",
    "authorized", "cookies are tasty", "p(95)<500", "the password is wrong",
    "http_req_failed rate=0.5", "ws://127.0.0.1:1/ws?x=1", "",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor.from_env(ENV).redact(text) == text


# -- display_target, dsn_password ------------------------------------------------------------

@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://app:s3cr%40t@db:5432/app", "postgresql://app:***@db:5432/app"),
    ("http://user:pw@127.0.0.1:8000", "http://user:***@127.0.0.1:8000"),
    ("http://user@127.0.0.1:8000", "http://user@127.0.0.1:8000"),
    ("http://127.0.0.1:8000/api", "http://127.0.0.1:8000/api"),
    ("host=db user=app password=x dbname=app", "host=db user=app password=*** dbname=app"),
    ("postgresql://db/app?password=x&sslmode=off", "postgresql://db/app?password=***&sslmode=off"),
])
def test_display_target_keeps_the_user_and_hides_the_password(url: str, shown: str) -> None:
    assert display_target(url) == shown
    assert Redactor.from_env(ENV).display_target(url) == shown


@pytest.mark.parametrize(("dsn", "password"), [
    ("postgresql://a:p%40w@h/d", "p@w"), ("postgres://a@h/d", None), ("host=h", None),
    ("host=h password='x y'", "x y"), ("password=abc host=h", "abc"), ("http://[::1", None),
    ("postgresql://h/d?password=a%20b", "a b"), ("", None),
])
def test_dsn_password(dsn: str, password: str | None) -> None:
    assert dsn_password(dsn) == password


# -- redact_obj ------------------------------------------------------------------------------

def test_redact_obj_is_deep_and_hides_credential_keys(r: Redactor) -> None:
    data = {
        "targets": {"DATABASE_URL": ENV["DATABASE_URL"], "API_URL": ENV["API_URL"]},
        "errors": [{"type": "HTTPStatusError", "count": 2, "example": f"body: Bearer {TOKEN}"}],
        "headers": ({"Authorization": "whatever"}, {"X": "1"}),
        "set": {f"x{TOKEN}"}, "raw": b"db-s3cret!", f"key {TOKEN}": 1.5, "n": None, 3: True,
        "Password": None,
    }
    out = r.redact_obj(data)
    text = repr(out)
    for secret in SECRETS:
        assert secret not in text
    assert out["targets"]["DATABASE_URL"] == "postgresql://app:***@127.0.0.1:5432/app"
    assert out["errors"][0] == {"type": "HTTPStatusError", "count": 2,
                                "example": "body: Bearer ***"}
    assert out["headers"] == ({"Authorization": MASK}, {"X": "1"})
    assert out["set"] == {"x***"} and out["raw"] == b"***!" and out["key ***"] == 1.5
    assert out[3] is True and out["n"] is None and out["Password"] is None
    assert data["targets"]["API_URL"] == ENV["API_URL"]  # the input is not changed


def test_redact_obj_keeps_order_and_plain_types(r: Redactor) -> None:
    data = {"b": [1, 2, [3, {"c": "d"}]], "a": (), "e": {}, "f": frozenset({"g"})}
    out = r.redact_obj(data)
    assert out == data and list(out) == ["b", "a", "e", "f"]
    assert r.redact_obj("x") == "x" and r.redact_obj(5) == 5 and r.redact_obj(None) is None


def test_redact_obj_any_depth(r: Redactor) -> None:
    deep: list[object] = [TOKEN]
    for _ in range(100_000):
        deep = [deep]
    out = r.redact_obj(deep)
    for _ in range(100_000):
        out = out[0]
    assert out == [MASK]


# -- the module-level calls read the environment as it is now --------------------------------

def test_module_calls_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "first-token")
    assert redact("first-token") == MASK
    monkeypatch.setenv("API_TOKEN", "second-token")
    assert redact("first-token second-token") == f"first-token {MASK}"
    assert redact_obj({"x": ["second-token"]}) == {"x": [MASK]}
    assert redact("first-token", env={"API_TOKEN": "first-token"}) == MASK
    same = {"API_TOKEN": "same-tok"}
    assert redactor_from_env(same) is redactor_from_env(dict(same))


# -- hostile input is linear -----------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "a." * 500_000, "a://" * 250_000, "http://" + ":" * 1_000_000, "http://u:" + "@" * 1_000_000,
    "Authorization:" + " " * 1_000_000, '"cookie": ["' + '"a" ' * 250_000,
    '"cookie": "' + "\\x" * 500_000, "bearer " * 150_000, "password=" * 100_000,
    "'token'," * 120_000, "\\r\\nCookie" * 100_000, "x" * 1_000_000,
])
def test_hostile_text_is_redacted_in_linear_time(r: Redactor, text: str) -> None:
    """Four times the text costs about four times the time (quadratic would be sixteen).
    CPU time of this process, best of five: a loaded machine's waits are not counted."""
    def cost(t: str) -> float:
        best = math.inf
        for _ in range(5):
            start = time.process_time()
            r.redact(t)
            best = min(best, time.process_time() - start)
        return best

    quarter = text[: len(text) // 4]
    assert cost(text) < 9 * cost(quarter) + scaled(0.02)


# -- properties ------------------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)
_secret = st.text(st.characters(exclude_categories=("Cs",)), min_size=4, max_size=40)
_token68 = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/",
                   min_size=8, max_size=60)
_url_pw = st.text(st.characters(exclude_categories=("Cs", "Zs", "Cc", "Zl", "Zp"),
                                exclude_characters="/?#@"), min_size=1, max_size=30)


@settings(max_examples=1000, deadline=None)
@given(prefix=_text, secret=_secret, suffix=_text,
       spell=st.sampled_from([str, lambda s: json.dumps(s), repr, html.escape,
                              lambda s: quote(s, safe=""), lambda s: repr(s.encode())]))
@example(prefix="***", secret="****", suffix="*", spell=str)
def test_api_token_never_survives(prefix: str, secret: str, suffix: str, spell) -> None:
    r = Redactor.from_env({"API_TOKEN": secret})
    out = r.redact(spell(prefix + secret + suffix))
    assert secret not in out


@settings(max_examples=1000, deadline=None)
@given(prefix=_text, password=_secret, suffix=_text, user=st.text("abcxyz09", max_size=8))
def test_database_password_never_survives(prefix: str, password: str, suffix: str,
                                          user: str) -> None:
    dsn = f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:5432/app"
    assume(password not in f"postgresql://{user}:@127.0.0.1:5432/app")
    r = Redactor.from_env({"DATABASE_URL": dsn})
    for text in (prefix + password + suffix, prefix + dsn + suffix, repr(prefix + password)):
        assert password not in r.redact(text)
    assert password not in r.display_target(dsn) and quote(password, safe="") not in \
        display_target(dsn)


@settings(max_examples=1000, deadline=None)
@given(prefix=_text, token=_token68, suffix=_text,
       form=st.sampled_from(["Bearer {t}", "bearer  {t}", "\r\nAuthorization: Bearer {t}\r\n",
                             '{{"Authorization": "Bearer {t}"}}', "\nAUTHORIZATION:{t}\n",
                             "\ncookie: sid={t}\n", '{{"set-cookie": ["sid={t}"]}}',
                             "{{'Proxy-Authorization': '{t}'}}", "?token={t}&",
                             "\nSet-Cookie: a={t}; Path=/\n"]))
def test_header_and_bearer_values_never_survive(prefix: str, token: str, suffix: str,
                                                form: str) -> None:
    # A token spelled inside the form's own words ('Authoriz') is the header name, not a leak.
    assume(token not in prefix and token not in suffix and token not in form.format(t=""))
    out = Redactor().redact(prefix + " " + form.format(t=token) + " " + suffix)
    assert token not in out


@settings(max_examples=1000, deadline=None)
@given(prefix=_text, password=_url_pw, suffix=_text,
       scheme=st.sampled_from(["http", "https", "ws", "wss", "postgresql", "redis+tls"]))
def test_url_password_never_survives(prefix: str, password: str, suffix: str, scheme: str) -> None:
    assume(password not in prefix + suffix and password not in f"{scheme}://u:{MASK}@h/x")
    url = f"{scheme}://u:{password}@h/x"
    assert password not in Redactor().redact(f"{prefix} {url} {suffix}")
    assert display_target(url) == f"{scheme}://u:***@h/x"


@settings(max_examples=1000, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=200))
def test_redact_is_idempotent_and_never_raises(text: str) -> None:
    r = Redactor.from_env(ENV)
    once = r.redact(text)
    assert r.redact(once) == once


@settings(max_examples=500, deadline=None)
@given(text=st.text("abcdefgh0123 .,:=\n\"'{}[]()-_/", max_size=200))
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert Redactor.from_env(ENV).redact(text) == text
