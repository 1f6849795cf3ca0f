"""`python -m novacron_sim`: bind, fork the workers, print the URLs as one JSON line when ready.

With --workers N > 1 the parent binds the port with SO_REUSEPORT (choosing it when --port is 0)
and keeps that socket unlistened; each forked worker binds and listens its own socket on the same
port, so the kernel spreads connections over the workers. Loopback hosts only.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ipaddress
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main"]

READY_TIMEOUT_S = 60.0


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (e.g. a killed pytest)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def _raise_nofile() -> None:
    """Raise the soft open-file limit to the hard one: every held WebSocket is a descriptor,
    and a distribution's soft default (often 1024) would refuse connections long before the
    hard limit does (the plan's sizing counts on the hard limit)."""
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _loopback(host: str) -> tuple[socket.AddressFamily, str]:
    if host == "localhost":
        return socket.AF_INET, "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    if addr is None or not addr.is_loopback:
        raise SystemExit(
            f"novacron_sim: --host {host!r} is not a loopback address; the stand-in only "
            "listens on 127.0.0.0/8, ::1 or localhost"
        )
    return (socket.AF_INET6 if addr.version == 6 else socket.AF_INET), str(addr)


def _bind(family: socket.AddressFamily, host: str, port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m novacron_sim", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="0 chooses a free port (default)")
    ap.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="PostgreSQL DSN (default $DATABASE_URL; neither: start a throwaway "
        "cluster with the schema)",
    )
    ap.add_argument(
        "--init-schema",
        action="store_true",
        help="create the schema and seed data first (skipped when it exists)",
    )
    ap.add_argument("--vms", type=int, default=1000, help="VMs to seed (with --init-schema)")
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port via SO_REUSEPORT (default 1)",
    )
    ap.add_argument("--pool-size", type=int, default=20, help="asyncpg pool size per worker")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="added to REST and queries")
    ap.add_argument("--error-rate", type=float, default=0.0, help="fraction answered 500")
    ap.add_argument("--migration-failure-rate", type=float, default=0.0)
    ap.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="migration duration multiplier (1: about 2 s per migration)",
    )
    ap.add_argument(
        "--push-interval-ms", type=float, default=250.0, help="period of /ws channel events"
    )
    ap.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN'")
    ap.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    args = ap.parse_args(argv)
    if args.workers < 1 or args.pool_size < 1:
        ap.error("--workers and --pool-size must be at least 1")
    return args


def _run_worker(
    index: int,
    sock: socket.socket,
    args: argparse.Namespace,
    shared: Any,
    ready: Callable[[], None],
) -> None:
    import asyncio

    from novacron_sim.app import serve

    factory: Any = None
    if args.loop != "asyncio":
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            if args.loop == "uvloop":
                raise SystemExit(
                    "novacron_sim: --loop uvloop but uvloop is not installed"
                ) from None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(
            serve(
                sock,
                database_url=args.database_url,
                shared=shared,
                worker=index,
                token=args.token,
                pool_size=args.pool_size,
                ready=ready,
            )
        )


def _announce(
    family: socket.AddressFamily,
    host: str,
    port: int,
    args: argparse.Namespace,
) -> None:
    from novacron_sim.core import dumps

    netloc = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    line = {
        "api_url": f"http://{netloc}",
        "ws_url": f"ws://{netloc}",
        "dwcp_ws_url": f"ws://{netloc}/dwcp/v3",
        "database_url": args.database_url,
        "pid": os.getpid(),
        "workers": args.workers,
    }
    sys.stdout.write(dumps(line).decode() + "\n")
    sys.stdout.flush()


def _supervise(pids: list[int], ready_fd: int, announce: Callable[[], None]) -> int:
    """Wait for every worker's ready byte, announce, then wait; stop all on a signal or when
    any worker exits."""
    stopping = False

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    deadline = time.monotonic() + READY_TIMEOUT_S
    got = 0
    while got < len(pids) and not stopping:
        r, _, _ = select.select([ready_fd], [], [], 0.2)
        if r:
            chunk = os.read(ready_fd, 64)
            if not chunk:
                break  # every worker closed the pipe: at least one died
            got += len(chunk)
        if time.monotonic() > deadline:
            break
    if got >= len(pids) and not stopping:
        announce()
    else:
        forward(signal.SIGTERM, None)
    code = 0 if got >= len(pids) else 1
    alive = set(pids)
    while alive:
        try:
            pid, status = os.wait()
        except InterruptedError:
            continue
        except ChildProcessError:
            break
        alive.discard(pid)
        if not stopping:
            print(f"novacron_sim: worker {pid} exited ({status}); stopping", file=sys.stderr)
            code = 1
            forward(signal.SIGTERM, None)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    family, host = _loopback(args.host)
    _die_with_parent()
    _raise_nofile()
    cluster = None
    if not args.database_url:
        from novacron_sim.pg import PostgresNotFound, start_postgres

        try:
            cluster = start_postgres()
        except PostgresNotFound as exc:
            raise SystemExit(f"novacron_sim: no --database-url and {exc}") from None
        args.database_url = cluster.dsn
        args.init_schema = True
        print(f"novacron_sim: started a throwaway PostgreSQL at {cluster.dsn}", file=sys.stderr)
    try:
        if args.init_schema:
            from novacron_sim.pg import init_schema_sync

            init_schema_sync(args.database_url, vms=args.vms)
        return _serve_all(args, family, host)
    finally:
        if cluster is not None:
            cluster.stop()


def _serve_all(args: argparse.Namespace, family: socket.AddressFamily, host: str) -> int:
    from novacron_sim.app import counter_names
    from novacron_sim.shared import Shared, validate_knobs

    shared = Shared(args.workers, counter_names())
    knobs, problems = validate_knobs(
        {
            "latency_ms": args.latency_ms,
            "error_rate": args.error_rate,
            "migration_failure_rate": args.migration_failure_rate,
            "time_scale": args.time_scale,
            "push_interval_ms": args.push_interval_ms,
        }
    )
    if problems:
        raise SystemExit("novacron_sim: " + "; ".join(r for _, r in problems))
    shared.set_knobs(knobs)
    multi = args.workers > 1
    try:
        parent_sock = _bind(family, host, args.port, reuse_port=multi)
    except OSError as exc:
        raise SystemExit(f"novacron_sim: cannot bind {host}:{args.port}: {exc}") from None
    port = parent_sock.getsockname()[1]

    def announce() -> None:
        _announce(family, host, port, args)

    if not multi:
        _run_worker(0, parent_sock, args, shared, announce)
        return 0
    read_fd, write_fd = os.pipe()
    pids: list[int] = []
    for index in range(args.workers):
        pid = os.fork()
        if pid == 0:  # worker
            code = 1
            try:
                os.close(read_fd)
                parent_sock.close()
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent forwards SIGTERM
                _die_with_parent()
                sock = _bind(family, host, port, reuse_port=True)

                def ready() -> None:
                    os.write(write_fd, b".")

                _run_worker(index, sock, args, shared, ready)
                code = 0
            except SystemExit as exc:
                print(exc, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(write_fd)
    try:
        return _supervise(pids, read_fd, announce)
    finally:
        parent_sock.close()
