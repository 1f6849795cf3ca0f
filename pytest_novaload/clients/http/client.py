"""`HttpClient`, the policy `vu.http` users call: URLs (``API_URL`` as base, the token only to
its origin), options, timeouts, redirects and the choice of transport. Encoding lives in
`encoding`, I/O in the transports (`fast`, `via_httpx`), recording in `measure`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from pytest_novaload.clients.base import ClientContext
from pytest_novaload.clients.http.encoding import (
    CookieInput,
    Encoder,
    HeaderInput,
    ParamsInput,
    Target,
    with_cookies,
)
from pytest_novaload.clients.http.fast import FastTransport
from pytest_novaload.clients.http.measure import Expected, HttpMeter
from pytest_novaload.clients.http.options import HttpOptions, parse_timeout
from pytest_novaload.clients.http.response import Response
from pytest_novaload.clients.http.transport import Transport
from pytest_novaload.clients.http.via_httpx import HttpxTransport
from pytest_novaload.errors import ConfigError
from pytest_novaload.redact import display_target

__all__ = ["HttpClient"]

DEFAULT_FOLLOWED_REDIRECTS = 10  # follow_redirects=True with max_redirects=0 (k6's default)
_TARGET_CACHE_MAX = 1024  # per VU (one client each): 50 VUs x 4096 targets was ~100 MB
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _port(scheme: str, parts: Any) -> int:
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"URL {parts.geturl()!r}: the port is not a number in "
                          "0-65535; fix the URL") from None
    return int(port) if port is not None else (80 if scheme == "http" else 443)


def _split_userinfo(parts: Any) -> tuple[str, str | None]:
    """(netloc without user info, the ``Authorization: Basic`` value it makes or None): httpx
    sends a URL's ``user:password`` as Basic auth, percent-decoded, UTF-8."""
    userinfo, sep, hostport = parts.netloc.rpartition("@")
    if not sep:
        return parts.netloc, None
    user, _, password = userinfo.partition(":")
    pair = f"{unquote(user)}:{unquote(password)}".encode()
    return hostport, "Basic " + base64.b64encode(pair).decode("ascii")


