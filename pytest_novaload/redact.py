"""One redaction step for everything a run writes: artifacts, log lines, error examples,
failure messages.

Artifacts are uploaded by CI for the whole team to read, and servers echo what they were sent,
so every text that leaves the process goes through ``Redactor.redact`` first. Two layers:

- **known secrets**, taken from the environment: the value of ``API_TOKEN``, and the password
  of every target URL or DSN (``API_URL``, ``WS_URL``, ``DWCP_WS_URL``, ``DATABASE_URL``, URL
  form or libpq ``key=value`` form), also in their URL-encoded, decoded, JSON/repr-escaped,
  HTML-escaped and HTTP Basic (base64 of ``user:password``) spellings. Values shorter than
  ``MIN_SECRET_LENGTH`` are not replaced as free text (that would mangle every message and point
  at them); the patterns below still catch them where they stand as credentials.
- **patterns**, whatever the environment: the values of ``Authorization``,
  ``Proxy-Authorization``, ``Cookie``, ``Set-Cookie`` (and ``X-Api-Key``, ``X-Auth-Token``)
  headers in raw HTTP form, JSON/Python-dict form and ``key=value`` form, any case;
  ``Bearer <token>`` anywhere; the password in ``scheme://user:password@`` anywhere; the value of
  ``password=``/``"password": ...`` anywhere.

Every replacement is ``***``. The regexes are compiled once and linear in the text (bounded
repetitions, no nested quantifiers); redaction is for error and artifact paths, never the
per-request hot path.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

from pytest_novaload.urls import split_url

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "SECRET_ENV",
    "Redactor",
    "display_target",
    "dsn_password",
    "env_secrets",
    "redact",
    "redact_obj",
    "redactor_from_env",
]

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Known secrets shorter than this are not replaced as free text (see the module docstring).
Must stay above ``len(MASK)``: every replacement then shortens the text, so the repeat-until-
clean loop in ``Redactor.redact`` ends."""

SECRET_ENV = ("API_TOKEN",)
"""Environment variables whose whole value is a secret."""
TARGET_ENV = ("API_URL", "WS_URL", "DWCP_WS_URL", "DATABASE_URL")
"""Environment variables holding a target URL or DSN whose password is a secret."""

_HEADERS = r"proxy-authorization|authorization|set-cookie|cookie|x-api-key|x-auth-token"
_KEYS = (rf"{_HEADERS}|password|passwd|pwd|secret|client_secret|token|api_token|api_key|apikey"
         r"|access_token|refresh_token|id_token|session_id|sessionid")
"""Keys whose value is hidden in JSON/dict form and in ``key=value`` form."""
# Repeated groups are atomic, ``(?>(?:...){m,n})``, never possessive ``(?:...){m,n}+``: the two
# mean the same, but CPython before 3.11.5 (Debian 12's 3.11.2) matches a possessive group
# wrongly when it holds a lookahead or can backtrack (gh-100061, gh-106052), e.g. ``\\(?![rn])``
# took the escaped ``\r`` of a header value. A possessive single character class is fine.
# A quoted value (JSON, Python repr). The two alternatives inside start differently and every
# repetition is bounded, so a failed match costs at most one scan of the bound.
_QUOTED = r"""(?:"(?>(?:[^"\\\n]|\\.){0,8192})"|'(?>(?:[^'\\\n]|\\.){0,8192})')"""
_Q = r"""\\?["']"""  # a quote around a key, possibly JSON-escaped (a dict dumped into a string)
_START = r"(?:(?<=\\[rnt])|(?<![\w-]))"  # a word start, also right after an escaped \r \n \t

_BEARER = re.compile(rf"{_START}(bearer\s{{1,64}}+)[A-Za-z0-9\-._~+/]++=*+", re.IGNORECASE)
_JSON = re.compile(  # "key": value, 'key': value, ('key', value)
    rf"""({_Q}(?:{_KEYS}){_Q}\s{{0,64}}+[:,]\s{{0,64}}+)("""
    rf"""\[\s{{0,64}}+(?>(?:\\?{_QUOTED}\\?\s{{0,64}}+(?>(?:,\s{{0,64}}+)?)){{0,64}})\]"""  # list
    r'|\\"(?>(?:[^\\"\n]|\\[^"\n]){0,8192})\\"'  # a string in a JSON-escaped dict
    rf"""|{_QUOTED}"""  # a string
    r"""|[^\s,}\]"'\\]{1,8192}+(?=[\s,)}\]]|$)"""  # a number, a bare word
    r"""|[^\r\n)}\]]{1,8192}+)""",  # anything else: to the end of the line
    re.IGNORECASE)
