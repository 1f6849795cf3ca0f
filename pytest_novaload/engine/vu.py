"""The virtual user handed to a scenario: identity, clients, checks, think time and groups."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pytest_novaload.clients.base import ClientContext
from pytest_novaload.metrics.errors import error_tag
from pytest_novaload.units import parse_duration

if TYPE_CHECKING:
    from pytest_novaload.clients.http import HttpClient
    from pytest_novaload.clients.postgres import DbClient
    from pytest_novaload.clients.websocket import WsClient
    from pytest_novaload.engine.runtime import ExecutionState


class VU:
    """One virtual user. ``id`` is unique across every xdist shard of the run (1-based)."""

    __slots__ = ("_db", "_groups", "_http", "_rt", "_ws", "base_tags", "id", "iteration",
                 "scenario")

    def __init__(self, rt: ExecutionState, vu_id: int) -> None:
        self._rt = rt
        self.id = vu_id
        self.iteration = 0          # iterations this VU has started before the current one
        self.scenario = "default"
        self._http: HttpClient | None = None
        self._ws: WsClient | None = None
        self._db: DbClient | None = None
        self._groups: list[str] = []
        self.base_tags: tuple[tuple[str, str], ...] = (("scenario", "default"),)

    def __repr__(self) -> str:
        return f"<VU id={self.id} iteration={self.iteration} scenario={self.scenario!r}>"

    def _ctx(self) -> ClientContext:
        return ClientContext(store=self._rt.store, vu_id=self.id, env=self._rt.env,
                             options=self._rt.client_options,
                             on_error=self._rt.errors.record, base_tags=self._base_tags,
                             allowlist=self._rt.allowlist)

    def _base_tags(self) -> tuple[tuple[str, str], ...]:
        return self.base_tags

    def _retag(self) -> None:
        """k6's tags of every sample: the scenario, and the group path inside ``vu.group``."""
        scenario = ("scenario", self.scenario)
        self.base_tags = (("group", "::".join(self._groups)), scenario) if self._groups \
            else (scenario,)

    def enter_scenario(self, name: str) -> None:
        """The next iteration runs scenario ``name``: its samples are tagged with it."""
        if name != self.scenario:
            self.scenario = name
            self._retag()

    @property
    def http(self) -> HttpClient:
        """The VU's HTTP client (a pool of keep-alive connections per host, like k6)."""
        if self._http is None:
            from pytest_novaload.clients.http import HttpClient
            self._http = HttpClient(self._ctx())
        return self._http

    @property
    def ws(self) -> WsClient:
        """``async with vu.ws("/ws") as conn:`` opens a WebSocket (see clients.websocket)."""
        if self._ws is None:
            from pytest_novaload.clients.websocket import WsClient
            self._ws = WsClient(self._ctx())
        return self._ws

    @property
    def db(self) -> DbClient:
        """PostgreSQL through the generator's shared asyncpg pool (``DATABASE_URL``)."""
        if self._db is None:
            from pytest_novaload.clients.postgres import DbClient
            self._db = DbClient(self._ctx(), self._rt.db_pool())
        return self._db

    def check(self, value: Any, checks: Mapping[str, Callable[[Any], Any] | bool]) -> bool:
        """Record each named check as a pass or fail in ``checks{check:name}``; True if all pass.

        A predicate that raises counts as a failed check; the run goes on.
        """
        ok_all = True
        rt = self._rt
        for name, pred in checks.items():
            cause = ""
            try:
                ok = bool(pred(value)) if callable(pred) else bool(pred)
            except Exception as exc:
                ok, cause = False, f": the predicate raised {error_tag(exc)}"
            rt.check_sink(name, self.base_tags).add(ok)
            if not ok:  # the failed sample's cause, listed under errors as the others are
                rt.errors.record("checks", f"check failed: {name}",
                                 f"check '{name}' failed in scenario {self.scenario}{cause}")
            ok_all = ok_all and ok
        return ok_all

    async def sleep(self, seconds: float | str) -> None:
        """Think time. Accepts seconds or a duration string such as "500ms"."""
        delay = seconds if isinstance(seconds, int | float) else parse_duration(seconds)
        await asyncio.sleep(delay)

    @contextmanager
    def group(self, name: str) -> Iterator[None]:
        """Time a block into ``group_duration{group:name}`` (nested groups join with "::")."""
        self._groups.append(name)
        self._retag()
        tags = self.base_tags
        start = time.perf_counter()
        try:
            yield
        finally:
            self._groups.pop()
            self._retag()
            self._rt.store.trend("group_duration", tags).add(
                (time.perf_counter() - start) * 1000.0)

    async def aclose(self) -> None:
        """Close this VU's connections (called by the runner when the VU stops)."""
        for client in (self._http, self._ws, self._db):
            if client is not None:
                with contextlib.suppress(Exception):  # closing never hides the results
                    await client.aclose()
        self._http = self._ws = self._db = None
