"""The one small interface between the HTTP client's policy and its two transports.

A transport sends one encoded request, times it, hands the outcome to the `HttpMeter` and
returns the `Response` (status 0 with ``error`` set for a transport error: nothing raises but
cancellation). `FastTransport` (asyncio.Protocol, plain http://) and `HttpxTransport`
(https, HTTP/2, streamed bodies, or ``transport="httpx"``) implement it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pytest_novaload.metrics.errors import ErrorTag

if TYPE_CHECKING:
    from pytest_novaload.clients.http.encoding import Request, Target
    from pytest_novaload.clients.http.measure import Expected
    from pytest_novaload.clients.http.response import Response

__all__ = ["Failure", "Transport"]


class Transport(Protocol):
    async def send(self, target: Target, request: Request | None, name: str,
                   expected: Expected, timeout: float) -> Response:
        """Send ``request`` (None: the target's ``simple`` request) within ``timeout`` s;
        ``name`` and ``expected`` tag the sample."""

    async def aclose(self) -> None:
        """Close every connection."""


class Failure(ErrorTag):
    """Why an exchange failed (never raised): an httpx error type, a message and whether the
    peer closed before one response byte came back, as a server does with an idle keep-alive
    socket (a reused connection may then be retried once)."""

    __slots__ = ("stale",)

    def __init__(self, type: str, message: str = "", *, stale: bool = False) -> None:
        super().__init__(type, message)
        self.stale = stale

    @classmethod
    def of(cls, tag: ErrorTag) -> Failure:
        return cls(tag.type, tag.message)
