"""`vu.http`: the httpx calling convention over a lean HTTP/1.1 transport.

Plain ``http://`` requests go through hand-built request bytes on one keep-alive
asyncio.Protocol connection per host:port (PERF-FACTS: ~10x Locust per core); ``https://``,
HTTP/2, streamed bodies, or ``transport="httpx"`` go through one lazily created
httpx.AsyncClient. Both transports record through the same `HttpClient._measure`.

Options (``ctx.options["http"]``, checked by `validate_http_options`): ``timeout`` (seconds or a
duration, default 60 as k6; total time for connect + request + response), ``headers`` (sent on
every request), ``transport`` (``"fast"`` | ``"httpx"``), ``keep_alive`` (default True),
``max_redirects`` (default 0: redirects are returned, not followed, as in httpx), ``verify`` and
``http2`` (httpx transport only), ``parser`` (``"auto"`` | ``"python"``: force the pure-Python
parser).

Per call, as in httpx: ``follow_redirects=None`` uses ``max_redirects``; ``True`` follows up to
``max_redirects`` hops (10 when it is 0); ``False`` returns the redirect. Every hop is recorded
as its own request. ``cookies={"k": "v"}`` is sent as one Cookie header (joined to a Cookie
header given in ``headers``); no cookie jar is kept, Set-Cookie is not stored.

A transport error (status 0) calls ``ctx.on_error(kind, "<error> (<METHOD> <url>)")``.
"""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import json as _jsonlib
import socket
import ssl
from collections.abc import Collection, Mapping, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import quote, urlencode, urljoin, urlsplit

from pytest_novaload.clients._http_protocol import Connection, Failure
from pytest_novaload.clients._http_response import Response
from pytest_novaload.clients._options import seconds, unknown_option
from pytest_novaload.clients.base import ClientContext
from pytest_novaload.errors import ConfigError

if TYPE_CHECKING:
    import httpx

    from pytest_novaload.metrics import MetricStore
    from pytest_novaload.metrics.sinks import Counter, Rate, Trend

_orjson: Any
try:
    import orjson as _orjson_module

    _orjson = _orjson_module
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

__all__ = ["HttpClient", "Response", "validate_http_options"]

USER_AGENT = "pytest-novaload/0.1"
DEFAULT_TIMEOUT = 60.0  # seconds, k6's default
DEFAULT_FOLLOWED_REDIRECTS = 10  # follow_redirects=True with max_redirects=0 (k6's default)
_TARGET_CACHE_MAX = 4096
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_SEND_LENGTH = frozenset({"POST", "PUT", "PATCH"})  # Content-Length: 0 even without a body
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_OPTIONS = ("timeout", "headers", "transport", "keep_alive", "max_redirects", "verify",
            "http2", "parser")
_HTTP_METRICS = (("http_req_duration", "trend"), ("http_reqs", "counter"),
                 ("http_req_failed", "rate"), ("data_sent", "counter"),
                 ("data_received", "counter"))

Expected: TypeAlias = "int | range | Collection[int] | None"
HeaderInput: TypeAlias = "Mapping[str, str] | Sequence[tuple[str, str]] | None"
CookieInput: TypeAlias = "Mapping[str, str] | None"
ParamsInput: TypeAlias = "Mapping[str, Any] | Sequence[tuple[str, Any]] | str | None"
_Sinks: TypeAlias = "tuple[Trend, Counter, Rate]"


def error_code(kind: str, message: str) -> int:
    """k6's error_code for a transport error (lib/netext/httpext/error_codes.go)."""
    if kind == "ConnectError":
        if "refused" in message.lower():
            return 1212
        if "name or service" in message.lower() or "nodename" in message.lower():
            return 1101
        return 1210
    if kind == "ConnectTimeout":
        return 1211
    if kind.endswith("Timeout"):
        return 1050
    if kind == "ReadError" and "reset" in message.lower():
        return 1220
    if kind == "WriteError":
        return 1201
    return 1000


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


