"""The httpx transport: https, HTTP/2, streamed bodies, or ``transport="httpx"``.

One lazily created httpx.AsyncClient per VU client (httpx's pool is too slow to be the hot
path, PERF-FACTS). Redirects are the client's policy: httpx never follows them here.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any

from pytest_novaload.clients.http.encoding import USER_AGENT
from pytest_novaload.clients.http.response import Response
from pytest_novaload.clients.http.transport import Failure
from pytest_novaload.metrics.errors import error_tag

if TYPE_CHECKING:
    import httpx

    from pytest_novaload.clients.http.encoding import Request, Target
    from pytest_novaload.clients.http.measure import Expected, HttpMeter

__all__ = ["HttpxTransport"]


class HttpxTransport:
    """Sends through httpx and measures as the fast transport does (bytes estimated from the
    request and response heads, which httpx does not count)."""

    def __init__(self, meter: HttpMeter, timeout: float, verify: Any, http2: bool,
                 keep_alive: bool) -> None:
        self._meter = meter
        self._settings = (timeout, verify, http2, keep_alive)
        self._client: httpx.AsyncClient | None = None

    def _get_client(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            timeout, verify, http2, keep_alive = self._settings
            self._client = httpx.AsyncClient(
                timeout=timeout, follow_redirects=False, verify=verify, http2=http2,
                headers={"User-Agent": USER_AGENT},
                limits=httpx.Limits(max_keepalive_connections=None if keep_alive else 0))
        return self._client

    async def send(self, target: Target, request: Request | None, name: str,
                   expected: Expected, timeout: float) -> Response:
        import httpx

        client = self._get_client()
        method = target.method
        if request is None:
            url, hdrs, content = target.url, list(target.defaults.values()), None
        else:
            url, hdrs = request.url, request.header_pairs()
            content = request.body if request.body is not None else request.stream
        built = client.build_request(method, url, headers=hdrs, content=content,
                                     timeout=timeout)
        sent = (len(method) + len(built.url.raw_path) + 12
                + sum(len(k) + len(v) + 4 for k, v in built.headers.raw)
                + (len(request.body) if request is not None and request.body else 0))
        t0 = perf_counter()
        try:
            raw = await client.send(built)
        except httpx.RequestError as exc:
            return self._meter.failure(method, url, name, Failure.of(error_tag(exc)),
                                       perf_counter() - t0, sent, 0, timeout)
        elapsed = perf_counter() - t0
        received = (len(raw.reason_phrase) + 15 + raw.num_bytes_downloaded
                    + sum(len(k) + len(v) + 4 for k, v in raw.headers.raw))
        response = Response(raw.status_code, list(raw.headers.raw), raw.content, elapsed,
                            method, str(raw.url), reason=raw.reason_phrase,
                            http_version=raw.http_version)
        response.request = built
        self._meter.exchange(method, url, name, expected, raw.status_code, elapsed, sent,
                             received, raw.content)
        return response

    @property
    def started(self) -> bool:
        """Whether the httpx.AsyncClient exists (it is made on first use)."""
        return self._client is not None

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
