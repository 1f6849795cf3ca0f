"""The target allowlist: load goes to loopback and to the hosts the user allows, nowhere else.

k6's ``blockHostnames`` turned round: default deny. Allowed without asking: the loopback
addresses ``127.0.0.0/8`` and ``::1`` (also as ``::ffff:127.x.y.z``), the name ``localhost``
and local (Unix socket) PostgreSQL hosts. Anything else must be listed in the option::

    --load-allow-hosts HOST[,HOST...]   ini load_allow_hosts   env NOVALOAD_ALLOW_HOSTS

Entries, comma or whitespace separated: a hostname (``api.staging.example``), a wildcard
``*.staging.example`` (any name below it, not the name itself), an IP address (``10.0.0.5``,
``::1``, ``[fd00::5]``), a CIDR network (``10.0.0.0/8``, ``fd00::/8``), or ``*`` for every host.

The check reads the host *string* of the URL, before any DNS lookup or connection, and never
resolves a name: a hostname that is not listed is refused even if it resolves to loopback (DNS
answers can change between the check and the connect; only ``localhost`` is trusted by name).
Numeric spellings that are not plain dotted decimal (``127.1``, ``0x7f.0.0.1``, ``2130706433``)
are hostnames here, and so refused unless listed literally.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from pytest_novaload.errors import ConfigError, TargetRefused
from pytest_novaload.redact import display_target
from pytest_novaload.urls import split_url

__all__ = [
    "ALLOW_HOSTS_OPTION",
    "LOOPBACK",
    "Allowlist",
    "dsn_hosts",
    "resolve_allowlist",
    "url_host",
]

ALLOW_HOSTS_OPTION = (
    "--load-allow-hosts", "load_allow_hosts", "NOVALOAD_ALLOW_HOSTS",
    "hosts that load may go to besides loopback (127.0.0.0/8, ::1, localhost): comma-separated "
    "hostnames, *.suffix wildcards, IPs or CIDRs, e.g. 'api.staging.example,10.0.0.0/8'; "
    "'*' allows every host (default: loopback only)",
)
"""(cli flag, ini name, env var, help), in the shape of ``options.OPTIONS``."""
FLAG, INI, ENV = ALLOW_HOSTS_OPTION[:3]

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
LOOPBACK_TEXT = "127.0.0.0/8, ::1, localhost"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_MEMO_SIZE = 4096


def _ascii_host(host: str) -> str | None:
    """``host`` lowercased, IDNA-encoded when not ASCII (as URL parsers may hand either form);
    None when it cannot be encoded."""
    host = host.lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _looks_like_ipv4(host: str) -> bool:
    """``127.1``, ``0x7f.0.0.1``, ``010.0.0.1``, ``0``: what the C resolver reads as an IPv4
    address (inet_aton, a pure parse) although it is not plain dotted decimal."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def _is_hostname(host: str) -> bool:
    labels = host.split(".")
    return 0 < len(host) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def _as_address(host: str) -> _Address | None:
    """The IP address ``host`` spells in canonical form (brackets and zone id dropped,
    IPv4-mapped IPv6 as IPv4), or None."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:  # an IPv6 zone id ("fe80::1%eth0") is kept and ignored by network tests; IPv4 has none
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class Allowlist:
    """Which hosts load may go to. Build with ``Allowlist.parse`` or ``resolve_allowlist``."""

    __slots__ = ("_memo", "any", "entries", "names", "networks", "source", "suffixes")

    def __init__(self, entries: Iterable[str] = (), *, source: str = FLAG) -> None:
        """``entries`` as the option takes them; ``source`` says where they came from (for
        messages). A ConfigError lists every bad entry at once."""
        self.entries: tuple[str, ...] = tuple(e.strip() for e in entries if e.strip())
        self.source = source
        self.any = False
        names: set[str] = set()
        suffixes: set[str] = set()
        networks: list[_Network] = []
        problems: list[str] = []
        for entry in self.entries:
            problem = self._add(entry, names, suffixes, networks)
            if problem:
                problems.append(f"{source}: entry '{entry}': {problem}")
        if problems:
            raise ConfigError(problems)
        self.names = frozenset(names)
        self.suffixes = tuple(sorted(suffixes))
        self.networks = tuple(networks)
        self._memo: dict[str, bool] = {}

    def _add(self, entry: str, names: set[str], suffixes: set[str],
             networks: list[_Network]) -> str | None:
        """Adds one entry; the problem with it, or None."""
        example = ("expected a hostname, *.suffix, an IP address or a CIDR network such as "
                   "'api.staging.example', '*.staging.example', '10.0.0.5' or '10.0.0.0/8'")
        if entry == "*":
            self.any = True
            return None
        if "://" in entry or "@" in entry:
            host = url_host(entry) if "://" in entry else None
            return f"{example}; write the host alone" + (f": '{host}'" if host else "")
        if "/" in entry:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=True))
            except ValueError as e:
                fixed = None
                with contextlib.suppress(ValueError):
                    fixed = ipaddress.ip_network(entry.strip("[]"), strict=False)
                hint = f"; did you mean '{fixed}'?" if fixed else ""
                return f"not a CIDR network ({e}){hint}"
            return None
        addr = _as_address(entry)
        if addr is not None:
            networks.append(ipaddress.ip_network(addr))
            return None
        if entry.startswith("*."):
            suffix = _ascii_host(entry[2:].rstrip("."))
            if suffix is None or not _is_hostname(suffix):
                return example
            suffixes.add("." + suffix)
            return None
        host = _ascii_host(entry.rstrip("."))
        if host is None or not _is_hostname(host):
            if ":" in entry and _is_hostname(entry.rsplit(":", 1)[0].lower()):
                return f"entries have no port; write '{entry.rsplit(':', 1)[0]}'"
            return example
        if _looks_like_ipv4(host):
            return ("looks like an IPv4 address but is not one in plain dotted decimal; write "
                    "it as four decimal numbers, e.g. '10.0.0.5'")
        names.add(host)
        return None

    @classmethod
    def parse(cls, text: str | Iterable[str] | None, *, source: str = FLAG) -> Allowlist:
        """From the option's text (comma/whitespace separated) or a list of such texts."""
        if text is None:
            return cls((), source=source)
        parts = [text] if isinstance(text, str) else list(text)
        return cls([e for part in parts for e in re.split(r"[\s,]+", part)], source=source)

    def allows(self, host: str) -> bool:
        """Whether load may go to ``host`` (a URL's host string, as the client will use it).
        No DNS; memoised, so cheap enough to call on every request."""
        memo = self._memo
        ok = memo.get(host)
        if ok is None:
            ok = self._allows(host)
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[host] = ok
        return ok

    def _allows(self, raw: str) -> bool:
        if not raw:
            return False
        if raw.startswith("/"):  # a Unix socket path (PostgreSQL): cannot leave the machine
            return True
        addr = _as_address(raw)
        if addr is not None:
            return any(addr in net for net in LOOPBACK) or self.any or any(
                addr.version == net.version and addr in net for net in self.networks)
        host = _plain_hostname(raw)
        if host is None:
            return False  # not a name a resolver would take as it is: refuse, never guess
        if raw.lower() == "localhost" or self.any:
            return True
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def check(self, host: str, *, url: str, what: str = "target") -> None:
        """Raise TargetRefused unless ``allows(host)``; ``url`` (shown redacted) and ``what``
        (``API_URL``, ``vu.http``...) make the message say where the host came from."""
        if not self.allows(host):
            raise self.refusal(host, url=url, what=what)

    def check_url(self, url: str, *, what: str = "target") -> None:
        """``check`` on the host of an http(s)/ws(s) URL."""
        self.check(url_host(url) or "", url=url, what=what)

    def check_dsn(self, dsn: str, *, what: str = "DATABASE_URL",
                  env: Mapping[str, str] | None = None) -> None:
        """``check`` on every host a PostgreSQL DSN makes asyncpg try (URL or ``key=value``
        form, ``?host=``, ``PGHOST`` from ``env``, the local default)."""
        for host in dsn_hosts(dsn, os.environ if env is None else env):
            self.check(host, url=dsn, what=what)

    def refusal(self, host: str, *, url: str, what: str) -> TargetRefused:
        """The error for a refused ``host``: names it, the URL (redacted) and the option."""
        shown = display_target(url)
        if not host:
            why = "it has no host this check can read"
        elif _as_address(host) is None and _plain_hostname(host) is None:
            why = "it is not a plain hostname or IP address"
        else:
            why = "it is not loopback and not in the allowlist"
        now = (f"; allowed now besides loopback: {', '.join(self.entries)} (from {self.source})"
               if self.entries else "")
        entry = _suggest_entry(host)
        message = (
            f"refused to send load to host '{host}' ({what} {shown}): {why}. pytest-novaload "
            f"loads only loopback ({LOOPBACK_TEXT}) and the hosts you allow{now}. "
            f"If this host is yours to load, allow it with {FLAG} {entry} (or ini {INI}, "
            f"env {ENV}); entries are hostnames, *.suffix wildcards, IPs or CIDRs.")
        return TargetRefused(message, host=host, url=shown, option=FLAG)