_HEADER = re.compile(rf"{_START}((?:{_HEADERS})[ \t]{{0,64}}+:[ \t]{{0,64}}+)"
                     r"(?>(?:[^\r\n\\]|\\(?![rn]))+)", re.IGNORECASE)
_USERINFO = re.compile(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]{0,31}+://"
                       r"[^\s/?#@:]{0,1024}+:)[^\s/?#]{0,1024}@")  # password: up to the last @
_KEY_VALUE = re.compile(rf"""{_START}((?:{_KEYS})[ \t]{{0,64}}+=[ \t]{{0,64}}+)"""
                        rf"""(?:{_QUOTED}|[^\s&;,'"]{{1,8192}}+)""", re.IGNORECASE)

_MASKED = rf"\1{MASK}"
_MASKED_USERINFO = rf"\1{MASK}@"


def _masked_json(m: re.Match[str]) -> str:
    """The key and a mask in the value's own quotes: ``"authorization": "***"``."""
    value = m.group(2)
    quote_ = value[:2] if value[:1] == "\\" else value[:1]
    if quote_.endswith(('"', "'")) and not value.startswith("["):
        return f"{m.group(1)}{quote_}{MASK}{quote_}"
    return f"{m.group(1)}{MASK}"


_KEY_WORDS = ("authorization", "cookie", "password", "passwd", "pwd", "secret", "token",
              "api_key", "apikey", "session_id", "sessionid", "x-api-key")
"""Every key of ``_KEYS`` contains one of these: text without any skips three patterns."""

_PATTERNS: tuple[tuple[re.Pattern[str], Any], ...] = (
    (_BEARER, _MASKED), (_JSON, _masked_json), (_HEADER, _MASKED),
             (_USERINFO, _MASKED_USERINFO), (_KEY_VALUE, _MASKED))
"""In order: Bearer first, so that no later mask splits a token it would have hidden whole."""

_SENSITIVE_KEY = re.compile(rf"(?:{_KEYS}|.*_password|.*_secret)", re.IGNORECASE)
"""Keys of a mapping whose whole value ``redact_obj`` replaces by the mask."""


