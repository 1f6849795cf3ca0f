"""WebSocket endpoints: the /ws hub (channels, ping, queries) and /dwcp/v3 (migration progress).

Idle connections cost only their aiohttp handler: pushes come from one broadcaster task per
channel per worker, running while the channel has subscribers. permessage-deflate is off.

Memory per connection is bounded whatever a client does: a message is at most 64 KiB and
aiohttp stops reading a socket whose queue is full; a subscriber that does not read has events
skipped (counted as `skipped`) once SLOW_CONSUMER_BYTES wait in its send buffer, so it neither
grows the buffer nor holds up the broadcast to the others; a connection has at most MAX_INFLIGHT
queries answered at once (then reading it waits) and MAX_WATCHES migrations watched, and a
finished watch is forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web

from novacron_sim import plan as planmod
from novacron_sim.core import (
    ID_MAX,
    SIM,
    Sim,
    dumps,
    error_response,
    loads,
    now_ms,
    parse_id,
    short,
    track,
)
from novacron_sim.hub import CHANNELS, SLOW_CONSUMER_BYTES, Hub
from novacron_sim.migrations import STORE, MigrationStore

__all__ = ["CHANNELS", "HUB", "QUERIES", "SLOW_CONSUMER_BYTES", "Hub", "dwcp_ws", "hub_ws"]

QUERIES = ("vm_count", "vm_status", "zones", "migration_status")
_MAX_MSG = 64 * 1024
MAX_INFLIGHT = 64
MAX_WATCHES = 1000
_log = logging.getLogger("novacron_sim")


HUB = web.AppKey("hub", Hub)


async def _open(request: web.Request, endpoint: str) -> web.WebSocketResponse | web.Response:
    sim = request.app[SIM]
    reason = sim.check_token(request)
    if reason is not None:
        sim.count(f"ws:{endpoint}:rejected")
        return error_response(401, reason, headers={"WWW-Authenticate": "Bearer"})
    ws = web.WebSocketResponse(compress=False, max_msg_size=_MAX_MSG, autoping=True)
    await ws.prepare(request)
    sim.websockets.add(ws)
    sim.count(f"ws:{endpoint}:opened")
    return ws


class _Conn:
    """Send helper counting outgoing messages for one connection."""

    __slots__ = ("sent_index", "sim", "ws")

    def __init__(self, sim: Sim, ws: web.WebSocketResponse, endpoint: str) -> None:
        self.sim = sim
        self.ws = ws
        self.sent_index = sim.shared.index[f"ws:{endpoint}:sent"]

    async def send(self, msg: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        try:
            text = dumps(msg).decode()
        except (TypeError, ValueError):  # an echoed value the encoder refuses
            text = dumps({"type": "error", "error": "the reply could not be encoded"}).decode()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(text)
            self.sim.shared.inc(self.sent_index)


async def _messages(conn: _Conn, endpoint: str) -> Any:
    """Yield decoded JSON objects; answer malformed ones with an error message."""
    received = conn.sim.shared.index[f"ws:{endpoint}:received"]
    async for msg in conn.ws:
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        conn.sim.shared.inc(received)
        try:
            data = loads(msg.data)
        except ValueError as exc:
            await conn.send({"type": "error", "error": f"malformed JSON: {exc}"})
            continue
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            await conn.send({"type": "error", "error": "messages are JSON objects with a type"})
            continue
        yield data


def _pong(msg: dict[str, Any]) -> dict[str, Any]:
    out = {"type": "pong", "id": msg.get("id"), "ts": now_ms()}
    if "ts" in msg:
        out["client_ts"] = msg["ts"]
    return out


def _channels(msg: dict[str, Any]) -> list[str] | str:
    """The channels a (un)subscribe names, or an error reason."""
    raw = msg.get("channels", msg.get("channel"))
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names or not all(isinstance(c, str) for c in names):
        return f"name a channel: 'channel' or 'channels', from {', '.join(CHANNELS)}"
    unknown = [c for c in names if c not in CHANNELS]
    if unknown:
        return f"unknown channel {unknown[0]!r}; known: {', '.join(CHANNELS)}"
    return names


def _int_id(value: Any, what: str) -> int:
    """An integer id from a query's params (LookupError saying what is wrong otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise LookupError(f"{what} needs an integer {what.split('_')[0]}_id (in params)")
    vm_id = parse_id(value)
    if vm_id is None:
        shown = value if value.bit_length() <= 64 else "an integer outside int64"
        raise LookupError(f"{what}: ids are integers from 1 to {ID_MAX}, got {shown}")
    return vm_id


