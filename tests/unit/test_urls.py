"""URL splitting and regexes that read the same on every Python 3.11 patch level.

CI runs pyenv's 3.11.7; Debian 12's system Python is a patched 3.11.2 whose ``urlsplit`` refuses
multi-host netlocs with brackets and whose ``re`` mismatches possessive groups. These tests
pin the behaviour that must not depend on which one runs them.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from pytest_novaload import redact
from pytest_novaload.allowlist import Allowlist, dsn_hosts
from pytest_novaload.redact import dsn_password
from pytest_novaload.urls import split_url


@pytest.mark.parametrize("url", [
    "postgresql://u:p@h/db?sslmode=off#f", "http://[::1]:8000/x?y=1", "postgresql:///db?host=/s",
    "HTTP://User:Pw@Example.COM:81/p;q?r#s", " http://h/\tx\ny", "mailto:a@b", "x",
])
def test_split_url_is_urlsplit_where_urlsplit_accepts(url: str) -> None:
    assert split_url(url) == urlsplit(url)


@pytest.mark.parametrize(("url", "netloc", "path", "query"), [
    ("postgresql://u:p@h1:5432,[::1]:5433/db", "u:p@h1:5432,[::1]:5433", "/db", ""),
    ("postgresql://u:p@127.0.0.1,[::1],localhost/db?x=1", "u:p@127.0.0.1,[::1],localhost",
     "/db", "x=1"),
    ("postgresql://[::1]:1,[fd00::5]/d#[x]", "[::1]:1,[fd00::5]", "/d", ""),
])
def test_split_url_keeps_multi_host_netlocs(url: str, netloc: str, path: str,
                                            query: str) -> None:
    parts = split_url(url)
    assert (parts.netloc, parts.path, parts.query) == (netloc, path, query)


@pytest.mark.parametrize("url", ["http://[::1/", "http://::1]/", "postgresql://h,[::1/db",
                                 "http://h\ue000/"])
def test_split_url_refuses_what_cannot_be_read(url: str) -> None:
    with pytest.raises(ValueError) as info:
        split_url(url)
    assert "h\ue000" not in str(info.value)  # the URL (maybe a password) is never echoed


def test_multi_host_dsn_password_and_hosts() -> None:
    dsn = "postgresql://app:s3cr%40t@127.0.0.1:5432,[::1]:5433/db"
    assert dsn_password(dsn) == "s3cr@t"
    assert dsn_hosts(dsn, {}) == ["127.0.0.1", "::1"]
    assert redact.Redactor.from_env({"DATABASE_URL": dsn}).redact("pw s3cr@t") == "pw ***"
    Allowlist().check_dsn(dsn, env={})


_POSSESSIVE_GROUP = re.compile(r"(?<!\\)\)(?:[+*?]|\{\d*,?\d*\})\+")


def test_no_possessive_group_in_the_redaction_patterns() -> None:
    # A possessive group, ``(?:...)++``, matches too much on CPython < 3.11.5 (gh-100061):
    # the patterns spell it as an atomic group, ``(?>(?:...)+)``, which every 3.11 gets right.
    patterns = [v.pattern for v in vars(redact).values() if isinstance(v, re.Pattern)]
    assert len(patterns) >= 5
    found = [p for p in patterns if _POSSESSIVE_GROUP.search(p)]
    assert not found
    assert _POSSESSIVE_GROUP.search(r"(?:[^\r\n\\]|\\(?![rn]))++")  # the check can fail


def test_escaped_crlf_ends_a_header_value() -> None:
    text = "b'HTTP/1.1 200\\r\\nSet-Cookie: sid=1\\r\\nX: y\\\\z'"
    assert redact.Redactor().redact(text) == "b'HTTP/1.1 200\\r\\nSet-Cookie: ***\\r\\nX: y\\\\z'"
