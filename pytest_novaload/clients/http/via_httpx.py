"""The httpx transport: https, HTTP/2, streamed bodies, or ``transport="httpx"``.

One lazily created httpx.AsyncClient per VU client (httpx's pool is too slow to be the hot
path, PERF-FACTS). Redirects are the client's policy: httpx never follows them here.
"""

from __future__ import annotations

import zlib
from time import perf_counter
from typing import TYPE_CHECKING, Any

from pytest_novaload.clients.http.encoding import USER_AGENT
from pytest_novaload.clients.http.options import DEFAULT_MAX_BODY
from pytest_novaload.clients.http.response import BodyTooLarge, Inflater, Response
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
                 keep_alive: bool, *, max_body: int = DEFAULT_MAX_BODY,
                 discard: bool = False) -> None:
        self._meter = meter
        self._max_body = max_body
        self._discard = discard
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
        raw: httpx.Response | None = None
        try:
            raw = await client.send(built, stream=True)
            content, failure = await self._read(raw)
        except httpx.RequestError as exc:
            failure, content = Failure.of(error_tag(exc)), b""
        finally:
            if raw is not None:
                await raw.aclose()
        elapsed = perf_counter() - t0
        head = 0 if raw is None else (len(raw.reason_phrase) + 15
                                      + sum(len(k) + len(v) + 4 for k, v in raw.headers.raw))
        received = head + (0 if raw is None else raw.num_bytes_downloaded)
        if failure is not None or raw is None:
            assert failure is not None
            return self._meter.failure(method, url, name, failure, elapsed, sent, received,
                                       timeout)
        response = Response(raw.status_code, list(raw.headers.raw), content, elapsed,
                            method, str(raw.url), reason=raw.reason_phrase,
                            http_version=raw.http_version, decoded=True)
        response.request = built
        self._meter.exchange(method, url, name, expected, raw.status_code, elapsed, sent,
                             received, content)
        return response

    async def _read(self, raw: httpx.Response) -> tuple[bytes, Failure | None]:
        """The decoded body up to ``max_body`` bytes (nothing kept when discarding); over
        it, a BodyTooLarge failure and the rest unread (the caller closes the response).
        gzip and deflate are decoded here, bounded (httpx would inflate a whole network
        chunk at once: 64 KB of a zip bomb is 64 MB)."""
        import httpx

        limit, discard = self._max_body, self._discard
        chunks: list[bytes] = []
        size = 0
        coding = raw.headers.get("content-encoding", "").strip().lower()
        inflater = Inflater(coding, limit) if coding in ("gzip", "deflate") else None
        try:
            stream = raw.aiter_bytes() if inflater is None else raw.aiter_raw()
            async for got in stream:
                chunk = got if inflater is None else inflater.feed(got)
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(limit, coding or "identity")
                if not discard:
                    chunks.append(chunk)
            if inflater is not None and not discard:
                chunks.append(inflater.flush())
        except BodyTooLarge:
            return b"", Failure("BodyTooLarge", f"response body over {limit} bytes (the "
                                "http= option max_body_size; raise it or set "
                                "discard_bodies=True)")
        except zlib.error as exc:
            raise httpx.DecodingError(str(exc), request=raw.request) from exc
        return b"".join(chunks), None

    @property
    def started(self) -> bool:
        """Whether the httpx.AsyncClient exists (it is made on first use)."""
        return self._client is not None

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
