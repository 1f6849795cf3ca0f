"""What every handler shares: the per-worker `Sim` context, JSON helpers and `ApiError`."""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import re
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from novacron_sim.shared import Shared

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    def loads(data: bytes | str) -> Any:
        return orjson.loads(data)

    JSONDecodeError: type[ValueError] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - orjson is optional
    import json

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    def loads(data: bytes | str) -> Any:
        try:
            return json.loads(data)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError) as exc:  # too deep, an integer of 5000 digits
            raise json.JSONDecodeError(f"not accepted: {type(exc).__name__}", "", 0) from None

    JSONDecodeError = json.JSONDecodeError

__all__ = [
    "HTTP_STATUSES",
    "SIM",
    "WS_COUNTERS",
    "ApiError",
    "Sim",
    "dumps",
    "error_response",
    "json_response",
    "loads",
    "now_ms",
    "parse_id",
    "read_json_object",
    "short",
    "track",
]

_log = logging.getLogger("novacron_sim")
_ID = re.compile(r"[1-9][0-9]{0,18}")
ID_MAX = 2**63 - 1
"""Ids are PostgreSQL bigints (int64) from 1."""


def parse_id(value: object) -> int | None:
    """An id from a path segment, a query or a JSON value, or None: an int (not a bool) from 1
    to ID_MAX, or its text in decimal ASCII digits without sign, space, underscore or leading
    zero. "+2", " 2", "1_0", "02", "٢" and 2**63 are not ids (int() would take most of them)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= ID_MAX else None
    if isinstance(value, str) and _ID.fullmatch(value):
        number = int(value)
        return number if number <= ID_MAX else None
    return None

#: status codes counted one by one in /_sim/stats; anything else is "other"
HTTP_STATUSES = (200, 201, 204, 400, 401, 404, 405, 409, 413, 422, 500, 502, 503, 504)
#: WebSocket counters, per endpoint ("hub" is /ws, "dwcp" is /dwcp/v3)
WS_COUNTERS = tuple(
    f"ws:{ep}:{what}"
    for ep in ("hub", "dwcp")
    for what in ("opened", "closed", "rejected", "received", "sent", "skipped")
)


class ApiError(Exception):
    """An error answered as JSON {"error": reason, "field": field}."""

    def __init__(self, status: int, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.field = field


def now_ms() -> float:
    """Wall-clock epoch milliseconds (what `ts` fields carry, like JavaScript's Date.now())."""
    return round(time.time() * 1000.0, 3)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(data), status=status, content_type="application/json", headers=headers
    )


def error_response(
    status: int, reason: str, field: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": reason}
    if field is not None:
        body["field"] = field
    return json_response(body, status=status, headers=headers)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or ApiError(400) saying what is wrong with it."""
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "request body must be a JSON object, got an empty body")
    try:
        body = loads(raw)
    except (JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(body).__name__}")
    return body


@dataclass
class Sim:
    """One worker's state: its asyncpg pool, the shared block and caches of static data."""

    pool: Any  # asyncpg.Pool
    shared: Shared
    worker: int
    token: str | None
    zones: tuple[str, ...]
    hosts: dict[str, list[int]]  # zone -> online host ids
    host_names: list[str]
    vm_max: int
    rng: random.Random = field(default_factory=random.Random)
    websockets: set[web.WebSocketResponse] = field(default_factory=set)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def count(self, name: str, n: int = 1) -> None:
        self.shared.inc(self.shared.index[name], n)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `coro` in the background, keeping a reference until it ends."""
        return track(asyncio.get_running_loop().create_task(coro), self._tasks)

    def check_token(self, request: web.Request) -> str | None:
        """None when the request may pass, else the reason it may not."""
        if self.token is None:
            return None
        header = request.headers.get("Authorization")
        if header is None:
            supplied = request.query.get("token")
            if supplied is None:
                return "missing bearer token: send 'Authorization: Bearer <token>'"
        else:
            scheme, _, supplied = header.partition(" ")
            if scheme.lower() != "bearer" or not supplied:
                return "malformed Authorization header: expected 'Bearer <token>'"
        if not hmac.compare_digest(supplied.strip().encode(), self.token.encode()):
            return "invalid bearer token"
        return None

    async def injected(self) -> web.Response | None:
        """Apply the latency knob, then the error knob (None when no error is injected)."""
        latency = self.shared.knob("latency_ms")
        if latency > 0:
            await asyncio.sleep(latency / 1000.0)
        rate = self.shared.knob("error_rate")
        if rate > 0 and self.rng.random() < rate:
            self.count("injected_errors")
            status = int(self.shared.knob("error_status"))
            return error_response(status, "injected")
        return None

    async def close(self) -> None:
        for ws in list(self.websockets):
            await ws.close(code=1001, message=b"server shutting down")
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def short(value: Any) -> str:
    """``value`` for an error message: a short repr, or what it is when long or nested."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "an integer outside int64"
    if isinstance(value, str):
        return repr(value[:60]) + ("..." if len(value) > 60 else "")
    if isinstance(value, int | float | bool) or value is None:
        return repr(value)
    return f"a JSON {'array' if isinstance(value, list) else 'object'}"


SIM = web.AppKey("sim", Sim)


def track(task: asyncio.Task[Any], tasks: set[asyncio.Task[Any]]) -> asyncio.Task[Any]:
    """Keep ``task`` in ``tasks`` until it ends; an exception it ends with is logged (with its
    traceback) at once, never left as "Task exception was never retrieved"."""
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    task.add_done_callback(_log_failure)
    return task


def _log_failure(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        _log.error("novacron_sim: background task %s failed", task.get_name(),
                   exc_info=(type(exc), exc, exc.__traceback__))
