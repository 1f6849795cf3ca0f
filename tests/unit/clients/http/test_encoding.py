"""Request encoding: the bytes the fast transport sends and the pairs httpx gets. Pure."""

from __future__ import annotations

import json

import pytest

from pytest_novaload.clients.http.encoding import (
    USER_AGENT,
    Encoder,
    Target,
    header_line,
    with_cookies,
)
from pytest_novaload.errors import ConfigError


def target(enc: Encoder, method: str = "GET", url: str = "http://h:8080/p?q=1",
           origin_api: bool = False, port: int = 8080) -> Target:
    return enc.target(method, url, "/p", "http", "h", port, "/p?q=1", origin_api, True)


def test_a_target_holds_the_whole_simple_request() -> None:
    enc = Encoder([("X-Tenant", "a")], "tok", keep_alive=True)
    common, api = target(enc), target(enc, origin_api=True)
    assert common.simple == (b"GET /p?q=1 HTTP/1.1\r\nHost: h:8080\r\n"
                             b"User-Agent: " + USER_AGENT.encode() + b"\r\nAccept: */*\r\n"
                             b"X-Tenant: a\r\n\r\n")
    assert b"Authorization: Bearer tok\r\n" in api.simple
    assert b"Authorization" not in common.simple  # the token goes to the API origin only
    assert target(enc, "POST").simple.endswith(b"Content-Length: 0\r\n\r\n")
    assert b"Host: h\r\n" in target(enc, port=80).simple
    assert (common.key, common.head, common.has_query) == (("h", 8080), False, True)


def test_keep_alive_off_adds_connection_close() -> None:
    assert b"Connection: close\r\n" in target(Encoder([], None, keep_alive=False)).simple


def test_params_headers_and_json_body_on_the_wire() -> None:
    enc = Encoder([], None, keep_alive=True)
    t = target(enc, "POST")
    req = enc.encode(t, {"a": [1, 2], "b": True, "c": None}, {"X-K": "v", "content-length": "9"},
                     {"n": 1}, None, None)
    assert req.url == "http://h:8080/p?q=1&a=1&a=2&b=true&c="
    head, _, body = req.wire().partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /p?q=1&a=1&a=2&b=true&c= HTTP/1.1"
    assert b"X-K: v" in lines and b"Content-Type: application/json" in lines
    assert b"Content-Length: 7" in lines and b"content-length: 9" not in lines  # framed by us
    assert json.loads(body) == {"n": 1}
    assert ("Content-Type", "application/json") in req.header_pairs()
    assert ("X-K", "v") in req.header_pairs()


def test_a_given_content_type_wins_and_forms_are_urlencoded() -> None:
    enc = Encoder([], None, keep_alive=True)
    t = target(enc, "PUT")
    req = enc.encode(t, None, {"Content-Type": "text/x"}, None, None, {"k": "a b"})
    assert req.body == b"k=a+b" and req.ctype is None
    assert req.wire().count(b"Content-Type") == 1
    raw = enc.encode(t, "x=1", None, None, "é", None)
    assert raw.url.endswith("?q=1&x=1") and raw.body == "é".encode()
    stream = enc.encode(t, None, None, None, iter([b"a"]), None)
    assert stream.body is None and stream.stream is not None


def test_more_than_one_body_or_a_bad_form_is_a_usage_error() -> None:
    enc = Encoder([], None, keep_alive=True)
    with pytest.raises(ConfigError, match="at most one body"):
        enc.encode(target(enc), None, None, {"a": 1}, b"x", None)
    with pytest.raises(ConfigError, match="expected a dict of form fields"):
        enc.encode(target(enc), None, None, None, None, [("a", "b")])  # type: ignore[arg-type]


def test_header_lines_refuse_injection_and_cookies_join() -> None:
    assert header_line("X", "é") == b"X: \xe9\r\n"
    assert header_line("X", "\u20ac") == b"X: \xe2\x82\xac\r\n"  # not latin-1: utf-8
    with pytest.raises(ConfigError, match="line break"):
        header_line("X", "a\r\nEvil: 1")
    assert with_cookies({"Cookie": "a=1", "X": "y"}, {"b": "2"}) == [("X", "y"),
                                                                      ("Cookie", "a=1; b=2")]
    with pytest.raises(ConfigError, match="cookies="):
        with_cookies(None, "a=1")  # type: ignore[arg-type]