async def _answer_query(conn: _Conn, store: MigrationStore, msg: dict[str, Any]) -> None:
    """Answer one query: a response, or an error naming the problem; never no reply."""
    corr = msg.get("id")
    try:
        await _answer(conn, store, msg, corr)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        _log.exception("novacron_sim: query %r failed", str(msg.get("query"))[:60])
        reason = f"internal error: {type(exc).__name__}"
        await conn.send({"type": "error", "id": corr, "error": reason})


async def _answer(conn: _Conn, store: MigrationStore, msg: dict[str, Any], corr: Any) -> None:
    sim = conn.sim
    injected = await sim.injected()
    if injected is not None:
        await conn.send({"type": "error", "id": corr, "error": "injected"})
        return
    query = msg.get("query")
    params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
    assert isinstance(params, dict)
    result: Any
    try:
        if query == "vm_count":
            result = {"count": await sim.pool.fetchval("SELECT count(*) FROM vms")}
        elif query == "vm_status":
            vm_id = _int_id(params.get("vm_id", msg.get("vm_id")), "vm_status")
            row = await sim.pool.fetchrow(
                "SELECT id AS vm_id, state, zone FROM vms WHERE id = $1", vm_id
            )
            if row is None:
                raise LookupError(f"vm {vm_id} not found")
            result = dict(row)
        elif query == "zones":
            result = {"zones": list(sim.zones)}
        elif query == "migration_status":
            mid = _int_id(params.get("migration_id", msg.get("migration_id")), "migration_status")
            p = await store.get(mid)
            if p is None:
                raise LookupError(f"migration {mid} not found")
            result = store.view(p)
        else:
            raise LookupError(f"unknown query {short(query)}; known: {', '.join(QUERIES)}")
    except LookupError as exc:
        await conn.send({"type": "error", "id": corr, "error": str(exc.args[0])})
        return
    await conn.send(
        {"type": "response", "id": corr, "query": query, "result": result, "ts": now_ms()}
    )


async def _finish(
    sim: Sim, ws: web.WebSocketResponse, endpoint: str, tasks: set[asyncio.Task[Any]]
) -> None:
    pending = list(tasks)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    sim.websockets.discard(ws)
    sim.count(f"ws:{endpoint}:closed")


async def hub_ws(request: web.Request) -> web.StreamResponse:
    """/ws: subscribe/unsubscribe channels, ping -> pong, query -> response (by id)."""
    opened = await _open(request, "hub")
    if not isinstance(opened, web.WebSocketResponse):
        return opened
    ws, sim, hub, store = opened, request.app[SIM], request.app[HUB], request.app[STORE]
    conn = _Conn(sim, ws, "hub")
    transport = request.transport
    tasks: set[asyncio.Task[Any]] = set()
    try:
        async for msg in _messages(conn, "hub"):
            kind = msg["type"]
            if kind == "ping":
                await conn.send(_pong(msg))
            elif kind in ("subscribe", "unsubscribe"):
                names = _channels(msg)
                if isinstance(names, str):
                    await conn.send({"type": "error", "id": msg.get("id"), "error": names})
                    continue
                for c in names:
                    if kind == "subscribe":
                        hub.subscribe(ws, c, transport)
                    else:
                        hub.unsubscribe(ws, c)
                await conn.send({"type": f"{kind}d", "id": msg.get("id"), "channels": names})
            elif kind == "query":
                if len(tasks) >= MAX_INFLIGHT:  # stop reading until one is answered
                    await asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED)
                query = _answer_query(conn, store, msg)
                track(asyncio.get_running_loop().create_task(query), tasks)
            else:
                await conn.send(
                    {
                        "type": "error",
                        "id": msg.get("id"),
                        "error": f"unknown message type {short(kind)}; known: ping, "
                        "subscribe, unsubscribe, query",
                    }
                )
    finally:
        hub.drop(ws)
        await _finish(sim, ws, "hub", tasks)
    return ws


