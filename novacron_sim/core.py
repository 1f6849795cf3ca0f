"""What every handler shares: the per-worker `Sim` context, JSON helpers and `ApiError`."""

from __future__ import annotations

import asyncio
import random
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
        return json.loads(data)

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
    "read_json_object",
]

#: status codes counted one by one in /_sim/stats; anything else is "other"
HTTP_STATUSES = (200, 201, 204, 400, 401, 404, 405, 409, 413, 422, 500, 502, 503, 504)
#: WebSocket counters, per endpoint ("hub" is /ws, "dwcp" is /dwcp/v3)
WS_COUNTERS = tuple(
    f"ws:{ep}:{what}"
    for ep in ("hub", "dwcp")
    for what in ("opened", "closed", "rejected", "received", "sent")
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
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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
        if supplied.strip() != self.token:
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


SIM = web.AppKey("sim", Sim)
