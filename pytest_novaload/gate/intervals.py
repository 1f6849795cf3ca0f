"""95% confidence intervals for a load test's statistics, honest about correlated samples.

The requests of one second share the server's state (its queue, its caches, a GC pause), so
consecutive samples are not independent draws: an interval computed as if they were (the
binomial order-statistic interval, or a bootstrap over single requests) is too narrow, and a
gate built on it fails pull requests on noise. This module works on the per-interval digests
the runner already cuts (one ``Trend``/``Counter``/``Rate`` per second of the run, in time
order) and uses **batch means**: contiguous intervals are grouped into batches long enough to
be nearly independent of each other, and the spread between batches measures the noise.

Method (the same ratio-estimator machinery for every statistic):

- each interval ``w`` contributes a numerator ``y_w`` and a denominator ``x_w``: for a
  percentile p(N) the number of its samples at or below the whole-run p(N) and its sample
  count; for a rate metric (error rate) its passes and its samples; for throughput its count
  and its length in seconds; for ``avg`` its sum and its count;
- the whole-run ratio ``R = sum(y) / sum(x)``; residuals ``e_w = y_w - R * x_w``;
- block length ``L`` from the data: the integrated autocorrelation time ``tau`` of the
  residuals (Geyer's initial positive sequence estimator), ``L = 1 + round(3 * (tau - 1))``
  intervals per batch (1 when intervals are uncorrelated, ~3 tau when they are not), capped
  so that at least ``MIN_BATCHES`` batches remain; for a percentile, batches are also made
  long enough to expect ``MIN_TAIL`` samples beyond it (p(99) at 100 req/s: 10 s), as far as
  the run allows;
- ``se(R)^2 = sum_b ((y_b - R x_b) / mean(x))^2 / (B (B - 1))`` over the ``B`` batches (the
  cluster-sampling variance of a ratio), never below the independent-samples value (the
  binomial ``q (1 - q) / n`` for fractions), and the half-width is Student's ``t(B - 1)``
  quantile times ``se`` (few batches: a wider interval, not a false one);
- a percentile's interval inverts that of the fraction below it through the whole-run digest:
  ``[quantile(q - h), quantile(q + h)]`` (the distribution-free order-statistic interval with
  the correlation-aware variance; Bahadur: a sample quantile moves with the empirical CDF at
  the true quantile, a mean of indicators, so batch means of the indicators estimate its
  variance without estimating a density); an error rate gets a Wilson score interval on the
  effective sample size ``n / deff`` (sound at 0 errors); throughput and ``avg`` a t interval.

Why it is sound, and what it assumes: batch means of a stationary, weakly dependent series are
asymptotically independent and normal once batches are long against the correlation time, which
is what ``L`` is chosen for. It assumes the judged span is stationary: a ramp makes the batches
differ by design, which inflates the spread, so the interval is then conservative (wider),
never optimistic; judge a stage (``{stage:peak}``) for a tight interval. It cannot see
run-to-run variation that is constant within a run (another machine, a noisy neighbour for the
whole run): the minimum absolute change of a regression rule covers that. With fewer than
``MIN_BATCHES`` non-empty intervals the interval is unknown (``lo``/``hi`` None) and a
comparison that needs it is inconclusive. The runner's windows are compacted digests: their
CDF at the whole-run quantile is accurate to the digest's error, far below the noise measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from pytest_novaload.metrics import Counter, Rate, Trend, parse_percentile

__all__ = [
    "CONFIDENCE",
    "MIN_BATCHES",
    "MIN_TAIL",
    "Interval",
    "avg_interval",
    "block_length",
    "ci95_fields",
    "fraction_interval",
    "percentile_interval",
    "stat_interval",
    "t_quantile",
    "throughput_interval",
]

CONFIDENCE = 0.95
MIN_BATCHES = 5
"""Fewer batches than this and the interval is unknown (t(3) is already 3.18)."""
MIN_TAIL = 10.0
"""Expected samples beyond a percentile per batch (when the run allows): with fewer, the
batches' tail counts are too skewed for a t interval. Measured on 200 synthetic 60 s runs at
100 req/s: p99 coverage 0.90 -> 0.945 with independent seconds, 0.82 -> 0.925 with
AR(0.5) seconds."""


@dataclass(frozen=True)
class Interval:
    """A confidence interval and what it was derived from (so it can be re-derived later)."""

    estimate: float
    lo: float | None
    hi: float | None
    n: int = 0
    """Samples behind the estimate (requests; seconds for throughput)."""
    windows: int = 0
    """Per-interval digests used."""
    block: int = 0
    """Intervals per batch."""
    batches: int = 0
    se: float = 0.0
    """Standard error on the batched scale: the fraction for percentiles and rates, the value
    itself for throughput and avg."""
    deff: float = 1.0
    """Design effect: the batch variance over the independent-samples variance (>= 1 when the
    floor applies)."""
    method: str = "batch-means"
    reason: str = ""
    """Why the interval is unknown, or that the block length was capped."""

    @property
    def known(self) -> bool:
        return self.lo is not None and self.hi is not None

    def to_list(self) -> list[float] | None:
        """``[lo, hi]`` for summary.json, None when unknown."""
        if self.lo is None or self.hi is None:
            return None
        return [_round(self.lo), _round(self.hi)]

    def basis(self) -> dict[str, Any]:
        """What a later comparison needs to judge the noise: n, windows, block, batches, se."""
        out: dict[str, Any] = {"n": self.n, "windows": self.windows, "block": self.block,
                               "batches": self.batches, "se": _round(self.se),
                               "deff": _round(self.deff), "method": self.method}
        if self.reason:
            out["reason"] = self.reason
        return out


def _round(x: float) -> float:
    return float(f"{x:.6g}") if math.isfinite(x) else x


def unknown(estimate: float, reason: str, *, n: int = 0, windows: int = 0) -> Interval:
    """An interval that could not be derived (too few intervals, no samples...)."""
    return Interval(estimate, None, None, n=n, windows=windows, method="unknown", reason=reason)


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile (Cornish-Fisher expansion; exact for df 1 and 2, < 0.2% off from 4)."""
    if not 0.0 < p < 1.0 or df < 1:
        raise ValueError(f"t_quantile({p!r}, {df!r}): expected 0 < p < 1 and df >= 1")
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = NormalDist().inv_cdf(p)
    v = float(df)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
            + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4))