async def _watch(conn: _Conn, store: MigrationStore, p: planmod.Plan) -> None:
    """Send a progress event at each step of the migration, then completed/failed."""
    last: tuple[str, int] | None = None
    while True:
        now = time.time()
        v = store.view(p, now)
        base = {
            "migration_id": p.id,
            "phase": v["phase"],
            "progress": v["progress"],
            "state": v["state"],
            "ts": now_ms(),
        }
        if v["state"] in ("completed", "failed"):
            final = {"type": v["state"], **base, "duration_ms": v["duration_ms"]}
            if "error" in v:
                final["error"] = v["error"]
            await conn.send(final)
            return
        if (v["phase"], v["progress"]) != last:
            last = (v["phase"], v["progress"])
            await conn.send({"type": "progress", **base})
        nxt = planmod.next_change(p, now)
        await asyncio.sleep(0.0 if nxt is None else max(0.0, nxt - time.time()))


def _forget(watches: dict[int, asyncio.Task[None]], mid: int, task: asyncio.Task[None]) -> None:
    """A finished watch leaves the connection's table (unless a newer one replaced it)."""
    if watches.get(mid) is task:
        del watches[mid]


async def dwcp_ws(request: web.Request) -> web.StreamResponse:
    """/dwcp/v3: subscribe (or watch) {migration_id} -> progress events, then the final one."""
    opened = await _open(request, "dwcp")
    if not isinstance(opened, web.WebSocketResponse):
        return opened
    ws, sim, store = opened, request.app[SIM], request.app[STORE]
    conn = _Conn(sim, ws, "dwcp")
    watches: dict[int, asyncio.Task[None]] = {}
    tasks: set[asyncio.Task[Any]] = set()
    try:
        async for msg in _messages(conn, "dwcp"):
            kind = msg["type"]
            if kind == "ping":
                await conn.send(_pong(msg))
            elif kind in ("subscribe", "watch", "unsubscribe"):
                mid = msg.get("migration_id")
                valid = parse_id(mid)
                p = await store.get(valid) if valid is not None else None
                if p is None:
                    hint = "" if valid else " (ids are integers from 1, or their decimal text)"
                    await conn.send(
                        {
                            "type": "error",
                            "migration_id": mid,
                            "error": f"migration {short(mid)} not found{hint}",
                        }
                    )
                    continue
                old = watches.pop(p.id, None)
                if old is not None:
                    old.cancel()
                if kind == "unsubscribe":
                    await conn.send({"type": "unsubscribed", "migration_id": p.id})
                    continue
                if len(watches) >= MAX_WATCHES:
                    await conn.send({"type": "error", "migration_id": p.id, "error":
                                     f"this connection already watches {MAX_WATCHES} "
                                     "migrations: unsubscribe one or open another connection"})
                    continue
                task = track(asyncio.get_running_loop().create_task(_watch(conn, store, p)), tasks)
                watches[p.id] = task
                task.add_done_callback(functools.partial(_forget, watches, p.id))
            else:
                await conn.send(
                    {
                        "type": "error",
                        "error": f"unknown message type {short(kind)}; "
                        "known: ping, subscribe, watch, unsubscribe",
                    }
                )
    finally:
        await _finish(sim, ws, "dwcp", tasks)
    return ws
