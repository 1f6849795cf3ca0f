"""Start the stand-in as a subprocess and talk to its /_sim control endpoints.

Used by the root conftest.py and tests/sim; needs only the standard library in this process.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["StandIn", "may_select", "start_sim"]

_ROOT = Path(__file__).resolve().parent.parent
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class StandIn:
    """A stand-in's URLs and control calls; `stop()` ends it when this process started it."""

    api_url: str
    ws_url: str
    dwcp_ws_url: str
    database_url: str | None = None
    token: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> StandIn:
        """The targets named by API_URL, WS_URL, DWCP_WS_URL, DATABASE_URL, API_TOKEN."""
        env = dict(os.environ if env is None else env)
        api = env["API_URL"].rstrip("/")
        ws = env.get("WS_URL") or ("ws" + api[4:] if api.startswith("http") else api)
        return cls(
            api_url=api,
            ws_url=ws,
            dwcp_ws_url=env.get("DWCP_WS_URL") or ws.rstrip("/") + "/dwcp/v3",
            database_url=env.get("DATABASE_URL"),
            token=env.get("API_TOKEN") or None,
        )

    # control plane (only the stand-in has it)
    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.api_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with _NO_PROXY.open(req, timeout=10) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            if exc.code == 404:
                raise RuntimeError(
                    f"{self.api_url} has no {path}: it is not the novacron_sim stand-in"
                ) from None
            raise RuntimeError(f"{method} {path} -> {exc.code}: {detail}") from None
        return json.loads(raw) if raw else None

    def configure(self, **knobs: float) -> dict[str, Any]:
        """Change knobs at runtime (latency_ms, error_rate, error_status,
        migration_failure_rate, time_scale, push_interval_ms); returns the whole config."""
        result: dict[str, Any] = self._call("POST", "/_sim/config", knobs)
        return result

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_sim/config")
        return result

    def stats(self) -> dict[str, Any]:
        """Request and WebSocket counters summed over the stand-in's worker processes."""
        result: dict[str, Any] = self._call("GET", "/_sim/stats")
        return result

    def reset_stats(self) -> None:
        self._call("DELETE", "/_sim/stats")

    # lifecycle
    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; idempotent and a no-op for targets not started here."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def log_tail(self, chars: int = 3000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def __enter__(self) -> StandIn:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_sim(
    database_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    workers: int = 1,
    token: str | None = None,
    latency_ms: float = 0.0,
    error_rate: float = 0.0,
    time_scale: float = 1.0,
    push_interval_ms: float = 250.0,
    migration_failure_rate: float = 0.0,
    extra_args: tuple[str, ...] = (),
    timeout: float = 30.0,
) -> StandIn:
    """Run `python -m novacron_sim` and return once it printed its URLs (the database must
    already have the schema: see novacron_sim.pg.init_schema). RuntimeError with the server's
    log when it does not start."""
    cmd = [
        sys.executable, "-m", "novacron_sim", "--host", host, "--port", str(port),
        "--database-url", database_url, "--workers", str(workers),
        "--latency-ms", str(latency_ms), "--error-rate", str(error_rate),
        "--time-scale", str(time_scale), "--push-interval-ms", str(push_interval_ms),
        "--migration-failure-rate", str(migration_failure_rate), *extra_args,
    ]  # fmt: skip
    if token:
        cmd += ["--token", token]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
    fd, log_name = tempfile.mkstemp(prefix="novacron-sim-", suffix=".log")
    log = Path(log_name)
    with os.fdopen(fd, "wb") as log_file:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL, env=env,
            cwd=str(_ROOT),
        )  # fmt: skip
    handle = StandIn("", "", "", database_url, token, proc, log)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, remaining))
        chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
        if not chunk:
            why = "exited" if ready or proc.poll() is not None else f"not ready in {timeout:g}s"
            tail = handle.log_tail()
            handle.stop()
            raise RuntimeError(f"novacron_sim {why}: {' '.join(cmd)}\n{tail}")
        buf += chunk
    info = json.loads(buf.split(b"\n", 1)[0])
    handle.api_url, handle.ws_url = info["api_url"], info["ws_url"]
    handle.dwcp_ws_url = info["dwcp_ws_url"]
    return handle


def may_select(
    args: Sequence[str],
    *,
    invocation_dir: Path,
    rootdir: Path,
    markexpr: str = "",
    served: Sequence[str] = ("tests/perf",),
) -> bool:
    """Could a pytest run with these positional `args` collect tests under one of the `served`
    folders (relative to `rootdir`)? True when an arg names such a folder, something inside it
    or a parent of it (no args: the rootdir); False when `markexpr` is exactly "not load"."""
    if markexpr.strip() == "not load":
        return False
    root = Path(rootdir).resolve()
    targets = [root / d for d in served]
    for arg in [a for a in args if not a.startswith("-")] or [str(root)]:
        path = (Path(invocation_dir) / arg.split("::", 1)[0]).resolve()
        for target in targets:
            if path == target or target in path.parents or path in target.parents:
                return True
    return False