class Redactor:
    """Hides known secrets and credential-shaped text; immutable, cheap to call, thread-safe."""

    __slots__ = ("_literal", "secrets")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        """``secrets``: literal values to hide wherever they appear (with their spellings)."""
        spelled: set[str] = set()
        for secret in secrets:
            spelled.update(_spellings(secret))
        self.secrets: frozenset[str] = frozenset(s for s in spelled if len(s) >= MIN_SECRET_LENGTH)
        # Longest first, so that a secret containing another is hidden whole.
        ordered = sorted(self.secrets, key=lambda s: (-len(s), s))
        self._literal = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None,
                 extra: Iterable[str] = ()) -> Redactor:
        """The secrets of ``env`` (default ``os.environ``): ``API_TOKEN`` and the passwords
        (and HTTP Basic credentials) of ``API_URL``, ``WS_URL``, ``DWCP_WS_URL``,
        ``DATABASE_URL``; plus ``extra`` literal secrets."""
        env = os.environ if env is None else env
        return cls(_env_secrets(env, extra))

    def with_secrets(self, *secrets: str) -> Redactor:
        """A redactor that also hides ``secrets`` (e.g. a ``dsn=`` or token given in code)."""
        return Redactor([*self.secrets, *secrets])

    def redact(self, text: str) -> str:
        """``text`` with every known secret and credential-shaped value replaced by ``***``."""
        if not isinstance(text, str):
            text = str(text)
        text = self._hide_literals(text)
        # Cheap substring tests first: most texts hold no credential-shaped part at all.
        low = text.lower()
        keys = any(word in low for word in _KEY_WORDS)
        wanted = ("bearer" in low, keys, keys, "://" in text and "@" in text, keys)
        for (pattern, replacement), want in zip(_PATTERNS, wanted, strict=True):
            if want:
                text = pattern.sub(replacement, text)
        return self._hide_literals(text)

    def clip(self, text: str, limit: int, *, keep: str = "head") -> str:
        """``text`` redacted, then cut to ``limit`` characters (``keep`` "head": the start,
        "tail": the end), with no piece of a known secret left at a cut: redacting first
        means a cut cannot split a secret the patterns or literals would have hidden, and a
        text that arrived cut already (the first bytes of a body) loses a trailing prefix
        of a secret."""
        out = self.redact(text)
        if len(out) > limit:
            out = out[:limit] if keep == "head" else out[-limit:]
        out = self._trim_end(out)
        return self._trim_start(out) if keep == "tail" else out

    def _trim_end(self, text: str) -> str:
        for secret in self.secrets:
            for k in range(min(len(secret), len(text) + 1) - 1, 1, -1):
                if text.endswith(secret[:k]):
                    return text[:-k] + MASK
        return text

    def _trim_start(self, text: str) -> str:
        for secret in self.secrets:
            for k in range(min(len(secret), len(text) + 1) - 1, 1, -1):
                if text.startswith(secret[-k:]):
                    return MASK + text[k:]
        return text

    def redact_literals(self, text: str) -> str:
        """``text`` with the known secrets (all their spellings) replaced, no patterns: for
        JSON whose values ``redact_obj`` cleaned already (a mask never changes its syntax)."""
        return self._hide_literals(text)

    def _hide_literals(self, text: str) -> str:
        # Replacing can join the text around a mask into a new occurrence ("x**" + "*x..."):
        # repeat until clean. Each replacement shortens the text (secrets are longer than the
        # mask), so this ends.
        literal = self._literal
        if literal is None:
            return text
        while True:
            text, n = literal.subn(MASK, text)
            if n == 0:
                return text

    def redact_obj(self, obj: Any) -> Any:
        """A deep copy of ``obj`` (dicts, lists, tuples, sets of str/bytes/numbers...) with
        every string redacted, keys included, and the whole value of a credential-named key
        (``authorization``, ``cookie``, ``password``, ``API_TOKEN``...) replaced by ``***``.
        Other objects are returned as they are. Iterative, so any depth is fine."""
        return _redact_deep(self, obj)

    def redact_tags(self, tags: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """A series' tags for an output (k6 JSON, remote-write labels): every name and value
        redacted, the whole value of a credential-named tag (``api_key``, ``token``...)
        replaced, as `redact_obj` does for a mapping."""
        return tuple((self.redact(k), MASK if v and _SENSITIVE_KEY.fullmatch(k)
                      else self.redact(v)) for k, v in tags)

    def display_target(self, url: str) -> str:
        """``url`` as shown in reports: password replaced by ``***``, user kept."""
        return display_target(self.redact(url) if self.secrets else url)


def display_target(url: str) -> str:
    """A target URL or DSN for reports and messages: the password replaced by ``***``, the user
    kept (``postgresql://app:***@db:5432/app``, ``host=db user=app password=***``); any query
    ``password=`` too. Needs no environment: the password is found by its place."""
    text = str(url)
    text = _USERINFO.sub(_MASKED_USERINFO, text)
    return _KEY_VALUE.sub(_MASKED, text)


def dsn_password(dsn: str) -> str | None:
    """The password in a URL (``scheme://user:pw@host``, or ``?password=``) or a libpq
    ``key=value`` DSN, decoded; None when there is none."""
    dsn = dsn.strip()
    if "://" in dsn:
        try:
            parts = split_url(dsn)
            password = parts.password
        except ValueError:
            password = None
        if password:
            return unquote(password)
        m = re.search(r"[?&]password=([^&#]*)", dsn)
        return unquote(m.group(1)) if m and m.group(1) else None
    m = re.search(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn)
    if m is None:
        return None
    value = m.group(1)
    if value.startswith("'"):
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    return value or None


def _url_user(url: str) -> str | None:
    try:
        return split_url(url.strip()).username
    except ValueError:
        return None


def env_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """The literal secrets of ``env`` (default ``os.environ``) that ``Redactor.from_env``
    hides: ``API_TOKEN``, target passwords and their HTTP Basic credentials."""
    return _env_secrets(os.environ if env is None else env, ())


def _env_secrets(env: Mapping[str, str], extra: Iterable[str]) -> list[str]:
    secrets = [env[k] for k in SECRET_ENV if env.get(k)]
    for key in TARGET_ENV:
        value = env.get(key)
        if not value:
            continue
        password = dsn_password(value)
        if password:
            secrets.append(password)
            user = _url_user(value)
            if user is not None:  # HTTP Basic credentials, as httpx sends them
                pair = f"{unquote(user)}:{password}".encode()
                secrets.append(base64.b64encode(pair).decode("ascii"))
    secrets.extend(s for s in extra if s)
    return secrets


def _spellings(secret: str) -> set[str]:
    """The ways ``secret`` can appear in a message, a body, a repr or a report."""
    if not secret:
        return set()
    out = {secret, quote(secret, safe=""), quote(secret), unquote(secret),
           json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
           repr(secret)[1:-1], repr(secret.encode("utf-8", "surrogatepass"))[2:-1],
           html.escape(secret), html.escape(secret, quote=False)}
    out.discard("")
    return out


def _redact_deep(r: Redactor, obj: Any) -> Any:
    """Iterative deep copy with redaction (no recursion limit on nested input)."""

    def leaf(value: Any) -> tuple[bool, Any]:
        if isinstance(value, str):
            return True, r.redact(value)
        if isinstance(value, bytes | bytearray):
            text = bytes(value).decode("utf-8", "surrogateescape")
            return True, type(value)(r.redact(text).encode("utf-8", "surrogateescape"))
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            return False, None
        return True, value

    done, value = leaf(obj)
    if done:
        return value
    # Each frame: (source container, its items to visit, the built items, parent list).
    root: list[Any] = []
    stack: list[tuple[Any, list[Any], list[Any]]] = [(obj, _items(obj), [])]
    while stack:
        src, todo, built = stack[-1]
        if not todo:
            stack.pop()
            made = _rebuild(src, built)
            (stack[-1][2] if stack else root).append(made)
            continue
        item = todo.pop()
        if isinstance(src, Mapping):
            key, val = item
            rkey = leaf(key)[1] if isinstance(key, str | bytes) else key
            if isinstance(key, str) and _SENSITIVE_KEY.fullmatch(key) and val is not None:
                built.append((rkey, MASK))
                continue
            done, value = leaf(val)
            if done:
                built.append((rkey, value))
            else:
                built.append(_KeyMarker(rkey))
                stack.append((val, _items(val), []))
        else:
            done, value = leaf(item)
            if done:
                built.append(value)
            else:
                stack.append((item, _items(item), []))
    return root[0]


class _KeyMarker:
    """Stands for a dict entry whose value is still being built (the next item built)."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key


def _items(container: Any) -> list[Any]:
    """Items in reverse order (popped from the end, visited in order)."""
    items = list(container.items()) if isinstance(container, Mapping) else list(container)
    items.reverse()
    return items


def _rebuild(src: Any, built: list[Any]) -> Any:
    """The redacted copy of ``src`` from its built items: plain dict, list, tuple, set or
    frozenset (a subclass such as a namedtuple becomes its plain base)."""
    if isinstance(src, Mapping):
        out: dict[Any, Any] = {}
        i = 0
        while i < len(built):
            entry = built[i]
            if isinstance(entry, _KeyMarker):
                out[entry.key] = built[i + 1]
                i += 2
            else:
                out[entry[0]] = entry[1]
                i += 1
        return out
    if isinstance(src, list):
        return built
    if isinstance(src, tuple):
        return tuple(built)
    return frozenset(built) if isinstance(src, frozenset) else set(built)


@functools.lru_cache(maxsize=8)
def _cached(values: tuple[str | None, ...]) -> Redactor:
    env = {k: v for k, v in zip((*SECRET_ENV, *TARGET_ENV), values, strict=True) if v}
    return Redactor.from_env(env)


def redactor_from_env(env: Mapping[str, str] | None = None) -> Redactor:
    """The redactor for ``env`` as it is now (default ``os.environ``), cached on its values."""
    env = os.environ if env is None else env
    return _cached(tuple(env.get(k) for k in (*SECRET_ENV, *TARGET_ENV)))


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """``redactor_from_env(env).redact(text)``: the one call for a log line or a message."""
    return redactor_from_env(env).redact(text)


def redact_obj(obj: Any, env: Mapping[str, str] | None = None) -> Any:
    """``redactor_from_env(env).redact_obj(obj)``: the one call for ``summary.json`` data."""
    return redactor_from_env(env).redact_obj(obj)