class HttpClient:
    """One per VU: ``get/post/put/patch/delete/head/options/request`` like httpx.AsyncClient.

    Transport errors never raise: the call returns a `Response` with ``status_code == 0``
    and ``error`` set. `asyncio.CancelledError` propagates and closes the connection.
    """

    def __init__(self, ctx: ClientContext) -> None:
        self._options = opts = HttpOptions(ctx.options.get("http") or {})
        self._timeout = opts.timeout
        self._base_prefix: str | None = None
        self._api_origin: tuple[str, str, int] | None = None
        self._allowlist = ctx.allowlist
        api_auth = None
        api_url = ctx.env.get("API_URL")
        if api_url:
            parts = urlsplit(api_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"API_URL={display_target(api_url)!r}: expected an http:// "
                                  "or https:// URL such as 'http://127.0.0.1:8000'; fix the "
                                  "environment variable")
            self._allowlist.check(parts.hostname, url=api_url, what="API_URL")
            netloc, api_auth = _split_userinfo(parts)
            path = parts.path if parts.path.endswith("/") else parts.path + "/"
            self._base_prefix = f"{parts.scheme}://{netloc}{path}"
            self._api_origin = (parts.scheme, parts.hostname, _port(parts.scheme, parts))
        self._encoder = Encoder(opts.headers, ctx.env.get("API_TOKEN"), opts.keep_alive,
                                authorization=api_auth)
        self._targets: dict[tuple[str, str], Target] = {}
        meter = HttpMeter(ctx)
        #: The two transports: the lean one with its connection pool (plain http://), httpx.
        self.fast_transport = FastTransport(meter, opts.pure_parser, max_body=opts.max_body,
                                            discard=opts.discard_bodies)
        self.httpx_transport = HttpxTransport(meter, opts.timeout, opts.verify, opts.http2,
                                              opts.keep_alive, max_body=opts.max_body,
                                              discard=opts.discard_bodies)

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
        """Send one request and record it; see the package docstring for the transports."""
        target = self._targets.get((method, url))
        if target is None:
            target = self._target(method, url)
        if timeout is None:
            timeout = self._timeout
        elif not (isinstance(timeout, (int, float)) and timeout > 0):
            timeout = parse_timeout(timeout, "timeout")
        if cookies:
            headers = with_cookies(headers, cookies)
        if (params is None and headers is None and json is None and content is None
                and data is None):
            if target.fast:  # the hot path: no Request object, the target's bytes as they are
                response = await self.fast_transport.send(
                    target, None, target.name if name is None else name, expected, timeout)
            else:
                response = await self.httpx_transport.send(
                    target, None, target.name if name is None else name, expected, timeout)
        else:
            response = await self._send(target, params, headers, json, content, data,
                                        target.name if name is None else name, expected,
                                        timeout)
        if response.status_code in _REDIRECTS:
            if follow_redirects is None:
                hops = self._options.max_redirects
            elif follow_redirects is True:
                hops = self._options.max_redirects or DEFAULT_FOLLOWED_REDIRECTS
            elif follow_redirects is False:
                hops = 0
            else:
                raise ConfigError(f"follow_redirects={follow_redirects!r}: expected True, "
                                  "False or None (the client's max_redirects option decides)")
            if hops:
                response = await self._follow(response, target.method, headers, json, content,
                                              data, name, expected, timeout, hops)
        return response

    async def _send(self, target: Target, params: ParamsInput, headers: HeaderInput,
                    json: Any, content: Any, data: Mapping[str, Any] | None, name: str,
                    expected: Expected, timeout: float) -> Response:
        """Encode a request with params, headers or a body and send it (httpx streams)."""
        request = self._encoder.encode(target, params, headers, json, content, data)
        transport: Transport = (self.fast_transport if target.fast and request.stream is None
                                else self.httpx_transport)
        return await transport.send(target, request, name, expected, timeout)

    async def _follow(self, response: Response, method: str, headers: HeaderInput, json: Any,
                      content: Any, data: Mapping[str, Any] | None, name: str | None,
                      expected: Expected, timeout: float, max_hops: int) -> Response:
        """Follow up to ``max_hops`` redirects; every hop is measured on its own."""
        hops = 0
        while response.status_code in _REDIRECTS and hops < max_hops:
            location = response.headers.get("location")
            if location is None:
                break
            hops += 1
            status = response.status_code
            if status == 303 or (status in (301, 302) and method == "POST"):
                method, json, content, data = "GET", None, None, None
            target = self._target(method, urljoin(str(response.url), location))
            response = await self._send(target, None, headers, json, content, data,
                                        name or target.name, expected, timeout)
        return response

    async def aclose(self) -> None:
        """Close every connection (the runner calls this when the VU stops)."""
        await self.fast_transport.aclose()
        await self.httpx_transport.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def transport_for(self, method: str, url: str) -> Literal["fast", "httpx"]:
        """Which transport a plain request to ``url`` would take (for tests and diagnostics)."""
        return "fast" if self._target(method, url).fast else "httpx"

    # -- URLs ---------------------------------------------------------------------------------
    def _target(self, method: str, url: str) -> Target:
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
            raise ConfigError(f"URL {display_target(url)!r}: no host; expected "
                              "http://host[:port]/path")
        self._allowlist.check(host, url=full, what="vu.http URL")  # memoised per host
        auth = None
        if "@" in parts.netloc:  # user info: sent as Basic auth (as httpx does), never shown
            netloc, auth = _split_userinfo(parts)
            full = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        port = _port(scheme, parts)
        path = parts.path or "/"
        request_target = quote(path, safe="/%!$&'()*+,;=:@-._~")
        if parts.query:
            request_target += "?" + quote(parts.query, safe="/?%!$&'()*+,;=:@-._~")
        target = self._encoder.target(method, full.split("#", 1)[0], path, scheme, host, port,
                                      request_target, self._api_origin == (scheme, host, port),
                                      not self._options.force_httpx, authorization=auth)
        if len(self._targets) >= _TARGET_CACHE_MAX:
            self._targets.clear()  # dynamic URLs (/vms/123...): keep the cache bounded
        self._targets[key] = target
        return target
