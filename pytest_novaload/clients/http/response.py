"""The response `vu.http` returns: httpx.Response's interface, built lazily from raw parts.

The fast transport hands over raw status, header pairs and body bytes; httpx objects
(`Headers`, `URL`, `Request`) are only created when a user asks for them, so a request
that nobody inspects allocates no httpx object at all.
"""

from __future__ import annotations

import datetime
import json as _jsonlib
import zlib
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, cast

import httpx

from pytest_novaload.clients.http.options import DEFAULT_MAX_BODY

try:  # orjson is ~5x faster for json(); the stdlib serves when it is absent
    import orjson as _orjson

    _loads: Callable[[bytes], Any] = _orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = _jsonlib.loads

RawHeaders = list[tuple[bytes, bytes]]


class BodyTooLarge(httpx.DecodingError):
    """A compressed body that decodes to more than the body limit (a zip bomb, or a limit too
    low): raised by ``content`` when the server compressed without being asked; asked for
    (the user's own Accept-Encoding), the transport fails the request as BodyTooLarge."""

    def __init__(self, limit: int, encoding: str) -> None:
        super().__init__(f"response body over {limit} bytes once decoded ({encoding}) (the "
                         "http= option max_body_size; raise it or set discard_bodies=True)")
        self.limit = limit


def inflate(content: bytes, encoding: bytes, limit: int) -> bytes:
    """``content`` decoded (``encoding``: gzip or deflate, zlib-wrapped or raw), never more
    than ``limit`` bytes of it: BodyTooLarge past that; zlib.error when it is not valid."""
    name = "gzip" if encoding == b"gzip" else "deflate"
    try:
        return _inflate(content, 47 if name == "gzip" else 15, limit, name)
    except zlib.error:
        return _inflate(content, -15, limit, name)  # raw deflate, as some servers send


