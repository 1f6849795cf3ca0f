"""The target allowlist: loopback by default, listed hosts on top, refusal before any DNS."""

from __future__ import annotations

import ipaddress
import socket

import httpx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pytest_novaload.allowlist import (
    ALLOW_HOSTS_OPTION,
    Allowlist,
    dsn_hosts,
    resolve_allowlist,
    url_host,
)
from pytest_novaload.errors import ConfigError, TargetRefused

DEFAULT = Allowlist()
LISTED = Allowlist.parse("api.staging.example, *.corp.example 10.0.0.0/8,[fd00::5]\nDB.Example.")


@pytest.fixture(autouse=True)
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check here runs with name resolution and connecting made to fail loudly."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the allowlist looked up or connected: {args}")
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "create_connection"):
        monkeypatch.setattr(socket, name, refuse)


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.255.255.254", "127.0.0.0", "::1", "[::1]", "::ffff:127.0.0.1",
    "0:0:0:0:0:0:0:1", "localhost", "LocalHost", "/run/postgresql",
])
def test_loopback_is_allowed_by_default(host: str) -> None:
    assert DEFAULT.allows(host)
    DEFAULT.check(host, url=f"http://{host}/")


@pytest.mark.parametrize("host", [
    "10.0.0.1", "0.0.0.0", "::", "128.0.0.1", "::2", "fe80::1", "169.254.169.254",
    "example.com", "localhost.", "localhost.localdomain", "a.localhost", "127.1",
    "0x7f.0.0.1", "2130706433", "127.0.0.1.nip.io", "", "a@b", "127.0.0.1 ", "lo calhost",
    "::ffff:10.0.0.1",
])
def test_everything_else_is_refused_by_default(host: str) -> None:
    assert not DEFAULT.allows(host)
    with pytest.raises(TargetRefused):
        DEFAULT.check(host, url=f"http://{host}/")


@pytest.mark.parametrize(("host", "allowed"), [
    ("api.staging.example", True), ("API.Staging.Example.", True), ("x.api.staging.example", False),
    ("a.corp.example", True), ("a.b.corp.example", True), ("corp.example", False),
    ("xcorp.example", False), ("10.1.2.3", True), ("11.0.0.1", False), ("fd00::5", True),
    ("[fd00::5]", True), ("fd00::6", False), ("db.example", True), ("db.example.", True),
    ("::ffff:10.9.9.9", True), ("127.0.0.1", True), ("fd00::5%eth0", True), ("::1%lo", True),
    ("10.0.0.1%eth0", False), ("127.0.0.1%2eevil.example", False),
])
def test_listed_hosts(host: str, allowed: bool) -> None:
    assert LISTED.allows(host) is allowed


def test_star_allows_every_plain_host_but_never_garbage() -> None:
    star = Allowlist.parse("*")
    assert star.allows("example.com") and star.allows("8.8.8.8") and star.allows("2001:db8::1")
    assert not star.allows("a@b") and not star.allows("") and not star.allows("a b")


def test_idna_names_match_either_spelling() -> None:
    a = Allowlist.parse("bücher.example")
    assert a.allows("bücher.example") and a.allows("xn--bcher-kva.example")
    assert Allowlist.parse("*.xn--bcher-kva.example").allows("x.bücher.example")


def test_bad_entries_are_reported_all_at_once_with_the_fix() -> None:
    with pytest.raises(ConfigError) as info:
        Allowlist.parse("http://x.com/, a.example:80 10.0.0.1/8 010.0.0.1 *.-a ok.example "
                        "user@h a.*.b 300.1.1.1/8 127.1 a1 0x7f.1", source="NOVALOAD_ALLOW_HOSTS")
    problems = info.value.problems
    assert len(problems) == 10
    assert all(p.startswith("NOVALOAD_ALLOW_HOSTS: entry '") for p in problems)
    text = str(info.value)
    assert "write the host alone: 'x.com'" in text
    assert "entries have no port; write 'a.example'" in text
    assert "did you mean '10.0.0.0/8'?" in text
    assert "plain dotted decimal" in text


