"""Garbage collection while a load runs: short pauses at any VU count.

CPython's collector stops the event loop for as long as it walks the objects of the
generations it collects. A run's objects are of two kinds: what each iteration allocates and
drops (collected young, cheaply), and the VUs' state (clients, kept connections, their
buffers and tasks), which lives as long as the VU and grows with the VU count: at 10K
WebSocket VUs a collection that walks it stopped the loop ~340 ms, at ~100K over six
processes for seconds. So, during a run:

- what lived before it (modules, fixtures) is frozen (``gc.freeze``): never walked again;
- young collections run every 50,000 allocations (700 by default: total GC time and the
  longest pause about 5x lower at 10K VUs), the middle generation after every second one (10K
  WebSocket VUs, each sleeping 1 s between round trips, keep ~300K objects in flight that
  survive a young collection: with 20 young collections per middle one the longest middle
  pause was 374 ms, with 5 ~155 ms, with 1 ~95 ms, for the same total; smaller young
  thresholds made the young pauses longer, not shorter, for HTTP);
- after a middle or full collection, while the VUs that finished their first iteration (whose
  state is built) have grown by a quarter since the last freeze, the survivors are frozen too:
  the VUs' state leaves the walked generations as it is built, in at most a few dozen freezes
  (a quarter's growth each), so a full collection walks only what changed since.

What is frozen and later becomes garbage in a reference cycle (a VU's connection closed in a
ramp-down) is freed when the run ends (``gc.unfreeze``): bounded by the state of the largest
VU count, not by the run's length: a steady run with the same VUs freezes nothing more.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 1
OLD_THRESHOLD = 100
#: freeze again once the VUs with built state grew by this fraction since the last freeze
FREEZE_GROWTH = 0.25
#: and by at least this many VUs (a small run never needs it)
FREEZE_MIN_VUS = 200


class RunGc:
    """Sets the collector up for one run (`start`) and restores it (`stop`).

    ``warm`` returns how many VUs finished their first iteration so far; ``on_event`` gets
    every ``gc.callbacks`` event (the generator's health times the pauses)."""

    def __init__(self, warm: Callable[[], int],
                 on_event: Callable[[str, dict[str, Any]], None]) -> None:
        self._warm = warm
        self._on_event = on_event
        self._frozen_at = 0
        self.freezes = 0
        self._muted = False
        self._thresholds: tuple[int, int, int] = gc.get_threshold()

    def start(self) -> None:
        gc.collect()
        gc.freeze()
        self._thresholds = gc.get_threshold()
        t0, _, t2 = self._thresholds
        gc.set_threshold(max(t0, YOUNG_THRESHOLD), MIDDLE_THRESHOLD, max(t2, OLD_THRESHOLD))
        gc.callbacks.append(self._event)

    def stop(self) -> None:
        gc.callbacks.remove(self._event)
        gc.set_threshold(*self._thresholds)
        gc.unfreeze()

    def mute(self) -> None:
        """Stop passing events on: the load is over (closing the VUs' connections after it
        collects too, and is no pause of the load's)."""
        self._muted = True

    def _event(self, phase: str, info: dict[str, Any]) -> None:
        if not self._muted:
            self._on_event(phase, info)
        if phase != "stop" or info.get("generation", 0) < 1:
            return
        warm = self._warm()
        if warm - self._frozen_at >= max(FREEZE_MIN_VUS, FREEZE_GROWTH * self._frozen_at):
            # the young generations are empty after a collection: this freezes its survivors
            gc.freeze()
            self._frozen_at = warm
            self.freezes += 1
