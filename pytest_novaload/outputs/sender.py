"""Off the hot path: a bounded queue drained by one daemon thread, failures reported once.

Outputs put work here from the event loop (``put`` never blocks: when the queue is full the
item is dropped and counted). The thread drains everything queued into one batch and hands it
to the output's handler. A handler that raises costs that batch only: the first failure is
reported once through ``warn`` (saying what is dropped and that the load goes on), later ones
are only counted, and ``close()`` returns the totals for the end-of-run report. Nothing here
can slow the load, fail it, or change its verdict.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from pytest_novaload.redact import display_target

if TYPE_CHECKING:
    from pytest_novaload.metrics import MetricStore

__all__ = ["Background", "OutputReport", "WindowItem", "WindowStream"]

T = TypeVar("T")
_log = logging.getLogger("pytest_novaload.outputs")


@dataclass
class OutputReport:
    """What one output did: items handed over, sent, dropped, failed batches, first error."""

    output: str
    queued: int = 0
    sent: int = 0
    dropped: int = 0
    failed_batches: int = 0
    first_error: str | None = None
    unit: str = "items"
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.dropped == 0 and self.failed_batches == 0

    def line(self) -> str:
        """One line for the terminal, e.g. ``prometheus-rw: 120 windows sent, 0 dropped``."""
        text = f"{self.output}: {self.sent} {self.unit} sent, {self.dropped} dropped"
        if self.failed_batches:
            text += f" ({self.failed_batches} failed sends; first: {self.first_error})"
        return text


def _default_warn(message: str) -> None:
    _log.warning(message)


class Background(Generic[T]):
    """One output's queue and thread. ``handle(batch)`` runs in the thread only."""

    def __init__(self, output: str, handle: Callable[[Sequence[T]], None], *,
                 max_items: int = 1000, weight: Callable[[T], int] | None = None,
                 unit: str = "items", warn: Callable[[str], None] | None = None) -> None:
        if max_items < 1:
            raise ValueError(f"max_items={max_items!r}: expected a positive queue size")
        self.report = OutputReport(output, unit=unit)
        self._handle = handle
        self._weight = weight or (lambda _item: 1)
        self._warn = warn or _default_warn
        self._queue: queue.Queue[T] = queue.Queue(max_items)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._warned_full = False
        self._warned_failed = False
        self._thread = threading.Thread(target=self._loop, name=f"novaload-out-{output}",
                                        daemon=True)
        self._thread.start()

    def put(self, item: T) -> bool:
        """Queue ``item`` without blocking; False (and counted as dropped) when full/closed."""
        n = self._weight(item)
        if self._stop.is_set():
            with self._lock:
                self.report.dropped += n
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.report.dropped += n
                first = not self._warned_full
                self._warned_full = True
            if first:
                self._say(f"{self.report.output}: the sender is behind (queue of "
                          f"{self._queue.maxsize} full); dropping {self.report.unit} until it "
                          "catches up. The load is not slowed; the count is in the end report.")
            return False
        with self._lock:
            self.report.queued += n
        return True

    def _say(self, message: str) -> None:
        try:
            self._warn(message)
        except Exception:  # a broken warn callback must not break the load either
            _log.warning(message)

    def _loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=0.05)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            batch = [first]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._run(batch)

    def _run(self, batch: list[T]) -> None:
        n = sum(self._weight(item) for item in batch)
        try:
            self._handle(batch)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"[:300]
            with self._lock:
                self.report.failed_batches += 1
                self.report.dropped += n
                if self.report.first_error is None:
                    self.report.first_error = message
                first = not self._warned_failed
                self._warned_failed = True
            if first:
                self._say(f"{self.report.output}: sending failed ({message}); dropped "
                          f"{n} {self.report.unit}. The load goes on unaffected; later "
                          "failures are only counted and summed up at the end.")
        else:
            with self._lock:
                self.report.sent += n

    def close(self, timeout: float = 10.0) -> OutputReport:
        """Send what is queued (within ``timeout`` seconds), stop the thread, give the totals."""
        self._stop.set()
        deadline = time.monotonic() + max(timeout, 0.0)
        self._thread.join(max(deadline - time.monotonic(), 0.0))
        if self._thread.is_alive():
            left = 0
            while True:
                try:
                    left += self._weight(self._queue.get_nowait())
                except queue.Empty:
                    break
            with self._lock:
                self.report.dropped += left
                self.report.notes.append(f"gave up after {timeout:g} s with a send in flight; "
                                         f"{left} queued {self.report.unit} dropped")
        return self.report


WindowItem = tuple[str, str, float, "MetricStore | None"]
"""What a streaming output queues: ("window" | "end", test_id, unix time, the window)."""


class WindowStream:
    """What the streaming outputs (Prometheus remote write, OTLP) share: each test's
    per-second windows queued for their sender thread, ``window()`` never blocking. A subclass
    sets ``kind`` and ``url``, implements ``_send(batch)`` and calls ``_start_stream``."""

    kind = ""
    url = ""
    _bg: Background[WindowItem]

    def _start_stream(self, max_queue: int, warn: Callable[[str], None] | None) -> None:
        self._bg = Background(
            f"{self.kind} ({display_target(self.url)})", self._send, max_items=max_queue,
            weight=lambda item: 1 if item[0] == "window" else 0, unit="windows", warn=warn)

    def _send(self, batch: Sequence[WindowItem]) -> None:
        raise NotImplementedError

    def window(self, test_id: str, t: float, window: MetricStore) -> bool:
        """Queue the window that closed at unix time ``t``; False if it had to be dropped."""
        return self._bg.put(("window", test_id, t, window))

    def end_test(self, test_id: str) -> None:
        """No more windows for ``test_id``: the sender ends its series and forgets it."""
        self._bg.put(("end", test_id, time.time(), None))

    def close(self, timeout: float = 10.0) -> OutputReport:
        """Send what is queued (at most ``timeout`` seconds), stop, and return the report."""
        return self._bg.close(timeout)