def test_refusal_names_host_redacted_url_and_option() -> None:
    with pytest.raises(TargetRefused) as info:
        LISTED.check_dsn("postgresql://app:s3cret-pw@db.prod.example:5432/app", env={})
    e = info.value
    assert isinstance(e, ConfigError)
    assert e.host == "db.prod.example" and e.option == "--load-allow-hosts"
    assert e.url == "postgresql://app:***@db.prod.example:5432/app"
    msg = str(e)
    assert "s3cret-pw" not in msg
    assert "host 'db.prod.example' (DATABASE_URL postgresql://app:***@db.prod.example" in msg
    assert "--load-allow-hosts db.prod.example" in msg
    assert "ini load_allow_hosts" in msg and "env NOVALOAD_ALLOW_HOSTS" in msg
    assert "allowed now besides loopback: api.staging.example, *.corp.example" in msg


def test_refusal_without_entries_and_of_garbage_hosts() -> None:
    with pytest.raises(TargetRefused, match=r"not loopback and not in the allowlist\. "
                                            r"pytest-novaload loads only loopback"):
        DEFAULT.check_url("http://user:pw@example.com/x", what="API_URL")
    with pytest.raises(TargetRefused, match="no host this check can read"):
        DEFAULT.check_url("http:///x", what="API_URL")
    with pytest.raises(TargetRefused, match="not a plain hostname or IP address"):
        DEFAULT.check_url("http://127.0.0.1%2eevil.example/", what="API_URL")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/x", "https://[::1]:1/", "ws://localhost:9/ws", "wss://127.0.0.5",
    "http://evil.example\\@127.0.0.1/",
])
def test_check_url_allows_loopback_urls(url: str) -> None:
    DEFAULT.check_url(url)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1.evil.example/", "http://127.0.0.1@evil.example/", "http://[::2]/",
    "ws://evil.example#@127.0.0.1", "http://0/", "not a url", "",
])
def test_check_url_refuses_the_rest(url: str) -> None:
    with pytest.raises(TargetRefused):
        DEFAULT.check_url(url)


@pytest.mark.parametrize(("dsn", "env", "hosts"), [
    ("postgresql://u:p@h1:5432,[::1]:5433/db", {}, ["h1", "::1"]),
    ("postgresql://u:p@ss@h/db", {}, ["ss@h"]),  # asyncpg splits at the first '@'
    ("postgresql://%2Frun%2Fpg/db", {}, ["/run/pg"]),
    ("postgresql:///db?host=/run/pg", {}, ["/run/pg"]),
    ("postgresql:///db?host=a,b:1", {}, ["a", "b"]),
    ("postgresql:///db", {"PGHOST": "h9,h10"}, ["h9", "h10"]),
    ("postgresql:///db", {}, ["localhost"]),
    ("postgresql:///db?service=x", {}, [""]),
    ("postgresql:///db", {"PGSERVICE": "x"}, [""]),
    ("host=a,b hostaddr=1.2.3.4 password=x", {}, ["a", "b", "1.2.3.4"]),
    ("host='/tmp' dbname=x", {}, ["/tmp"]),
    ("dbname=x", {}, ["localhost"]),
    ("postgresql://h/db?x=%zz&&", {}, ["h"]),
])
def test_dsn_hosts_follow_asyncpg(dsn: str, env: dict[str, str], hosts: list[str]) -> None:
    assert dsn_hosts(dsn, env) == hosts


def test_check_dsn_checks_every_host() -> None:
    DEFAULT.check_dsn("postgresql://u:p@127.0.0.1,[::1],localhost/db", env={})
    with pytest.raises(TargetRefused, match=r"host 'db\.example'"):
        DEFAULT.check_dsn("postgresql://u:p@127.0.0.1,db.example/db", env={})
    with pytest.raises(TargetRefused, match="host 'remote'"):
        DEFAULT.check_dsn("postgresql:///db", env={"PGHOST": "remote"})


