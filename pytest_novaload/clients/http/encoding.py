"""Request encoding: what `vu.http` sends, as HTTP/1.1 bytes (fast transport) or header pairs
(httpx transport). Pure: no I/O.

A `Target` is a (method, URL) resolved once by the client, with the request bytes that do not
change (request line, Host, default headers); a request without params, headers or a body is
sent as ``target.simple`` with nothing built at all. Anything else becomes a `Request`.
"""

from __future__ import annotations

import json as _jsonlib
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias
from urllib.parse import urlencode

from pytest_novaload.errors import ConfigError

_orjson: Any
try:
    import orjson as _orjson_module

    _orjson = _orjson_module
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

__all__ = ["USER_AGENT", "Encoder", "Request", "Target", "header_line", "with_cookies"]

USER_AGENT = "pytest-novaload/0.1"
SEND_LENGTH = frozenset({"POST", "PUT", "PATCH"})  # Content-Length: 0 even without a body

HeaderInput: TypeAlias = "Mapping[str, str] | Sequence[tuple[str, str]] | None"
CookieInput: TypeAlias = "Mapping[str, str] | None"
ParamsInput: TypeAlias = "Mapping[str, Any] | Sequence[tuple[str, Any]] | str | None"
_Headers: TypeAlias = dict[str, tuple[str, str]]  # lowercased name -> (name, value)