def _with_cookies(headers: HeaderInput, cookies: Mapping[str, str]) -> list[tuple[str, str]]:
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


def _header_line(name: str, value: str) -> bytes:
    if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
        raise ConfigError(f"HTTP header {name!r}: {value!r} contains a line break or a colon "
                          "in its name; expected a single-line header, remove the characters")
    try:
        return f"{name}: {value}\r\n".encode("latin-1")
    except UnicodeEncodeError:
        return name.encode("latin-1") + b": " + value.encode("utf-8") + b"\r\n"


_TIMEOUT_EXPECTED = ("expected seconds (a number > 0) or a duration such as '500ms' or '30s'; "
                     "fix the value or leave it out for the default")


def validate_http_options(opts: Mapping[str, Any]) -> list[str]:
    """Every problem in an ``http=`` options dict (empty when valid). Pure: no I/O, no client.

    Checks unknown keys (with a close-match hint), ``timeout`` (number or duration > 0),
    ``headers`` (dict of str names to str/number single-line values), ``transport``
    ('fast'|'httpx'), ``keep_alive``/``http2`` (bool; http2 needs h2 installed),
    ``max_redirects`` (int >= 0), ``verify`` (bool, CA bundle path or ssl.SSLContext) and
    ``parser`` ('auto'|'python'). Messages start with the key: the caller adds its prefix.
    """
    if not isinstance(opts, Mapping):
        return [f"{opts!r}: expected a dict of HTTP options such as {{'timeout': '10s'}} "
                f"(accepted keys: {', '.join(_OPTIONS)})"]
    problems = [unknown_option(key, _OPTIONS) for key in opts if key not in _OPTIONS]
    timeout = opts.get("timeout")
    if timeout is not None and seconds(timeout) is None:
        problems.append(f"timeout={timeout!r}: {_TIMEOUT_EXPECTED}")
    headers = opts.get("headers")
    if headers is not None and not isinstance(headers, Mapping):
        problems.append(f"headers={headers!r}: expected a dict of header names to values, "
                        "e.g. {'X-Tenant': 'a'}")
    elif headers:
        for hname, hvalue in headers.items():
            if not isinstance(hname, str) or not hname or any(c in hname for c in ":\r\n "):
                problems.append(f"headers: name {hname!r}: expected a non-empty header name "
                                "without spaces, colons or line breaks, e.g. 'X-Tenant'")
            elif isinstance(hvalue, bool) or not isinstance(hvalue, (str, int, float)):
                problems.append(f"headers[{hname!r}]={hvalue!r}: expected a string (or a "
                                "number); convert it, e.g. str(value)")
            elif isinstance(hvalue, str) and ("\r" in hvalue or "\n" in hvalue):
                problems.append(f"headers[{hname!r}]={hvalue!r}: contains a line break; "
                                "expected a single-line value, remove it")
    transport = opts.get("transport", "fast")
    if transport not in ("fast", "httpx"):
        problems.append(f"transport={transport!r}: expected 'fast' (default) or 'httpx'")
    for key in ("keep_alive", "http2"):
        value = opts.get(key, False)
        if not isinstance(value, bool):
            problems.append(f"{key}={value!r}: expected True or False")
    if opts.get("http2") is True and importlib.util.find_spec("h2") is None:
        problems.append("http2=True needs the h2 package: pip install 'httpx[http2]', or drop "
                        "the option")
    max_redirects = opts.get("max_redirects", 0)
    if (not isinstance(max_redirects, int) or isinstance(max_redirects, bool)
            or max_redirects < 0):
        problems.append(f"max_redirects={max_redirects!r}: expected a whole number >= 0 "
                        "(0, the default, returns redirects without following them)")
    verify = opts.get("verify", True)
    if not isinstance(verify, (bool, str)) and not isinstance(verify, ssl.SSLContext):
        problems.append(f"verify={verify!r}: expected True, False, a CA bundle path or an "
                        "ssl.SSLContext")
    parser = opts.get("parser", "auto")
    if parser not in ("auto", "python"):
        problems.append(f"parser={parser!r}: expected 'auto' (httptools when installed) or "
                        "'python'")
    return problems


