"""Distribution-free confidence intervals for percentiles and shares.

A percentile measured from n samples is itself a random quantity: run the same load twice and
p99 moves. How far it can move without anything having changed follows from order statistics
alone, whatever the latency distribution: the number of samples below the true quantile q_p is
Binomial(n, p), so the k-th smallest sample lies below q_p with a probability the binomial
gives. The interval ``[X_(l), X_(u)]`` whose ranks cut ``(1 - confidence) / 2`` from each tail
of that binomial covers q_p with at least ``confidence`` probability (exact, not asymptotic).

Ranks become values through the HDR histogram's counts: rank ``l`` reads the *lowest* value of
its bucket and rank ``u`` the *highest*, so the histogram's 0.1 % resolution widens the
interval instead of shrinking it. When a rank falls outside ``1..n`` there is no interval and
the figure cannot be judged: at 99 % p50 needs 8 samples, p90 51, p99 528 and p999 5,296.

Shares (the clean share, an error outcome's share) get Wilson score intervals, which stay
sensible at 0 % and 100 %, where an error share usually sits.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from itertools import accumulate
from statistics import NormalDist

from hdrh.histogram import HdrHistogram

from wsload.metrics.histograms import PERCENTILES, bucket_bounds, counts

__all__ = [
    "DEFAULT_CONFIDENCE",
    "percentile_intervals",
    "percentile_ranks",
    "share_interval",
    "t_value",
    "z_value",
]

DEFAULT_CONFIDENCE = 0.99
"""Two-sided confidence of every interval (``--confidence``). Two 99 % intervals of the same
distribution fail to overlap far less often than 1 % of the time (about 0.03 % for equal
widths), so a compare of ~40 figures stays quiet on identical runs."""

_EXACT_SD = 200.0
"""Binomial standard deviations up to this are summed exactly; beyond it (n p (1-p) > 40,000)
the normal approximation is accurate to well under one rank."""


def z_value(confidence: float) -> float:
    """The two-sided standard normal quantile: 2.576 for 99 %, 1.960 for 95 %."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def t_value(tail: float, df: int) -> float:
    """The Student t quantile cutting ``tail`` from the upper end, with ``df`` degrees of freedom.

    Exact for 1 and 2 degrees of freedom (closed forms); from 3 on, the Cornish-Fisher
    expansion around the normal quantile (Abramowitz & Stegun 26.7.5), within 0.5 % of the
    tables at the tails used here (``t_value(0.01, 4)``: 3.742 vs 3.747). Enough for a
    prediction band, and no SciPy.
    """
    p = 1.0 - tail
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p)))
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def percentile_ranks(n: int, p: float, confidence: float) -> tuple[int, int] | None:
    """1-based ranks ``(l, u)`` with ``P(X_(l) <= q_p <= X_(u)) >= confidence``.

    None when one of them falls outside ``1..n``: with so few samples the percentile cannot be
    bounded on that side (e.g. p99 of 100 samples: the maximum itself is too often below it).
    """
    if n <= 0:
        return None
    tail = (1 - confidence) / 2
    sd = math.sqrt(n * p * (1 - p))
    if sd > _EXACT_SD:
        z = z_value(confidence)
        lo, hi = math.floor(n * p - z * sd), math.ceil(n * p + z * sd) + 1
    else:
        lo, hi = _exact_ranks(n, p, tail, sd)
    if lo < 1 or hi > n:
        return None
    return lo, hi


def _exact_ranks(n: int, p: float, tail: float, sd: float) -> tuple[int, int]:
    """Ranks from the exact binomial CDF, summed over the window that holds its mass.

    ``B`` = samples below q_p ~ Binomial(n, p). ``l`` is the largest rank with
    ``P(B <= l - 1) <= tail``; ``u`` the smallest with ``P(B >= u) <= tail``. Outside
    ``np ± 40 sd`` the probability is below 1e-300: the window loses nothing a float holds.
    """
    if p <= 0.0 or p >= 1.0:
        raise ValueError(f"percentile fraction must be in (0, 1), got {p}")
    start = max(0, math.floor(n * p - 40 * sd - 10))
    stop = min(n, math.ceil(n * p + 40 * sd + 10))
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    lo = 0  # B <= -1 has probability 0: rank 0 ("below every sample") always qualifies
    hi = n + 1
    cdf = 0.0
    for k in range(start, stop + 1):
        cdf += math.exp(
            log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q
        )
        if cdf <= tail:
            lo = k + 1  # P(B <= k) <= tail: rank k + 1 is a valid lower rank
        if hi == n + 1 and 1 - cdf <= tail:
            hi = k + 1  # P(B >= k + 1) <= tail
    return lo, hi


def percentile_intervals(
    histogram: HdrHistogram, overflow: int = 0, confidence: float = DEFAULT_CONFIDENCE
) -> dict[str, tuple[float, float] | None]:
    """``p50``, ``p90``, ``p99``, ``p999`` → ``(low, high)`` µs at ``confidence``, or None.

    Overflow samples (over 1 h) rank above every recorded value; a bound among them is
    ``inf`` (at least 1 h).
    """
    lowest, highest = bucket_bounds()
    cumulative = list(accumulate(counts(histogram)))
    recorded = cumulative[-1] if cumulative else 0
    total = recorded + overflow
    out: dict[str, tuple[float, float] | None] = {}
    for name, (num, den) in PERCENTILES.items():
        ranks = percentile_ranks(total, num / den, confidence)
        if ranks is None or recorded == 0:
            out[name] = None
            continue
        lo_rank, hi_rank = ranks
        low = math.inf if lo_rank > recorded else lowest[bisect_left(cumulative, lo_rank)]
        high = math.inf if hi_rank > recorded else highest[bisect_left(cumulative, hi_rank)]
        out[name] = (float(low), float(high))
    return out


def share_interval(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of the share ``k / n`` (0..1); ``(0, 1)`` when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    z = z_value(confidence)
    share = k / n
    denominator = 1 + z * z / n
    centre = (share + z * z / (2 * n)) / denominator
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
