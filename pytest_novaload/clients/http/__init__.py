"""`vu.http`: the httpx calling convention over a lean HTTP/1.1 transport.

Plain ``http://`` requests go through hand-built request bytes on a pool of keep-alive
asyncio.Protocol connections per host:port (PERF-FACTS: ~10x Locust per core); ``https://``,
HTTP/2, streamed bodies, or ``transport="httpx"`` go through one lazily created
httpx.AsyncClient. Both transports record through the same `HttpMeter`.

Layout: `client` (policy: URLs, options, timeouts, redirects, which transport), `encoding`
(request bytes and headers), `transport` (the interface), `fast` + `parser` and `via_httpx`
(the two transports), `measure` (samples and failures), `response` (what a call returns),
`options` (the ``http=`` option rules).

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

A failed request (transport error: status 0; or an unexpected status) reports its cause with
``ctx.report("http_req_failed", type, "<error> (<METHOD> <url>)")``.
"""

from pytest_novaload.clients.http.client import HttpClient
from pytest_novaload.clients.http.options import validate_http_options
from pytest_novaload.clients.http.response import Response

__all__ = ["HttpClient", "Response", "validate_http_options"]