class _Target:
    """A (method, URL) resolved once: where to connect and the bytes that do not change."""

    __slots__ = ("base_head", "fast", "has_query", "head", "host", "host_line", "key",
                 "line_prefix", "method", "name", "origin_api", "port", "simple", "url")

    def __init__(self, method: str, url: str, name: str, scheme: str, host: str, port: int,
                 target: str, origin_api: bool, default_block: bytes, fast: bool) -> None:
        self.method = method
        self.url = url
        self.name = name
        self.host = host
        self.port = port
        self.key = (host, port)
        self.fast = fast and scheme == "http"
        self.origin_api = origin_api
        self.has_query = "?" in target
        hostport = f"[{host}]" if ":" in host else host
        if port != (80 if scheme == "http" else 443):
            hostport = f"{hostport}:{port}"
        self.host_line = f"Host: {hostport}\r\n".encode("latin-1")
        self.line_prefix = f"{method} {target}".encode("latin-1")
        self.head = method == "HEAD"
        # The request head up to the end of the default headers (no final CRLF).
        self.base_head = self.line_prefix + b" HTTP/1.1\r\n" + self.host_line + default_block
        if method in _SEND_LENGTH:
            self.simple = self.base_head + b"Content-Length: 0\r\n\r\n"
        else:
            self.simple = self.base_head + b"\r\n"


