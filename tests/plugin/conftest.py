"""A loopback HTTP target for the plugin's end-to-end tests, with knobs for latency and errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


def ctrl_c_default() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: a process started in
    the background (CI, nohup, a job runner) inherits SIGINT ignored, and Python then never
    raises KeyboardInterrupt; the child gets the default back, as in a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Target:
    """A running target: ``url``, request ``count`` by path, and knobs set per test."""

    url: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    stall_until: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _app(target: Target) -> web.Application:
    mix_n = [0]

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        target.counts[path] = target.counts.get(path, 0) + 1
        if path == "/slow":
            await asyncio.sleep(float(request.query.get("ms", "50")) / 1000)
        elif path == "/mix":
            # Deterministic: 9 of every 10 requests take 5 ms, 1 takes 60 ms.
            mix_n[0] += 1
            await asyncio.sleep(0.060 if mix_n[0] % 10 == 0 else 0.005)
        elif path.startswith("/status/"):
            return web.json_response({"status": int(path.rsplit("/", 1)[1])},
                                     status=int(path.rsplit("/", 1)[1]))
        elif path == "/stall":
            loop = asyncio.get_running_loop()
            if loop.time() < target.stall_until:
                await asyncio.sleep(target.stall_until - loop.time())
        elif path == "/stall/start":
            target.stall_until = asyncio.get_running_loop().time() + float(
                request.query.get("s", "1"))
        body: dict[str, Any] = {"ok": True, "path": path}
        if request.can_read_body:
            body["echo"] = await request.json()
            return web.json_response(body, status=201)
        return web.json_response(body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@contextlib.contextmanager
def serve_app(app: web.Application) -> Iterator[int]:
    """Serve ``app`` on 127.0.0.1 from a thread and event loop of its own; yields the port
    and stops the server on exit."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        state["loop"] = loop
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        state["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        state["stop"] = asyncio.Event()
        ready.set()
        loop.run_until_complete(state["stop"].wait())
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), "test target did not start"
    try:
        yield int(state["port"])
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)


@pytest.fixture
def target() -> Iterator[Target]:
    """The knobbed target (``_app``) on 127.0.0.1; stops at the end of the test."""
    t = Target()
    with serve_app(_app(t)) as port:
        t.url = f"http://127.0.0.1:{port}"
        yield t


@pytest.fixture
def api(target: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    """``target`` as the run's ``API_URL``, with no ``API_TOKEN`` from the environment."""
    monkeypatch.setenv("API_URL", target.url)
    monkeypatch.delenv("API_TOKEN", raising=False)
    return target


def summary(pytester: pytest.Pytester) -> dict[str, Any]:
    """The latest run's summary.json under ``pytester.path / "results"``."""
    runs = sorted((pytester.path / "results").iterdir())
    assert runs, "no run folder written"
    data: dict[str, Any] = json.loads((runs[-1] / "summary.json").read_text())
    return data