def _autocorr_time(e: Sequence[float]) -> float:
    """Integrated autocorrelation time (Geyer's initial positive sequence); 1 when white."""
    w = len(e)
    if w < 4:
        return 1.0
    m = math.fsum(e) / w
    d = [x - m for x in e]
    c0 = math.fsum(x * x for x in d) / w
    if c0 <= 0.0:
        return 1.0

    def rho(k: int) -> float:
        return math.fsum(d[i] * d[i + k] for i in range(w - k)) / (w * c0)

    tau = -1.0
    k = 0
    while 2 * k + 1 <= w // 2:
        pair = rho(2 * k) + rho(2 * k + 1)
        if pair <= 0.0:
            break
        tau += 2.0 * pair
        k += 1
    return max(tau, 1.0)


def block_length(residuals: Sequence[float], *others: Sequence[float]) -> tuple[int, bool]:
    """(intervals per batch, capped?) for a time-ordered residual series; ``others`` are
    series of the same intervals whose correlation time also counts (the largest wins)."""
    w = len(residuals)
    tau = max(_autocorr_time(s) for s in (residuals, *others))
    block = 1 + round(3.0 * (tau - 1.0))
    cap = max(w // MIN_BATCHES, 1)
    return (cap, True) if block > cap else (block, False)


@dataclass(frozen=True)
class _Ratio:
    estimate: float
    se: float
    n_windows: int
    block: int
    batches: int
    capped: bool


def _ratio(ys: Sequence[float], xs: Sequence[float],
           proxy: Sequence[float] = (), min_block_x: float = 0.0) -> _Ratio | None:
    """Batch-means standard error of sum(ys)/sum(xs); None with too few intervals.

    ``min_block_x``: the least total ``x`` a batch should hold (the tail-count rule)."""
    w = len(xs)
    total_x = math.fsum(xs)
    if w < MIN_BATCHES or total_x <= 0.0:
        return None
    r = math.fsum(ys) / total_x
    res = [y - r * x for y, x in zip(ys, xs, strict=True)]
    block, capped = block_length(res, *([proxy] if proxy else []))
    if min_block_x > 0.0 and block * total_x / w < min_block_x:
        need = math.ceil(min_block_x * w / total_x)
        cap = max(w // MIN_BATCHES, 1)
        block, capped = (cap, True) if need > cap else (need, capped)
    batches = w // block
    by: list[float] = []
    bx: list[float] = []
    for b in range(batches):
        end = w if b == batches - 1 else (b + 1) * block  # the remainder joins the last batch
        by.append(math.fsum(ys[b * block:end]))
        bx.append(math.fsum(xs[b * block:end]))
    xbar = total_x / batches
    var = math.fsum(((y - r * x) / xbar) ** 2 for y, x in zip(by, bx, strict=True))
    var /= batches * (batches - 1)
    return _Ratio(r, math.sqrt(max(var, 0.0)), w, block, batches, capped)


def _capped_note(ratio: _Ratio) -> str:
    return (f"block length capped at {ratio.block} intervals to keep {MIN_BATCHES} batches: "
            "the run is short against its correlation time" if ratio.capped else "")


def _tcrit(batches: int, confidence: float) -> float:
    return t_quantile(0.5 + confidence / 2.0, max(batches - 1, 1))


def _too_few(estimate: float, n: int, windows: int) -> Interval:
    return unknown(estimate, f"{windows} non-empty intervals: at least {MIN_BATCHES} are needed "
                   "for a noise estimate (run longer)", n=n, windows=windows)


def _cdf(trend: Trend, x: float) -> float:
    """Fraction of ``trend``'s values at or below ``x``, using the exact min and max."""
    if trend.count == 0 or x < trend.min:
        return 0.0
    if x >= trend.max:
        return 1.0
    view = trend._view()  # the digest's own CDF; Digest has no public one yet
    return min(max(float(view.cdf(x)), 0.0), 1.0)


def percentile_interval(windows: Sequence[Trend], whole: Trend, n: float,
                        confidence: float = CONFIDENCE) -> Interval:
    """Interval for p(n) of ``whole`` from its per-interval digests ``windows`` (time order)."""
    q = n / 100.0
    if not 0.0 < q <= 1.0:
        raise ValueError(f"percentile {n!r}: expected 0 < N <= 100")
    total = whole.count
    estimate = whole.quantile(q)
    if total == 0:
        return unknown(0.0, "no samples")
    used = [w for w in windows if w.count > 0]
    # The windows' mean latency is a smoother view of the server's state than the indicator
    # counts (a handful per window in the tail): its correlation time guards the block length.
    ratio = _ratio([w.count * _cdf(w, estimate) for w in used], [float(w.count) for w in used],
                   [w.mean for w in used], MIN_TAIL / max(min(q, 1.0 - q), 1e-9))
    if ratio is None:
        return _too_few(estimate, total, len(used))
    se_iid = math.sqrt(q * (1.0 - q) / total)
    se = max(ratio.se, se_iid)
    deff = (ratio.se / se_iid) ** 2 if se_iid > 0 else 1.0
    h = _tcrit(ratio.batches, confidence) * se
    lo, hi = whole.quantiles([max(q - h, 0.0), min(q + h, 1.0)])
    return Interval(estimate, min(lo, estimate), max(hi, estimate), total, ratio.n_windows,
                    ratio.block, ratio.batches, se, deff, reason=_capped_note(ratio))


def fraction_interval(windows: Sequence[Rate], whole: Rate | None = None,
                      confidence: float = CONFIDENCE) -> Interval:
    """Interval for a rate metric's rate (error rate, check pass rate): Wilson on n / deff."""
    if whole is None:
        whole = Rate()
        for w in windows:
            whole.merge(w)
    total = whole.passes + whole.fails
    estimate = whole.rate
    if total == 0:
        return unknown(0.0, "no samples")
    used = [w for w in windows if w.passes + w.fails > 0]
    ratio = _ratio([float(w.passes) for w in used], [float(w.passes + w.fails) for w in used])
    if ratio is None:
        return _too_few(estimate, total, len(used))
    var_iid = estimate * (1.0 - estimate) / total
    deff = max(ratio.se**2 / var_iid, 1.0) if var_iid > 0 else 1.0
    n_eff = total / deff
    z = _tcrit(ratio.batches, confidence)
    centre = (estimate + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
    half = z * math.sqrt(estimate * (1 - estimate) / n_eff + z * z / (4 * n_eff**2))
    half /= 1 + z * z / n_eff
    lo, hi = max(centre - half, 0.0), min(centre + half, 1.0)
    return Interval(estimate, min(lo, estimate), max(hi, estimate), total, ratio.n_windows,
                    ratio.block, ratio.batches, max(ratio.se, math.sqrt(var_iid)), deff,
                    reason=_capped_note(ratio))


def throughput_interval(windows: Sequence[Counter], lengths: Sequence[float] | None = None,
                        *, total: float | None = None, duration: float | None = None,
                        confidence: float = CONFIDENCE) -> Interval:
    """Interval for a counter's rate per second (throughput), empty intervals included.

    ``lengths`` are the intervals' lengths in seconds (default 1 each); ``total``/``duration``
    give the whole-run estimate (default: the intervals' sums).
    """
    lens = list(lengths) if lengths is not None else [1.0] * len(windows)
    if len(lens) != len(windows):
        raise ValueError(f"{len(windows)} windows but {len(lens)} lengths")
    counts = [float(w.total) for w in windows]
    seconds = duration if duration is not None else math.fsum(lens)
    amount = total if total is not None else math.fsum(counts)
    estimate = amount / seconds if seconds > 0 else 0.0
    ratio = _ratio(counts, lens)
    if ratio is None:
        return _too_few(estimate, len(windows), len(windows))
    h = _tcrit(ratio.batches, confidence) * ratio.se
    return Interval(estimate, max(estimate - h, 0.0), estimate + h, len(windows),
                    ratio.n_windows, ratio.block, ratio.batches, ratio.se, 1.0,
                    reason=_capped_note(ratio))


def avg_interval(windows: Sequence[Trend], whole: Trend,
                 confidence: float = CONFIDENCE) -> Interval:
    """Interval for a trend's mean (ratio of sums over counts)."""
    estimate = whole.mean
    if whole.count == 0:
        return unknown(0.0, "no samples")
    used = [w for w in windows if w.count > 0]
    ratio = _ratio([w.sum for w in used], [float(w.count) for w in used])
    if ratio is None:
        return _too_few(estimate, whole.count, len(used))
    h = _tcrit(ratio.batches, confidence) * ratio.se
    return Interval(estimate, estimate - h, estimate + h, whole.count, ratio.n_windows,
                    ratio.block, ratio.batches, ratio.se, 1.0, reason=_capped_note(ratio))


def stat_interval(stat: str, windows: Sequence[Any], whole: Any, *,
                  duration: float | None = None, lengths: Sequence[float] | None = None,
                  confidence: float = CONFIDENCE) -> Interval:
    """The interval of ``stat`` (``p(N)``, ``med``, ``avg``, ``rate``) of one metric.

    ``windows`` are the metric's per-interval sinks (time order), ``whole`` its whole-run sink;
    ``duration`` the run's seconds and ``lengths`` each window's (throughput). Other
    statistics (min, max, count, gauges) have no sampling interval: ValueError.
    """
    if isinstance(whole, Trend):
        n = 50.0 if stat == "med" else parse_percentile(stat)
        if n is not None:
            return percentile_interval(windows, whole, n, confidence)
        if stat == "avg":
            return avg_interval(windows, whole, confidence)
    elif isinstance(whole, Rate) and stat == "rate":
        return fraction_interval(windows, whole, confidence)
    elif isinstance(whole, Counter) and stat == "rate":
        return throughput_interval(windows, lengths, total=whole.total, duration=duration,
                                   confidence=confidence)
    kind = getattr(whole, "kind", type(whole).__name__)
    raise ValueError(f"no confidence interval for '{stat}' of a {kind} metric: intervals "
                     "exist for p(N), med and avg of trends and for rate of counters and rates")


def ci95_fields(windows: Sequence[Any], whole: Any, stats: Sequence[str], *,
                duration: float | None = None,
                lengths: Sequence[float] | None = None) -> dict[str, Any]:
    """``{"ci95": {stat: [lo, hi] | None}, "ci95_basis": {stat: {...}}}`` for a summary.json
    metric entry; statistics without an interval are left out."""
    ci: dict[str, Any] = {}
    basis: dict[str, Any] = {}
    for stat in stats:
        try:
            iv = stat_interval(stat, windows, whole, duration=duration, lengths=lengths)
        except ValueError:
            continue
        ci[stat] = iv.to_list()
        basis[stat] = iv.basis()
    return {"ci95": ci, "ci95_basis": basis} if ci else {}