class Inflater:
    """Decodes a gzip/deflate body chunk by chunk (the httpx transport reads it raw), never
    past ``limit`` bytes in all: BodyTooLarge then, before anything larger is made."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.name = "gzip" if encoding == "gzip" else "deflate"
        self.limit = self.left = limit
        self._d = zlib.decompressobj(47 if self.name == "gzip" else 15)
        self._first = True

    def feed(self, chunk: bytes) -> bytes:
        """The decoded bytes of ``chunk``; zlib.error when the body is not valid."""
        try:
            out = self._d.decompress(chunk, self.left + 1)
        except zlib.error:
            if not self._first or self.name == "gzip":
                raise
            self._d = zlib.decompressobj(-15)  # raw deflate, as some servers send
            out = self._d.decompress(chunk, self.left + 1)
        self._first = False
        return self._took(out, bool(self._d.unconsumed_tail))

    def flush(self) -> bytes:
        return self._took(self._d.flush(self.left + 1), False)

    def _took(self, out: bytes, more: bool) -> bytes:
        self.left -= len(out)
        if self.left < 0 or more:
            raise BodyTooLarge(self.limit, self.name)
        return out


def _inflate(content: bytes, wbits: int, limit: int, name: str) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(content, limit + 1)
    if len(out) > limit or d.unconsumed_tail:
        raise BodyTooLarge(limit, name)
    out += d.flush(limit + 1 - len(out))
    if len(out) > limit:
        raise BodyTooLarge(limit, name)
    if not d.eof:
        raise zlib.error("Error -5 while decompressing data: incomplete or truncated stream")
    return out

def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def parse_head(raw: bytes) -> tuple[str, str, RawHeaders]:
    """(http_version, reason, header pairs) of the final response head in ``raw``.

    ``raw`` starts with the response head (interim 1xx heads before it are skipped); bytes
    after the head's blank line are ignored.
    """
    start = 0
    while True:
        end = raw.find(b"\r\n\r\n", start)
        if end < 0:
            end = len(raw)
        lines = raw[start:end].split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if code[:1] == b"1" and code != b"101" and end < len(raw):
            start = end + 4  # an interim response (100 Continue...): the real head follows
            continue
        headers: RawHeaders = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name, value.strip()))
        return (version.decode("ascii", "replace"), rest[4:].decode("latin-1"), headers)


class Response:
    """A finished HTTP exchange, or a transport failure (``status_code == 0``, ``error`` set)."""

    __slots__ = (
        "_checked",
        "_content",
        "_elapsed",
        "_head",
        "_headers",
        "_limit",
        "_raw_headers",
        "_reason",
        "_request",
        "_url",
        "_url_str",
        "_version",
        "error",
        "error_code",
        "method",
        "status_code",
    )

    def __init__(
        self,
        status_code: int,
        raw_headers: RawHeaders | None,
        content: bytes,
        elapsed_s: float,
        method: str,
        url: str,
        *,
        head: list[bytes] | None = None,
        reason: str | None = None,
        http_version: str | None = None,
        error: str | None = None,
        error_code: int = 0,
        max_body: int = DEFAULT_MAX_BODY,
        decoded: bool = False,
    ) -> None:
        """``max_body``: the most a compressed body may decode to; ``decoded``: ``content``
        is decoded already (httpx decodes as it reads: never twice)."""
        self.status_code = status_code
        self._raw_headers = raw_headers
        self._head = head  # the fast transport's raw head bytes, parsed on first use
        self._content = content
        self._elapsed = elapsed_s
        self.method = method
        self._url_str = url
        self._reason = reason
        self._version = http_version
        self.error = error
        self.error_code = error_code
        self._headers: httpx.Headers | None = None
        self._url: httpx.URL | None = None
        self._request: httpx.Request | None = None
        self._checked = decoded  # Content-Encoding looked at
        self._limit = max_body

    def _parse(self) -> RawHeaders:
        """Header pairs, parsing the raw head on first use (most responses never need it)."""
        if self._raw_headers is None:
            head = self._head or []
            raw = head[0] if len(head) == 1 else b"".join(head)
            version, reason, self._raw_headers = parse_head(raw) if raw else ("", "", [])
            self._head = None
            if self._version is None:
                self._version = version or "HTTP/1.1"
            if self._reason is None:
                self._reason = reason
        return self._raw_headers

    @property
    def http_version(self) -> str:
        if self._version is None:
            self._parse()
        return self._version or "HTTP/1.1"

    # -- what httpx users read ------------------------------------------------------------
    @property
    def headers(self) -> httpx.Headers:
        """Case-insensitive, multi-valued response headers (built on first access)."""
        if self._headers is None:
            self._headers = httpx.Headers(self._parse())
        return self._headers

    @property
    def content(self) -> bytes:
        """The body; gzip/deflate bodies are decoded, to at most the body limit (past it:
        BodyTooLarge), so a zip bomb never inflates."""
        content = self._content
        if content and not self._checked and self._may_be_encoded():
            encoding = self._header(b"content-encoding")
            coding = encoding.strip().lower() if encoding is not None else b""
            if coding in (b"gzip", b"deflate"):
                content = inflate(content, coding, self._limit)
                self._content = content
                self._raw_headers = [(k, v) for k, v in self._parse()
                                     if k.lower() != b"content-encoding"]
                self._headers = None
        self._checked = True
        return content

    @property
    def charset_encoding(self) -> str | None:
        """The charset named by Content-Type, or None."""
        ctype = self._header(b"content-type")
        if ctype is not None:
            for part in ctype.split(b";")[1:]:
                key, _, value = part.partition(b"=")
                if key.strip().lower() == b"charset" and value.strip():
                    return value.strip().strip(b"\"'").decode("ascii", "replace")
        return None

    @property
    def encoding(self) -> str:
        """The charset used by ``text``: Content-Type's, else utf-8 (httpx's default)."""
        return self.charset_encoding or "utf-8"

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:  # an unknown charset name
            return self.content.decode("utf-8", errors="replace")

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON (orjson when installed; kwargs go to the stdlib json)."""
        if kwargs:
            return _jsonlib.loads(self.content, **kwargs)
        return _loads(self.content)

    def read(self) -> bytes:
        return self.content

    async def aread(self) -> bytes:
        return self.content

    @property
    def elapsed(self) -> datetime.timedelta:
        """From sending the request to the last byte of the body (what http_req_duration says)."""
        return datetime.timedelta(seconds=self._elapsed)

    @property
    def url(self) -> httpx.URL:
        if self._url is None:
            self._url = httpx.URL(self._url_str)
        return self._url

    @property
    def request(self) -> httpx.Request:
        """A minimal httpx.Request (method and URL) for code that inspects ``r.request``."""
        if self._request is None:
            self._request = httpx.Request(self.method, self._url_str)
        return self._request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value

    @property
    def reason_phrase(self) -> str:
        if self._reason is None and self._head is not None:
            self._parse()
        if self._reason is None:
            self._reason = _reason(self.status_code)
        return self._reason

    @property
    def history(self) -> list[Response]:
        return []

    @property
    def num_bytes_downloaded(self) -> int:
        return len(self._content)

    @property
    def is_informational(self) -> bool:
        return 100 <= self.status_code < 200

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        return (self.status_code in (301, 302, 303, 307, 308)
                and self._header(b"location") is not None)

    @property
    def is_client_error(self) -> bool:
        return 400 <= self.status_code < 500

    @property
    def is_server_error(self) -> bool:
        return 500 <= self.status_code < 600

    @property
    def is_error(self) -> bool:
        """A 4xx/5xx status, or a transport error (status 0)."""
        return self.status_code >= 400 or self.status_code == 0

    def raise_for_status(self) -> Response:
        """httpx semantics: return self for 2xx, else raise.

        A non-2xx status raises ``httpx.HTTPStatusError`` naming status and URL; a transport
        error (status 0) raises the httpx exception of the same name (``httpx.ConnectError``...).
        """
        if self.is_success:
            return self
        if self.status_code == 0:
            name, _, message = (self.error or "TransportError").partition(": ")
            exc_type = getattr(httpx, name, None)
            if not (isinstance(exc_type, type) and issubclass(exc_type, httpx.TransportError)):
                exc_type = httpx.TransportError
            raise exc_type(f"{self.error} for url '{self._url_str}'", request=self.request)
        kinds = {1: "Informational response", 3: "Redirect response", 4: "Client error",
                 5: "Server error"}
        kind = kinds.get(self.status_code // 100, "Invalid status code")
        message = f"{kind} '{self.status_code} {self.reason_phrase}' for url '{self._url_str}'"
        raise httpx.HTTPStatusError(message, request=self.request,
                                    response=cast(httpx.Response, self))

    def __repr__(self) -> str:
        if self.status_code == 0:
            return f"<Response [0 {self.error}]>"
        return f"<Response [{self.status_code} {self.reason_phrase}]>"

    def __bool__(self) -> bool:
        return True

    def _may_be_encoded(self) -> bool:
        """False when the raw head surely has no Content-Encoding (no parse needed)."""
        if self._raw_headers is not None:
            return any(k.lower() == b"content-encoding" for k, _ in self._raw_headers)
        for chunk in self._head or ():
            end = chunk.find(b"\r\n\r\n")
            if b"content-encoding" in (chunk if end < 0 else chunk[:end]).lower():
                return True
            if end >= 0:
                return False
        return False

    def _header(self, lower_name: bytes) -> bytes | None:
        """The first value of a header, found without building httpx.Headers."""
        for key, value in self._parse():
            if len(key) == len(lower_name) and key.lower() == lower_name:
                return value
        return None
