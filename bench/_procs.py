"""Process-tree sampling for the benches: RSS, peak RSS, CPU and open descriptors from /proc.

The memory and full-size benches measure a tool as the kernel sees it (every process it
started, summed), not as the tool reports itself. Linux only; a process that exits between
two reads is skipped.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pin(cpu: int | None) -> None:
    if cpu is not None:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, {cpu})


def raise_nofile(want: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to ``want`` (at most the hard limit, which only
    a privileged process may raise); returns the soft limit now in force. Call it in a child
    (preexec_fn) so that the tool under test inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if want > hard != resource.RLIM_INFINITY:
        with contextlib.suppress(ValueError, OSError):   # root with CAP_SYS_RESOURCE only
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return int(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def wait_listening(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:g} s")


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_map() -> dict[int, list[int]]:
    """ppid -> pids, over every process visible in /proc."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(root: int) -> list[int]:
    """``root`` and every descendant of it."""
    kids = children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


@dataclass
class Proc:
    pid: int
    ppid: int
    cmdline: str
    rss_kb: int
    hwm_kb: int
    cpu_s: float
    fds: int


def read_proc(pid: int, fds: bool = True) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace").strip()
        nfds = len(os.listdir(f"/proc/{pid}/fd")) if fds else 0
    except (OSError, ValueError, IndexError):
        return None
    rss = hwm = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return Proc(pid, int(fields[1]), cmdline, rss, hwm,
                (int(fields[11]) + int(fields[12])) / TICK, nfds)


def sockets_of(pid: int) -> int:
    """Open sockets of one process (readlink of every fd: costs ~1 us per descriptor)."""
    n = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
    return n


@dataclass
class Sample:
    t: float
    rss_mb: float          # summed over the group's processes
    fds: int
    cpu_s: float           # user+system seconds so far, summed
    procs: int
    other_rss_mb: float    # the processes the classifier put aside (targets)
    other_cpu_s: float
    mem_available_mb: float


@dataclass
class TreeSampler:
    """Samples a process tree every ``every`` s in a thread. ``is_other(proc)`` puts a process
    (and its descendants) aside, e.g. the stand-in and PostgreSQL that pytest started: they
    are the target, not the generator. ``hwm_mb`` is the peak RSS of the generator: the sum of
    each process's kernel high-water mark (VmHWM), read until it exits."""

    root: int
    every: float = 0.5
    is_other: Callable[[Proc], bool] = lambda p: False
    samples: list[Sample] = field(default_factory=list)
    hwm_kb: dict[int, int] = field(default_factory=dict)
    cmdlines: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0

    def sample(self) -> Sample:
        kids = children_map()
        gen: list[Proc] = []
        other: list[Proc] = []
        todo = [(self.root, False)]
        while todo:
            pid, aside = todo.pop()
            p = read_proc(pid, fds=not aside)
            if p is None:
                continue
            aside = aside or self.is_other(p)
            (other if aside else gen).append(p)
            todo.extend((k, aside) for k in kids.get(pid, ()))
        for p in gen:
            self.hwm_kb[p.pid] = max(self.hwm_kb.get(p.pid, 0), p.hwm_kb)
            self.cmdlines.setdefault(p.pid, p.cmdline[:120])
        s = Sample(time.monotonic() - self._t0, sum(p.rss_kb for p in gen) / 1024,
                   sum(p.fds for p in gen), sum(p.cpu_s for p in gen), len(gen),
                   sum(p.rss_kb for p in other) / 1024, sum(p.cpu_s for p in other),
                   mem_available_mb())
        self.samples.append(s)
        return s

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> TreeSampler:
        self._t0 = time.monotonic()
        self.sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def hwm_mb(self) -> float:
        return sum(self.hwm_kb.values()) / 1024

    @property
    def peak_rss_mb(self) -> float:
        return max((s.rss_mb for s in self.samples), default=0.0)

    @property
    def peak_fds(self) -> int:
        return max((s.fds for s in self.samples), default=0)

    def peak_cpu_share(self) -> float:
        """The largest CPU use between two samples, in cores (1.0 = one core busy)."""
        best = 0.0
        for a, b in zip(self.samples, self.samples[1:], strict=False):
            if b.t > a.t:
                best = max(best, (b.cpu_s - a.cpu_s) / (b.t - a.t))
        return best
