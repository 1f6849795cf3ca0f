"""The aiohttp application: route table, the counting/auth/knob middleware, /_sim control
endpoints, and `serve()` which runs one worker on an already bound socket."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from novacron_sim import migrations, sockets, vms
from novacron_sim.core import (
    HTTP_STATUSES,
    SIM,
    WS_COUNTERS,
    ApiError,
    Sim,
    error_response,
    json_response,
    read_json_object,
)
from novacron_sim.shared import Shared, validate_knobs

__all__ = ["ROUTES", "counter_names", "make_app", "serve"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def get_config(request: web.Request) -> web.Response:
    return json_response(request.app[SIM].shared.knobs())


async def set_config(request: web.Request) -> web.Response:
    """POST /_sim/config {latency_ms, error_rate, error_status, migration_failure_rate,
    time_scale, push_interval_ms} (any subset) -> the whole config."""
    sim = request.app[SIM]
    body = await read_json_object(request)
    ok, problems = validate_knobs(body)
    if problems:
        field, _ = problems[0]
        raise ApiError(422, "; ".join(r for _, r in problems), field)
    sim.shared.set_knobs(ok)
    return json_response(sim.shared.knobs())


def stats_document(shared: Shared) -> dict[str, Any]:
    t = shared.totals()
    by_route = {k[4:]: v for k, v in t.items() if k.startswith("req:")}
    errors = {k[4:]: v for k, v in t.items() if k.startswith("err:") and v}
    by_status = {k[7:]: v for k, v in t.items() if k.startswith("status:") and v}
    ws: dict[str, dict[str, int]] = {}
    for k, v in t.items():
        if k.startswith("ws:"):
            _, ep, what = k.split(":")
            ws.setdefault(ep, {})[what] = v
    for counts in ws.values():
        counts["open"] = counts["opened"] - counts["closed"]
    return {
        "workers": shared.workers,
        "requests": {
            "total": sum(by_route.values()),
            "by_route": {k: v for k, v in by_route.items() if v},
            "errors_by_route": errors,
            "by_status": by_status,
        },
        "websocket": ws,
        "migrations": {"created": t["migrations:created"]},
        "injected_errors": t["injected_errors"],
    }


async def get_stats(request: web.Request) -> web.Response:
    return json_response(stats_document(request.app[SIM].shared))


async def reset_stats(request: web.Request) -> web.Response:
    request.app[SIM].shared.reset()
    return web.Response(status=204)


#: (method, path, handler, kind). kind "api": counted, token, knobs; "health": counted only;
#: "ws": token checked by the handler; "control": none of these (the test's side channel).
ROUTES: tuple[tuple[str, str, Handler, str], ...] = (
    ("GET", "/health", health, "health"),
    ("GET", "/api/v1/health", health, "health"),
    ("GET", "/api/v1/zones", vms.list_zones, "api"),
    ("GET", "/api/v1/vms", vms.list_vms, "api"),
    ("POST", "/api/v1/vms", vms.create_vm, "api"),
    ("GET", "/api/v1/vms/{id}", vms.get_vm, "api"),
    ("PUT", "/api/v1/vms/{id}", vms.update_vm, "api"),
    ("PATCH", "/api/v1/vms/{id}", vms.update_vm, "api"),
    ("DELETE", "/api/v1/vms/{id}", vms.delete_vm, "api"),
    ("GET", "/api/v1/vms/{id}/metrics", vms.vm_metrics, "api"),
    ("POST", "/api/v1/vms/{id}/{action}", vms.vm_action, "api"),
    ("POST", "/api/v1/migrations", migrations.create_migration, "api"),
    ("POST", "/api/v1/migrations/status", migrations.batch_status, "api"),
    ("GET", "/api/v1/migrations/{id}", migrations.get_migration, "api"),
    ("GET", "/ws", sockets.hub_ws, "ws"),
    ("GET", "/dwcp/v3", sockets.dwcp_ws, "ws"),
    ("GET", "/_sim/config", get_config, "control"),
    ("POST", "/_sim/config", set_config, "control"),
    ("GET", "/_sim/stats", get_stats, "control"),
    ("DELETE", "/_sim/stats", reset_stats, "control"),
)
_COUNTED = [f"{m} {p}" for m, p, _, kind in ROUTES if kind in ("api", "health")]


def counter_names() -> list[str]:
    """Every counter of the shared block (fixed before the workers fork)."""
    names = [f"req:{k}" for k in [*_COUNTED, "other"]]
    names += [f"err:{k}" for k in [*_COUNTED, "other"]]
    names += [f"status:{s}" for s in HTTP_STATUSES] + ["status:other"]
    names += [*WS_COUNTERS, "migrations:created", "injected_errors"]
    return names


def _middleware(sim: Sim) -> Any:
    shared = sim.shared
    kinds = {(m, p): kind for m, p, _, kind in ROUTES}
    status_index = {s: shared.index[f"status:{s}"] for s in HTTP_STATUSES}
    other_status = shared.index["status:other"]
    worker = str(sim.worker)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        path = resource.canonical if resource is not None else None
        key = (request.method, path)
        kind = kinds.get(key, "other")  # type: ignore[arg-type]
        if kind in ("ws", "control"):
            return await _guarded(handler, request)
        if kind == "api":
            reason = sim.check_token(request)
            if reason is not None:
                response: web.StreamResponse = error_response(
                    401, reason, headers={"WWW-Authenticate": "Bearer"}
                )
            else:
                response = await sim.injected() or await _guarded(handler, request)
        else:
            response = await _guarded(handler, request)
        response.headers["X-Sim-Worker"] = worker
        name = f"{request.method} {path}" if kind != "other" else "other"
        shared.inc(shared.index[f"req:{name}"])
        if response.status >= 400:
            shared.inc(shared.index[f"err:{name}"])
        shared.inc(status_index.get(response.status, other_status))
        return response

    return middleware


async def _guarded(handler: Handler, request: web.Request) -> web.StreamResponse:
    """Run a handler; ApiError and aiohttp's HTTP errors become JSON, anything else a JSON 500."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.reason, exc.field)
    except web.HTTPException as exc:
        if exc.status == 404:
            return error_response(404, f"no route for {request.method} {request.path}")
        if exc.status == 405:
            return error_response(
                405,
                f"method {request.method} not allowed on {request.path}",
                headers={"Allow": exc.headers.get("Allow", "")},
            )
        return error_response(exc.status, exc.reason)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}")


