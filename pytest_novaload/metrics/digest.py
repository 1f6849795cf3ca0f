"""A mergeable latency digest: fastdigest's t-digest plus exact count, sum, min and max.

Adds go to a plain list and reach the t-digest in batches of 512 (``batch_update`` is ~66 ns
per value against ~100 ns for single updates). Reads never mutate: they look at a view that
includes the pending batch, so results do not depend on when anyone looked.

Merged digests are kept aside and combined in one ``merge_all`` pass when read: merging N
shards one by one compresses N times and loses p99 accuracy (measured up to 2% at a
distribution's tail knee with 8 shards) where a single pass stays well under 1%.
"""

from __future__ import annotations

import base64
import bisect
import math
from collections.abc import Iterable, Sequence
from typing import Any, Self

from fastdigest import TDigest, merge_all

__all__ = ["FLUSH_EVERY", "MAX_CENTROIDS", "Digest"]

MAX_CENTROIDS = 1000
"""Compression kept by every digest: below ~1000 centroids p99 errors reach 6-11%."""
FLUSH_EVERY = 512
"""Pending adds that trigger one ``batch_update``."""
_MAX_PENDING_MERGES = 32
"""Merged digests kept aside before they are combined (bounds memory for long merge chains)."""

_INF = math.inf


class Digest:
    """Quantiles of a stream of floats in constant memory; exact count, sum, min and max."""

    __slots__ = ("_buf", "_count", "_max", "_max_centroids", "_merged", "_min", "_sum", "_td",
                 "_view_cache", "_view_key", "_win", "_wmark")

    def __init__(self, max_centroids: int = MAX_CENTROIDS) -> None:
        self._max_centroids = max_centroids
        self._td = TDigest(max_centroids)
        self._buf: list[float] = []
        # Exact statistics of everything except the pending batch in _buf.
        self._count = 0
        self._sum = 0.0
        self._min = _INF
        self._max = -_INF
        self._merged: list[TDigest] = []
        self._view_cache: TDigest | None = None
        self._view_key = (-1, -1)
        # Window for roll(): None until the first roll(), so adds cost nothing extra before.
        self._win: Self | None = None
        self._wmark = 0  # _buf[:_wmark] is already in the window

    # -- writing (hot path) -------------------------------------------------------------

    def add(self, x: float) -> None:
        """Record one value."""
        buf = self._buf
        buf.append(x)
        if len(buf) >= 512:  # FLUSH_EVERY, inlined: a global lookup costs ~15 ns per add
            self._flush()

    def add_many(self, xs: Iterable[float]) -> None:
        """Record many values."""
        self._buf.extend(xs)
        if len(self._buf) >= FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        """Move the pending batch into the t-digest (and the window, when one is kept)."""
        buf = self._buf
        if not buf:
            return
        stats = (len(buf), sum(buf), min(buf), max(buf))
        self._ingest(buf, stats)
        win = self._win
        if win is not None:
            if self._wmark:  # part of the batch went to the window at the last roll()
                part = buf[self._wmark:]
                if part:
                    win._ingest(part, (len(part), sum(part), min(part), max(part)))
            else:
                win._ingest(buf, stats)
        self._wmark = 0
        self._buf = []

    def _ingest(self, values: list[float], stats: tuple[int, float, float, float]) -> None:
        """Feed a batch whose (count, sum, min, max) is ``stats`` to the t-digest."""
        self._td.batch_update(values)
        n, total, lo, hi = stats
        self._count += n
        self._sum += total
        if lo < self._min:
            self._min = lo
        if hi > self._max:
            self._max = hi

    def merge(self, other: Digest) -> None:
        """Add every value of ``other`` to this digest (in place; ``other`` is unchanged)."""
        n = other.count
        if n == 0:
            return
        self._merged.append(other._view().copy())
        self._count += n
        self._sum += other.sum
        self._min = min(self._min, other.min)
        self._max = max(self._max, other.max)
        if len(self._merged) >= _MAX_PENDING_MERGES:
            self._td = merge_all([self._td, *self._merged], max_centroids=self._max_centroids)
            self._merged = []
        if self._win is not None:
            self._win.merge(other)

    # -- reading ------------------------------------------------------------------------

    def _view(self) -> TDigest:
        """A t-digest of every value, pending ones included; never mutates the stored one."""
        buf = self._buf
        if not buf and not self._merged:
            return self._td
        key = (self._count, len(buf))
        if self._view_cache is not None and self._view_key == key:
            return self._view_cache
        if self._merged:
            view = merge_all([self._td, *self._merged], max_centroids=self._max_centroids)
        else:
            view = self._td.copy()
        if buf:
            view.batch_update(buf)
        self._view_cache = view
        self._view_key = key
        return view

    @property
    def count(self) -> int:
        """Number of values recorded."""
        return self._count + len(self._buf)

    @property
    def sum(self) -> float:
        """Sum of the values recorded."""
        return self._sum + sum(self._buf) if self._buf else self._sum

    @property
    def min(self) -> float:
        """Smallest value recorded (0.0 when empty)."""
        lo = min(self._min, min(self._buf)) if self._buf else self._min
        return 0.0 if lo == _INF else lo

    @property
    def max(self) -> float:
        """Largest value recorded (0.0 when empty)."""
        hi = max(self._max, max(self._buf)) if self._buf else self._max
        return 0.0 if hi == -_INF else hi

    @property
    def mean(self) -> float:
        """Average of the values recorded (0.0 when empty)."""
        n = self.count
        return self.sum / n if n else 0.0

    def quantile(self, q: float) -> float:
        """The value below which a fraction ``q`` (0..1) of the values lie; 0.0 when empty."""
        return self.quantiles([q])[0]

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        """``quantile`` for several fractions with one look at the digest."""
        for q in qs:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"quantile {q!r}: expected a fraction between 0 and 1")
        if self.count == 0:
            return [0.0 for _ in qs]
        lo, hi = self.min, self.max
        values = self._view().quantile_vec(list(qs))
        # The exact extremes beat the digest's interpolation at q=0 and q=1.
        return [lo if q == 0.0 else hi if q == 1.0 else min(max(v, lo), hi)
                for q, v in zip(qs, values, strict=True)]

    def counts_at_most(self, bounds: Sequence[float]) -> list[int]:
        """How many values are <= each of ``bounds`` (ascending): exact below the minimum and
        from the maximum on, the digest's CDF between, never decreasing (histogram buckets
        for outputs such as OTLP)."""
        n = self.count
        if n == 0:
            return [0 for _ in bounds]
        view = self._view()
        centroids = view.centroids
        if all(w == 1.0 for _, w in centroids):  # every value kept as it is: count exactly
            means = sorted(m for m, _ in centroids)
            return [bisect.bisect_right(means, b) for b in bounds]
        lo, hi = self.min, self.max
        inner = [b for b in bounds if lo <= b < hi]
        cdf = iter(view.cdf_vec(inner) if inner else [])
        out: list[int] = []
        last = 0
        for b in bounds:
            # The minimum is <= b and the maximum is not: at least 1, at most n - 1.
            k = 0 if b < lo else n if b >= hi else min(max(1, round(n * next(cdf))), n - 1)
            last = min(max(last, k), n)
            out.append(last)
        return out

    # -- copies, windows, transport -----------------------------------------------------

    def copy(self) -> Self:
        """An independent snapshot with the same values (windows are not copied)."""
        return self._build(self._max_centroids, self._view().copy(), *self._exact())

    def _exact(self) -> tuple[int, float, float, float]:
        """(count, sum, min, max) with pending values, min/max as +-inf when empty."""
        buf = self._buf
        if not buf:
            return self._count, self._sum, self._min, self._max
        return (self._count + len(buf), self._sum + sum(buf), min(self._min, min(buf)),
                max(self._max, max(buf)))

    @classmethod
    def _build(cls, max_centroids: int, td: TDigest, count: int, total: float, lo: float,
               hi: float) -> Self:
        """A digest holding exactly ``td`` and these exact statistics, nothing pending."""
        new = cls(max_centroids)
        new._td = td
        new._count, new._sum, new._min, new._max = count, total, lo, hi
        return new

    def compact(self, max_centroids: int) -> Self:
        """A copy with at most about ``max_centroids`` centroids, for cheap transport."""
        small = TDigest(max_centroids)
        small.merge_inplace(self._view())
        return self._build(max_centroids, small, *self._exact())

    def roll(self) -> Self:
        """The values added (or merged) since the previous roll(), as a new digest.

        The first call returns everything so far. After it, each flush of 512 adds also feeds
        a window digest: ``add`` itself is unchanged and the cumulative digest is untouched.
        """
        win = self._win
        if win is None:
            out = self.copy()
        else:
            out = win
            pending = self._buf[self._wmark:]
            if pending:
                out.add_many(pending)
        self._win = type(self)(self._max_centroids)
        self._wmark = len(self._buf)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON builtins only; the t-digest travels as base64 of fastdigest's bytes."""
        return {
            "max_centroids": self._max_centroids,
            "count": self.count,
            "sum": self.sum,
            "min": self.min,
            "max": self.max,
            "tdigest": base64.b64encode(self._view().to_bytes()).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Inverse of ``to_dict``."""
        count = int(d["count"])
        return cls._build(int(d["max_centroids"]),
                          TDigest.from_bytes(base64.b64decode(d["tdigest"])), count,
                          float(d["sum"]), float(d["min"]) if count else _INF,
                          float(d["max"]) if count else -_INF)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(count={self.count}, min={self.min:g}, "
                f"p50={self.quantile(0.5):g}, p99={self.quantile(0.99):g}, max={self.max:g})")