def _plain_hostname(raw: str) -> str | None:
    """``raw`` as a hostname to match (lowercase, ASCII, one trailing dot dropped), or None
    when it is not a plain hostname."""
    host = _ascii_host(raw)
    if host is None:
        return None
    host = host[:-1] if host.endswith(".") else host
    return host if _is_hostname(host) else None


def _suggest_entry(host: str) -> str:
    addr = _as_address(host)
    if addr is not None:
        return str(addr)
    return _plain_hostname(host) or "HOST"


def url_host(url: str) -> str | None:
    """The host of ``url`` as urllib (and websockets, and httpx for these) reads it: lowercase,
    without brackets; None when the URL has none or does not parse."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def dsn_hosts(dsn: str, env: Mapping[str, str]) -> list[str]:
    """Every host asyncpg would connect to for ``dsn`` (its own parsing rules: the first '@'
    ends the user info, hosts are comma-separated, ``?host=`` then ``PGHOST`` apply when the
    DSN names none, else the local Unix sockets and ``localhost``). A host set only through a
    service file cannot be read: it comes back as "" (refused)."""
    dsn = dsn.strip()
    hosts: list[str] = []
    service = False
    if "://" in dsn:
        try:
            parsed = split_url(dsn)  # as asyncpg's urlparse, on every patch level
            query = parse_qs(parsed.query)
        except ValueError:
            return [""]
        netloc = parsed.netloc
        hostspec = netloc.partition("@")[2] if "@" in netloc else netloc
        hosts = _hostlist(hostspec, decode=True)
        if not hosts and query.get("host"):
            hosts = _hostlist(query["host"][-1])
        service = "service" in query
    else:  # libpq key=value
        pairs = dict(re.findall(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)", dsn))
        for key in ("host", "hostaddr"):
            value = pairs.get(key, "").strip("'")
            hosts.extend(_hostlist(value))
        service = "service" in pairs
    if not hosts and env.get("PGHOST"):
        hosts = _hostlist(env["PGHOST"])
    if not hosts and (service or env.get("PGSERVICE")):
        return [""]
    return hosts or ["localhost"]


def _hostlist(spec: str, *, decode: bool = False) -> list[str]:
    """``h1:5432,[::1]:5433,/run/pg`` -> ['h1', '::1', '/run/pg'] (asyncpg's split)."""
    out: list[str] = []
    for item in spec.split(","):
        if not item:
            continue
        if item.startswith("/"):
            host = item
        elif item.startswith("["):
            m = re.match(r"\[([^\]]+)\]", item)
            host = m.group(1) if m else item
        else:
            host = item.partition(":")[0]
        out.append(unquote(host) if decode else host)
    return out


def resolve_allowlist(cli: str | None, env: Mapping[str, str] | None = None,
                      ini: str | Iterable[str] | None = None) -> Allowlist:
    """The allowlist from the option triple: command line > ``NOVALOAD_ALLOW_HOSTS`` > ini
    (the first one set wins, as for every option); loopback only when none is set."""
    env = os.environ if env is None else env
    if cli:
        return Allowlist.parse(cli, source=FLAG)
    if env.get(ENV):
        return Allowlist.parse(env[ENV], source=ENV)
    if ini:
        return Allowlist.parse(ini, source=f"ini {INI}")
    return Allowlist((), source=FLAG)