def make_app(sim: Sim) -> web.Application:
    app = web.Application(middlewares=[_middleware(sim)], client_max_size=1024**2)
    app[SIM] = sim
    store = migrations.MigrationStore(sim)
    app[migrations.STORE] = store
    app[sockets.HUB] = sockets.Hub(sim)
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)

    async def on_shutdown(app: web.Application) -> None:
        await sim.close()

    app.on_shutdown.append(on_shutdown)
    return app


async def _load_sim(pool: Any, shared: Shared, worker: int, token: str | None) -> Sim:
    try:
        zones = [r["name"] for r in await pool.fetch("SELECT name FROM zones ORDER BY id")]
        hosts = await pool.fetch("SELECT id, name, zone, state FROM hosts ORDER BY id")
        vm_max = await pool.fetchval("SELECT coalesce(max(id), 0) FROM vms")
    except Exception as exc:
        raise SystemExit(
            f"novacron_sim: the database has no NovaCron schema ({exc}); start with "
            "--init-schema or run novacron_sim.pg.init_schema(dsn) first"
        ) from None
    if not zones:
        raise SystemExit("novacron_sim: table zones is empty; start with --init-schema")
    by_zone: dict[str, list[int]] = {z: [] for z in zones}
    for h in hosts:
        if h["state"] == "online":
            by_zone.setdefault(h["zone"], []).append(h["id"])
    return Sim(
        pool=pool,
        shared=shared,
        worker=worker,
        token=token,
        zones=tuple(zones),
        hosts=by_zone,
        host_names=[h["name"] for h in hosts],
        vm_max=vm_max,
    )


async def serve(
    sock: socket.socket,
    *,
    database_url: str,
    shared: Shared,
    worker: int,
    token: str | None,
    pool_size: int,
    ready: Callable[[], None],
) -> None:
    """Serve on `sock` until SIGTERM/SIGINT, then close connections and the pool."""
    import asyncpg

    shared.bind_worker(worker)
    try:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=pool_size)
    except (OSError, asyncpg.PostgresError) as exc:
        raise SystemExit(f"novacron_sim: cannot connect to {database_url}: {exc}") from None
    try:
        sim = await _load_sim(pool, shared, worker, token)
        runner = web.AppRunner(
            make_app(sim), handle_signals=False, access_log=None, shutdown_timeout=2.0
        )
        await runner.setup()
        site = web.SockSite(runner, sock, backlog=4096)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        ready()
        await stop.wait()
        await runner.cleanup()
    finally:
        await pool.close()