def test_resolve_allowlist_precedence() -> None:
    env = {"NOVALOAD_ALLOW_HOSTS": "from-env.example"}
    assert resolve_allowlist("cli.example", env, "ini.example").names == {"cli.example"}
    from_env = resolve_allowlist(None, env, "ini.example")
    assert from_env.names == {"from-env.example"} and from_env.source == "NOVALOAD_ALLOW_HOSTS"
    from_ini = resolve_allowlist(None, {}, ["ini.example", "b.example"])
    assert from_ini.names == {"ini.example", "b.example"}
    assert from_ini.source == "ini load_allow_hosts"
    assert resolve_allowlist(None, {}, None).entries == ()
    assert ALLOW_HOSTS_OPTION[:3] == ("--load-allow-hosts", "load_allow_hosts",
                                      "NOVALOAD_ALLOW_HOSTS")


def test_memo_is_bounded() -> None:
    a = Allowlist()
    for i in range(10_000):
        a.allows(f"h{i}.example")
    assert len(a._memo) <= 4096


# -- properties ------------------------------------------------------------------------------

def _inet_aton_reads(host: str) -> bool:
    """The C resolver reads ``host`` as an IPv4 address (``0x0``, ``127.1``): not a name."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_hostname = st.lists(_label, min_size=1, max_size=4).map(".".join)


@settings(max_examples=2000, deadline=None)
@given(st.ip_addresses(v=4))
def test_ipv4_allowed_exactly_when_loopback(addr: ipaddress.IPv4Address) -> None:
    assert DEFAULT.allows(str(addr)) is addr.is_loopback
    assert DEFAULT.allows(f"::ffff:{addr}") is addr.is_loopback


@settings(max_examples=2000, deadline=None)
@given(st.ip_addresses(v=6))
def test_ipv6_allowed_exactly_when_loopback(addr: ipaddress.IPv6Address) -> None:
    mapped = addr.ipv4_mapped
    expected = mapped.is_loopback if mapped is not None else addr == ipaddress.ip_address("::1")
    assert DEFAULT.allows(str(addr)) is expected
    assert DEFAULT.allows(f"[{addr}]") is expected


@settings(max_examples=2000, deadline=None)
@given(_hostname)
def test_no_hostname_but_localhost_is_allowed_without_a_listing(host: str) -> None:
    assume(host != "localhost" and not _inet_aton_reads(host))
    assert not DEFAULT.allows(host)
    assert Allowlist.parse(host.upper()).allows(host)
    assert Allowlist.parse(f"*.{host}").allows(f"x.{host}")
    assert not Allowlist.parse(f"*.{host}").allows(f"x{host}")


@settings(max_examples=2000, deadline=None)
@given(st.text(max_size=60))
def test_any_host_text_gives_a_bool(host: str) -> None:
    assert LISTED.allows(host) in (True, False)


@settings(max_examples=2000, deadline=None)
@given(st.text(max_size=60))
def test_any_entry_text_parses_or_is_a_config_error(text: str) -> None:
    try:
        Allowlist.parse(text)
    except ConfigError as e:
        assert "expected" in str(e) or "write" in str(e) or "network" in str(e)


_url_chars = st.sampled_from(["a", "b", "1", "127.0.0.1", "[::1]", "@", ":", "/", "\\", "#",
                              "?", "%40", "%2e", ".", "evil.example", "localhost", "[", "]",
                              "%", " ", "\t", "80", "x.y"])


@settings(max_examples=2000, deadline=None)
@given(scheme=st.sampled_from(["http", "https", "ws", "wss"]),
       rest=st.lists(_url_chars, max_size=8).map("".join))
def test_check_url_agrees_with_httpx(scheme: str, rest: str) -> None:
    """When the check lets a URL through, the host httpx connects to is allowed too."""
    url = f"{scheme}://{rest}"
    try:
        DEFAULT.check_url(url)
    except TargetRefused:
        return
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL:
        return
    assert DEFAULT.allows(host), (url, url_host(url), host)