def _prim(value: Any) -> str:
    """httpx's primitive_value_to_str: JSON-style booleans, None as empty."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


def _pairs(values: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> list[tuple[str, str]]:
    items = values.items() if isinstance(values, Mapping) else values
    out: list[tuple[str, str]] = []
    for key, value in items:
        if isinstance(value, (list, tuple)):
            out.extend((str(key), _prim(v)) for v in value)
        else:
            out.append((str(key), _prim(value)))
    return out


def _dump_json(value: Any) -> bytes:
    if _orjson is not None:
        try:
            out: bytes = _orjson.dumps(value, option=_orjson.OPT_NON_STR_KEYS)
            return out
        except TypeError:
            pass  # types orjson refuses (e.g. int subclasses): the stdlib decides
    return _jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")


def with_cookies(headers: HeaderInput, cookies: Mapping[str, str]) -> list[tuple[str, str]]:
    """``headers`` plus one Cookie header built from ``cookies`` (joined to a given one)."""
    if not isinstance(cookies, Mapping):
        raise ConfigError(f"cookies={cookies!r}: expected a dict of cookie names to values, "
                          "e.g. {'session': 'abc'} (no cookie jar is kept)")
    pairs = "; ".join(f"{k}={v}" for k, v in cookies.items())
    out: list[tuple[str, str]] = []
    if headers:
        items = headers.items() if isinstance(headers, Mapping) else headers
        for hname, hvalue in items:
            if hname.lower() == "cookie":
                pairs = f"{hvalue}; {pairs}"
            else:
                out.append((hname, hvalue))
    out.append(("Cookie", pairs))
    return out


def header_line(name: str, value: str) -> bytes:
    """``Name: value\\r\\n``; a line break (or a colon in the name) is a usage error."""
    if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
        raise ConfigError(f"HTTP header {name!r}: {value!r} contains a line break or a colon "
                          "in its name; expected a single-line header, remove the characters")
    try:
        return f"{name}: {value}\r\n".encode("latin-1")
    except UnicodeEncodeError:
        return name.encode("latin-1") + b": " + value.encode("utf-8") + b"\r\n"


class Target:
    """A (method, URL) resolved once: where to connect and the bytes that do not change."""

    __slots__ = ("base_head", "block", "defaults", "fast", "has_query", "head", "host", "host_line",
                 "key", "line_prefix", "method", "name", "port", "simple", "url")

    def __init__(self, method: str, url: str, name: str, scheme: str, host: str, port: int,
                 target: str, defaults: _Headers, default_block: bytes, fast: bool) -> None:
        self.method = method
        self.url = url
        self.name = name
        self.host = host
        self.port = port
        self.key = (host, port)
        self.fast = fast and scheme == "http"
        self.defaults = defaults  # the default headers of this origin (API token or not)
        self.block = default_block  # the same, encoded
        self.has_query = "?" in target
        hostport = f"[{host}]" if ":" in host else host
        if port != (80 if scheme == "http" else 443):
            hostport = f"{hostport}:{port}"
        self.host_line = f"Host: {hostport}\r\n".encode("latin-1")
        self.line_prefix = f"{method} {target}".encode("latin-1")
        self.head = method == "HEAD"
        # The request head up to the end of the default headers (no final CRLF).
        self.base_head = self.line_prefix + b" HTTP/1.1\r\n" + self.host_line + default_block
        if method in SEND_LENGTH:
            self.simple = self.base_head + b"Content-Length: 0\r\n\r\n"
        else:
            self.simple = self.base_head + b"\r\n"


class Request:
    """A request with params, headers or a body, encoded for either transport."""

    __slots__ = ("body", "ctype", "headers", "line_prefix", "stream", "target", "url")

    def __init__(self, target: Target, url: str, line_prefix: bytes, headers: _Headers | None,
                 ctype: str | None, body: bytes | None, stream: Any) -> None:
        self.target = target
        self.url = url
        self.line_prefix = line_prefix
        self.headers = headers  # None: the target's defaults
        self.ctype = ctype      # a Content-Type to add (None when a header gives one)
        self.body = body
        self.stream = stream    # an iterator or async iterator: only httpx streams it

    def wire(self) -> bytes:
        """The whole HTTP/1.1 request (fast transport)."""
        target = self.target
        headers = self.headers
        if headers is None:
            if self.line_prefix is target.line_prefix:
                head = target.base_head
            else:
                head = (self.line_prefix + b" HTTP/1.1\r\n" + target.host_line
                        + target.block)
        else:
            parts = [self.line_prefix, b" HTTP/1.1\r\n"]
            if "host" not in headers:
                parts.append(target.host_line)
            parts.extend(header_line(n, v) for n, v in headers.values())
            head = b"".join(parts)
        if self.ctype is not None:
            head += b"Content-Type: " + self.ctype.encode("latin-1") + b"\r\n"
        if self.body is not None:
            return head + b"Content-Length: %d\r\n\r\n" % len(self.body) + self.body
        if target.method in SEND_LENGTH:
            return head + b"Content-Length: 0\r\n\r\n"
        return head + b"\r\n"

    def header_pairs(self) -> list[tuple[str, str]]:
        """The headers as (name, value) pairs (httpx transport; it adds Host and framing)."""
        pairs = list((self.headers or self.target.defaults).values())
        if self.ctype is not None:
            pairs.append(("Content-Type", self.ctype))
        return pairs


class Encoder:
    """Turns a call's params, headers and body into a `Request` for one `Target`."""

    def __init__(self, option_headers: Sequence[tuple[str, str]], token: str | None,
                 keep_alive: bool, *, authorization: str | None = None) -> None:
        """The default headers: User-Agent, Accept, the ``headers`` option, Connection: close
        without keep-alive; the API origin's also carry ``Authorization: Bearer <token>``, or
        ``authorization`` when given (API_URL's user info as Basic auth, as httpx sends it)."""
        headers: _Headers = {"user-agent": ("User-Agent", USER_AGENT),
                             "accept": ("Accept", "*/*")}
        for hname, hvalue in option_headers:
            headers[hname.lower()] = (hname, hvalue)
        if not keep_alive:
            headers["connection"] = ("Connection", "close")
        self.common = headers
        self.api = dict(headers)
        if authorization:
            self.api["authorization"] = ("Authorization", authorization)
        elif token:
            self.api["authorization"] = ("Authorization", f"Bearer {token}")
        self.common_block = b"".join(header_line(n, v) for n, v in self.common.values())
        self.api_block = b"".join(header_line(n, v) for n, v in self.api.values())

    def target(self, method: str, url: str, name: str, scheme: str, host: str, port: int,
               request_target: str, origin_api: bool, fast: bool, *,
               authorization: str | None = None) -> Target:
        """The `Target` of a resolved URL, with the API origin's headers when ``origin_api``;
        ``authorization`` (the URL's own user info as Basic auth) over either."""
        if authorization:
            defaults = dict(self.api if origin_api else self.common)
            defaults["authorization"] = ("Authorization", authorization)
            block = b"".join(header_line(n, v) for n, v in defaults.values())
            return Target(method, url, name, scheme, host, port, request_target, defaults,
                          block, fast)
        if origin_api:
            return Target(method, url, name, scheme, host, port, request_target, self.api,
                          self.api_block, fast)
        return Target(method, url, name, scheme, host, port, request_target, self.common,
                      self.common_block, fast)

    def encode(self, target: Target, params: ParamsInput, headers: HeaderInput, json: Any,
               content: Any, data: Mapping[str, Any] | None) -> Request:
        """The request with ``params`` appended to the URL, the call's ``headers`` over the
        target's defaults and at most one body (``json``, form ``data`` or ``content``)."""
        url = target.url
        line_prefix = target.line_prefix
        if params:
            query = params.lstrip("?") if isinstance(params, str) else urlencode(_pairs(params))
            if query:
                sep = "&" if target.has_query else "?"
                url = f"{url}{sep}{query}"
                line_prefix = line_prefix + sep.encode() + query.encode("latin-1")
        body: bytes | None = None
        stream: Any = None
        ctype: str | None = None
        given = sum(x is not None for x in (json, content, data))
        if given > 1:
            raise ConfigError("request(json=..., content=..., data=...): give at most one "
                              "body; use json= for JSON, data= for a form, content= for bytes")
        if json is not None:
            body, ctype = _dump_json(json), "application/json"
        elif data is not None:
            if not isinstance(data, Mapping):
                raise ConfigError(f"data={type(data).__name__}: expected a dict of form "
                                  "fields; send raw bytes with content= instead")
            body = urlencode(_pairs(data)).encode("utf-8")
            ctype = "application/x-www-form-urlencoded"
        elif content is not None:
            if isinstance(content, str):
                body = content.encode("utf-8")
            elif isinstance(content, (bytes, bytearray, memoryview)):
                body = bytes(content)
            else:
                stream = content
        merged: _Headers | None = None
        if headers:
            merged = dict(target.defaults)
            items = headers.items() if isinstance(headers, Mapping) else headers
            for hname, hvalue in items:
                lname = hname.lower()
                if lname in ("content-length", "transfer-encoding"):
                    continue  # the transport frames the body itself
                merged[lname] = (hname, str(hvalue))
            if ctype is not None and "content-type" in merged:
                ctype = None
        return Request(target, url, line_prefix, merged, ctype, body, stream)