class HttpClient:
    """One per VU: ``get/post/put/patch/delete/head/options/request`` like httpx.AsyncClient.

    Transport errors never raise: the call returns a `Response` with ``status_code == 0``
    and ``error`` set. `asyncio.CancelledError` propagates and closes the connection.
    """

    def __init__(self, ctx: ClientContext) -> None:
        self._store: MetricStore = ctx.store
        self._ctx = ctx
        self._on_error = ctx.on_error
        self._parse_options(ctx.options.get("http") or {})
        self._base_prefix: str | None = None
        self._api_origin: tuple[str, str, int] | None = None
        api_url = ctx.env.get("API_URL")
        if api_url:
            parts = urlsplit(api_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"API_URL={api_url!r}: expected an http:// or https:// URL "
                                  "such as 'http://127.0.0.1:8000'; fix the environment variable")
            path = parts.path if parts.path.endswith("/") else parts.path + "/"
            self._base_prefix = f"{parts.scheme}://{parts.netloc}{path}"
            self._api_origin = (parts.scheme, parts.hostname, self._port(parts.scheme, parts))
        token = ctx.env.get("API_TOKEN")
        headers: dict[str, tuple[str, str]] = {
            "user-agent": ("User-Agent", USER_AGENT), "accept": ("Accept", "*/*")}
        for hname, hvalue in self._option_headers:
            headers[hname.lower()] = (hname, hvalue)
        self._common_headers = dict(headers)
        if not self._keep_alive:
            self._common_headers["connection"] = ("Connection", "close")
        self._api_headers = dict(self._common_headers)
        if token:
            self._api_headers["authorization"] = ("Authorization", f"Bearer {token}")
        self._api_block = b"".join(_header_line(n, v) for n, v in self._api_headers.values())
        self._common_block = b"".join(_header_line(n, v)
                                      for n, v in self._common_headers.values())
        self._targets: dict[tuple[str, str], _Target] = {}
        self._idle: dict[tuple[str, int], list[Connection]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._httpx: httpx.AsyncClient | None = None
        self._closed = False
        # Metrics: defined up front so that thresholds on them never see a missing metric.
        for metric, kind in _HTTP_METRICS:
            self._store.define(metric, kind)
        self._sinks: dict[tuple[str, str, int, bool, str | None], _Sinks] = {}
        self._data_sent = self._store.counter("data_sent")
        self._data_received = self._store.counter("data_received")

    # -- options ----------------------------------------------------------------------------
    def _parse_options(self, opts: Mapping[str, Any]) -> None:
        """Apply ``options["http"]``, checked by `validate_http_options` (the one rule set)."""
        problems = validate_http_options(opts)
        if problems:
            raise ConfigError([f"HTTP option {p}" for p in problems])
        timeout = opts.get("timeout")
        self._timeout = DEFAULT_TIMEOUT if timeout is None else self._parse_timeout(timeout, "")
        self._option_headers: list[tuple[str, str]] = [
            (k, str(v)) for k, v in (opts.get("headers") or {}).items()]
        self._keep_alive: bool = opts.get("keep_alive", True)
        self._max_redirects: int = opts.get("max_redirects", 0)
        self._verify: Any = opts.get("verify", True)
        self._http2: bool = opts.get("http2", False)
        self._pure_parser = opts.get("parser", "auto") == "python"
        self._force_httpx = opts.get("transport", "fast") == "httpx" or self._http2

    @staticmethod
    def _parse_timeout(value: object, what: str) -> float:
        result = seconds(value)
        if result is None:
            raise ConfigError(f"{what}={value!r}: {_TIMEOUT_EXPECTED}")
        return result

    @staticmethod
    def _port(scheme: str, parts: Any) -> int:
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"URL {parts.geturl()!r}: the port is not a number in "
                              "0-65535; fix the URL") from None
        return int(port) if port is not None else (80 if scheme == "http" else 443)

    # -- public API --------------------------------------------------------------------------
    async def get(self, url: str, *, params: ParamsInput = None,
                  headers: HeaderInput = None, cookies: CookieInput = None,
                  name: str | None = None, expected: Expected = None,
                  timeout: float | None = None,
                  follow_redirects: bool | None = None) -> Response:
        return await self.request("GET", url, params=params, headers=headers, cookies=cookies,
                                  name=name, expected=expected, timeout=timeout,
                                  follow_redirects=follow_redirects)

    async def head(self, url: str, *, params: ParamsInput = None,
                   headers: HeaderInput = None, cookies: CookieInput = None,
                   name: str | None = None, expected: Expected = None,
                   timeout: float | None = None,
                   follow_redirects: bool | None = None) -> Response:
        return await self.request("HEAD", url, params=params, headers=headers, cookies=cookies,
                                  name=name, expected=expected, timeout=timeout,
                                  follow_redirects=follow_redirects)

    async def options(self, url: str, *, params: ParamsInput = None,
                      headers: HeaderInput = None, cookies: CookieInput = None,
                      name: str | None = None, expected: Expected = None,
                      timeout: float | None = None,
                      follow_redirects: bool | None = None) -> Response:
        return await self.request("OPTIONS", url, params=params, headers=headers, cookies=cookies,
                                  name=name, expected=expected, timeout=timeout,
                                  follow_redirects=follow_redirects)

    async def delete(self, url: str, *, params: ParamsInput = None,
                     headers: HeaderInput = None, cookies: CookieInput = None,
                     name: str | None = None, expected: Expected = None,
                     timeout: float | None = None,
                     follow_redirects: bool | None = None) -> Response:
        return await self.request("DELETE", url, params=params, headers=headers, cookies=cookies,
                                  name=name, expected=expected, timeout=timeout,
                                  follow_redirects=follow_redirects)

    async def post(self, url: str, *, params: ParamsInput = None,
                   headers: HeaderInput = None, cookies: CookieInput = None, json: Any = None,
                   content: Any = None, data: Mapping[str, Any] | None = None,
                   name: str | None = None, expected: Expected = None,
                   timeout: float | None = None,
                   follow_redirects: bool | None = None) -> Response:
        return await self.request("POST", url, params=params, headers=headers, cookies=cookies,
                                  json=json, content=content, data=data, name=name,
                                  expected=expected, timeout=timeout,
                                  follow_redirects=follow_redirects)

    async def put(self, url: str, *, params: ParamsInput = None,
                  headers: HeaderInput = None, cookies: CookieInput = None, json: Any = None,
                  content: Any = None, data: Mapping[str, Any] | None = None,
                  name: str | None = None, expected: Expected = None,
                  timeout: float | None = None,
                  follow_redirects: bool | None = None) -> Response:
        return await self.request("PUT", url, params=params, headers=headers, cookies=cookies,
                                  json=json, content=content, data=data, name=name,
                                  expected=expected, timeout=timeout,
                                  follow_redirects=follow_redirects)

    async def patch(self, url: str, *, params: ParamsInput = None,
                    headers: HeaderInput = None, cookies: CookieInput = None, json: Any = None,
                    content: Any = None, data: Mapping[str, Any] | None = None,
                    name: str | None = None, expected: Expected = None,
                    timeout: float | None = None,
                    follow_redirects: bool | None = None) -> Response:
        return await self.request("PATCH", url, params=params, headers=headers, cookies=cookies,
                                  json=json, content=content, data=data, name=name,
                                  expected=expected, timeout=timeout,
                                  follow_redirects=follow_redirects)

    async def request(self, method: str, url: str, *, params: ParamsInput = None,
                      headers: HeaderInput = None, cookies: CookieInput = None,
                      json: Any = None, content: Any = None,
                      data: Mapping[str, Any] | None = None, name: str | None = None,
                      expected: Expected = None, timeout: float | None = None,
                      follow_redirects: bool | None = None) -> Response:
        """Send one request and record it; see the module docstring for the transports."""
        target = self._targets.get((method, url))
        if target is None:
            target = self._target(method, url)
        if timeout is None:
            timeout = self._timeout
        elif not (isinstance(timeout, (int, float)) and timeout > 0):
            timeout = self._parse_timeout(timeout, "timeout")
        if cookies:
            headers = _with_cookies(headers, cookies)
        if (target.fast and params is None and headers is None and json is None
                and content is None and data is None):
            response = await self._fast(target, target.simple, target.url,
                                        target.name if name is None else name, expected,
                                        timeout)
        else:
            response = await self._send_full(target, params, headers, json, content, data,
                                             target.name if name is None else name, expected,
                                             timeout)
        if response.status_code in _REDIRECTS:
            if follow_redirects is None:
                hops = self._max_redirects
            elif follow_redirects is True:
                hops = self._max_redirects or DEFAULT_FOLLOWED_REDIRECTS
            elif follow_redirects is False:
                hops = 0
            else:
                raise ConfigError(f"follow_redirects={follow_redirects!r}: expected True, "
                                  "False or None (the client's max_redirects option decides)")
            if hops:
                response = await self._follow(response, target.method, headers, json, content,
                                              data, name, expected, timeout, hops)
        return response

    async def _follow(self, response: Response, method: str, headers: HeaderInput, json: Any,
                      content: Any, data: Mapping[str, Any] | None, name: str | None,
                      expected: Expected, timeout: float, max_hops: int) -> Response:
        """Follow up to ``max_hops`` redirects; every hop is measured on its own."""
        hops = 0
        while response.status_code in _REDIRECTS and hops < max_hops:
            location = response._header(b"location")
            if location is None:
                break
            hops += 1
            status = response.status_code
            if status == 303 or (status in (301, 302) and method == "POST"):
                method, json, content, data = "GET", None, None, None
            url = urljoin(response._url_str, location.decode("latin-1"))
            target = self._target(method, url)
            response = await self._send_full(target, None, headers, json, content, data,
                                             name or target.name, expected, timeout)
        return response

    async def aclose(self) -> None:
        """Close every connection (the runner calls this when the VU stops)."""
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        if self._httpx is not None:
            client, self._httpx = self._httpx, None
            await client.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def transport_for(self, method: str, url: str) -> Literal["fast", "httpx"]:
        """Which transport a plain request to ``url`` would take (for tests and diagnostics)."""
        return "fast" if self._target(method, url).fast else "httpx"

    # -- the request path -----------------------------------------------------------------
    async def _send_full(self, target: _Target, params: ParamsInput, headers: HeaderInput,
                         json: Any, content: Any, data: Mapping[str, Any] | None, name: str,
                         expected: Expected, timeout: float) -> Response:
        """The request path with params, headers or a body."""
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
                stream = content  # an iterator or async iterator: httpx streams it
        fast = target.fast and stream is None
        merged: dict[str, tuple[str, str]] | None = None
        if headers:
            merged = dict(self._api_headers if target.origin_api else self._common_headers)
            items = headers.items() if isinstance(headers, Mapping) else headers
            for hname, hvalue in items:
                lname = hname.lower()
                if lname in ("content-length", "transfer-encoding"):
                    continue  # the transport frames the body itself
                merged[lname] = (hname, str(hvalue))
            if ctype is not None and "content-type" in merged:
                ctype = None
        if not fast:
            hdrs = list((merged or (self._api_headers if target.origin_api
                                    else self._common_headers)).values())
            if ctype is not None:
                hdrs.append(("Content-Type", ctype))
            return await self._via_httpx(target, url, hdrs, body, stream, name, expected,
                                         timeout)
        if merged is None:
            if line_prefix is target.line_prefix:
                head = target.base_head
            else:
                head = (line_prefix + b" HTTP/1.1\r\n" + target.host_line
                        + (self._api_block if target.origin_api else self._common_block))
        else:
            parts = [line_prefix, b" HTTP/1.1\r\n"]
            if "host" not in merged:
                parts.append(target.host_line)
            parts.extend(_header_line(n, v) for n, v in merged.values())
            head = b"".join(parts)
        if ctype is not None:
            head += b"Content-Type: " + ctype.encode("latin-1") + b"\r\n"
        if body is not None:
            request = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        elif target.method in _SEND_LENGTH:
            request = head + b"Content-Length: 0\r\n\r\n"
        else:
            request = head + b"\r\n"
        return await self._fast(target, request, url, name, expected, timeout)

    async def _fast(self, target: _Target, request: bytes, url: str, name: str,
                    expected: Expected, timeout: float) -> Response:
        """One exchange on the lean transport, with one retry of a stale keep-alive socket."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._idle = {}  # connections of another (finished) loop are unusable
            self._loop = loop
        method = target.method
        deadline = loop.time() + timeout
        conn: Connection | None = None
        idle = self._idle.get(target.key)
        while idle:
            candidate = idle.pop()
            if not candidate.closed:
                conn = candidate
                break
        retried = False
        while True:
            if conn is None:
                t0 = perf_counter()
                got = await self._connect(loop, target, deadline)
                if isinstance(got, Failure):
                    return self._failed(method, url, name, got, perf_counter() - t0, 0, 0,
                                        timeout)
                conn = got
            t0 = perf_counter()
            waiter = conn.exchange(request, target.head, deadline)
            try:
                failure = await waiter
            except asyncio.CancelledError:
                conn.abort()
                raise
            if failure is None:
                break
            conn.abort()
            if (failure.stale and conn.requests > 1 and not retried
                    and method in _IDEMPOTENT):
                retried = True  # the server closed an idle keep-alive socket: try a fresh one
                conn = None
                continue
            return self._failed(method, url, name, failure, perf_counter() - t0,
                                len(request), conn.received, timeout)
        elapsed = perf_counter() - t0
        body = conn.body
        content = body[0] if len(body) == 1 else b"".join(body)
        status = conn.status
        response = Response(status, None, content, elapsed, method, url, head=conn.head_chunks)
        if conn.keep_alive and not conn.closed and not self._closed:
            if idle is None:
                self._idle[target.key] = [conn]
            else:
                idle.append(conn)
        else:
            conn.close()
        ok = 200 <= status < 400 if expected is None else self._matches(status, expected)
        self._measure(method, name, status, ok, None, elapsed, len(request), conn.received)
        if not ok and self._on_error is not None:
            self._unexpected(method, url, status, content)
        return response

    async def _connect(self, loop: asyncio.AbstractEventLoop, target: _Target,
                       deadline: float) -> Connection | Failure:
        conn = Connection(loop, self._pure_parser)
        try:
            async with asyncio.timeout_at(deadline):
                await loop.create_connection(lambda: conn, target.host, target.port)
        except asyncio.CancelledError:
            conn.abort()
            raise
        except TimeoutError:
            conn.abort()
            return Failure("ConnectTimeout", "")
        except socket.gaierror as exc:
            return Failure("ConnectError", str(exc))
        except OSError as exc:
            if exc.errno == errno.ECONNREFUSED and "refused" not in str(exc).lower():
                return Failure("ConnectError", f"[Errno {exc.errno}] Connection refused")
            return Failure("ConnectError", str(exc))
        return conn

    async def _via_httpx(self, target: _Target, url: str, hdrs: list[tuple[str, str]] | None,
                         body: bytes | None, stream: Any, name: str, expected: Expected,
                         timeout: float) -> Response:
        """One exchange on httpx (https, HTTP/2, streamed bodies, or transport='httpx')."""
        import httpx

        client = self._httpx
        if client is None:
            client = self._httpx = httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, verify=self._verify,
                http2=self._http2, headers={"User-Agent": USER_AGENT},
                limits=httpx.Limits(max_keepalive_connections=None if self._keep_alive else 0))
        method = target.method
        if hdrs is None:
            hdrs = list((self._api_headers if target.origin_api
                         else self._common_headers).values())
        request = client.build_request(method, url, headers=hdrs,
                                       content=body if body is not None else stream,
                                       timeout=timeout)
        sent = (len(method) + len(request.url.raw_path) + 12
                + sum(len(k) + len(v) + 4 for k, v in request.headers.raw) + len(body or b""))
        t0 = perf_counter()
        try:
            raw = await client.send(request)
        except httpx.RequestError as exc:
            failure = Failure(type(exc).__name__, str(exc))
            return self._failed(method, url, name, failure, perf_counter() - t0, sent, 0,
                                timeout)
        elapsed = perf_counter() - t0
        received = (len(raw.reason_phrase) + 15 + raw.num_bytes_downloaded
                    + sum(len(k) + len(v) + 4 for k, v in raw.headers.raw))
        response = Response(raw.status_code, list(raw.headers.raw), raw.content, elapsed,
                            method, str(raw.url), reason=raw.reason_phrase,
                            http_version=raw.http_version)
        response._request = request
        status = raw.status_code
        ok = 200 <= status < 400 if expected is None else self._matches(status, expected)
        self._measure(method, name, status, ok, None, elapsed, sent, received)
        if not ok and self._on_error is not None:
            self._unexpected(method, url, status, raw.content)
        return response

    # -- measuring ------------------------------------------------------------------------
    def _unexpected(self, method: str, url: str, status: int, content: bytes) -> None:
        """An unexpected status: report an example with the start of the body (the reason a
        server gives, e.g. a 422's validation message) under the type "HTTP <status>"."""
        text = content[:300].decode("utf-8", "replace").strip()
        self._ctx.report("http_req_failed", f"HTTP {status}",
                         f"{method} {url} -> {status} {text}".rstrip())

    def _failed(self, method: str, url: str, name: str, failure: Failure, elapsed: float,
                sent: int, received: int, timeout: float) -> Response:
        """A transport error: record it and return the status-0 response."""
        message = failure.message
        if not message and failure.kind.endswith("Timeout"):
            message = f"no response within {timeout:g}s"
        error = f"{failure.kind}: {message}" if message else failure.kind
        self._measure(method, name, 0, False, failure.kind, elapsed, sent, received)
        self._ctx.report("http_req_failed", failure.kind, f"{error} ({method} {url})")
        return Response(0, [], b"", elapsed, method, url, reason="", error=error,
                        error_code=error_code(failure.kind, message))

    def _measure(self, method: str, name: str, status: int, ok: bool, error: str | None,
                 elapsed: float, sent: int, received: int) -> None:
        """The one recording path of both transports, for successes and transport errors."""
        sinks = self._sinks.get((name, method, status, ok, error))
        if sinks is None:
            sinks = self._make_sinks(name, method, status, ok, error)
        sinks[0].add(elapsed * 1000.0)
        sinks[1].add()
        sinks[2].add(not ok)
        if sent:
            self._data_sent.add(sent)
        if received:
            self._data_received.add(received)

    def _make_sinks(self, name: str, method: str, status: int, ok: bool,
                    error: str | None) -> _Sinks:
        tags: tuple[tuple[str, str], ...] = (
            ("expected_response", "true" if ok else "false"), ("method", method),
            ("name", name), ("status", str(status)))
        if error is not None:
            tags = (("error", error), *tags)  # sorted: "error" < "expected_response"
        store = self._store
        sinks = (store.trend("http_req_duration", tags), store.counter("http_reqs", tags),
                 store.rate("http_req_failed", tags))
        self._sinks[(name, method, status, ok, error)] = sinks
        return sinks

    @staticmethod
    def _matches(status: int, expected: Expected) -> bool:
        if isinstance(expected, int) and not isinstance(expected, bool):
            return status == expected
        if isinstance(expected, range):
            return status in expected
        if isinstance(expected, (set, frozenset, list, tuple)) and all(
                isinstance(s, int) and not isinstance(s, bool) for s in expected):
            return status in expected
        raise ConfigError(f"expected={expected!r}: expected a status (201), a range "
                          "(range(200, 300)) or a collection of statuses ({200, 404})")

    # -- URLs ---------------------------------------------------------------------------------
    def _target(self, method: str, url: str) -> _Target:
        """Resolve ``url`` against API_URL (httpx's base_url rules) and cache the result."""
        url = str(url)
        key = (method, url)
        target = self._targets.get(key)
        if target is not None:
            return target
        if not isinstance(method, str) or not method.isalpha():
            raise ConfigError(f"HTTP method {method!r}: expected a word such as 'GET' or 'POST'")
        method = method.upper()
        if url.startswith(("http://", "https://", "HTTP://", "HTTPS://")):
            full = url
        elif "://" in url.split("?", 1)[0]:
            raise ConfigError(f"URL {url!r}: unsupported scheme; expected http:// or https:// "
                              "(use vu.ws(...) for WebSocket URLs)")
        elif self._base_prefix is None:
            raise ConfigError(f"relative URL {url!r} needs a base URL: set API_URL (e.g. "
                              "API_URL=http://127.0.0.1:8000) or pass an absolute http:// URL")
        else:
            full = self._base_prefix + url.lstrip("/")
        parts = urlsplit(full)
        scheme = parts.scheme.lower()
        host = parts.hostname
        if not host:
            raise ConfigError(f"URL {url!r}: no host; expected http://host[:port]/path")
        port = self._port(scheme, parts)
        path = parts.path or "/"
        request_target = quote(path, safe="/%!$&'()*+,;=:@-._~")
        if parts.query:
            request_target += "?" + quote(parts.query, safe="/?%!$&'()*+,;=:@-._~")
        origin_api = self._api_origin == (scheme, host, port)
        block = self._api_block if origin_api else self._common_block
        target = _Target(method, full.split("#", 1)[0], path, scheme, host, port,
                         request_target, origin_api, block, not self._force_httpx)
        if len(self._targets) >= _TARGET_CACHE_MAX:
            self._targets.clear()  # dynamic URLs (/vms/123...): keep the cache bounded
        self._targets[key] = target
        return target
