"""Mann-Whitney U: did the current runs' values come from a higher distribution?

With repeats on both sides (``wsload run --repeat N``), each figure has N per-run values per
side. A rank test over them asks whether one side tends to be higher without assuming any
shape (Chromium's Pinpoint does the same). The test is one-sided in the direction given, and
small samples get the exact p-value:

- no ties: the exact null distribution of U, counted by the classic recursion
  ``c(m, n, u) = c(m - 1, n, u - n) + c(m, n - 1, u)`` (Mann & Whitney 1947);
- ties (HDR percentiles of similar runs often read the same bucket): every split of the
  pooled values into the two group sizes is enumerated, which is the exact permutation
  distribution given those ties, while there are at most ``_MAX_SPLITS`` splits;
- otherwise the normal approximation with the tie correction and a continuity correction.

Pure standard library (``statistics.NormalDist``): no SciPy dependency for one test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import combinations
from statistics import NormalDist

__all__ = ["RankTest", "mann_whitney", "min_p_value"]

_MAX_SPLITS = 20_000
"""Exact enumeration of ties up to C(m + n, m) splits (C(16, 8) = 12,870 is 8 repeats a side)."""

_MAX_EXACT = 60
"""Exact no-tie distribution up to this many values per side."""


@dataclass(frozen=True, slots=True)
class RankTest:
    """One Mann-Whitney U test of ``current > baseline``.

    Attributes:
        u: U of the current side: pairs where current beats baseline (ties count 1/2).
        p_value: one-sided probability of a U at least this large if nothing changed.
        method: ``exact``, ``exact (ties)`` or ``normal``.
    """

    u: float
    p_value: float
    method: str


def mann_whitney(baseline: Sequence[float], current: Sequence[float]) -> RankTest:
    """One-sided test that ``current`` tends to be greater than ``baseline``.

    For "smaller", swap the arguments (U of one side is ``m n`` minus the other's).

    Raises:
        ValueError: either side is empty.
    """
    m, n = len(baseline), len(current)
    if not m or not n:
        raise ValueError("Mann-Whitney U needs values on both sides")
    u = _u(baseline, current)
    pooled = [*baseline, *current]
    tied = len(set(pooled)) < len(pooled)
    if not tied and max(m, n) <= _MAX_EXACT:
        frequencies = _u_frequencies(m, n)
        at_least = sum(frequencies[math.ceil(u) :])
        return RankTest(u, at_least / math.comb(m + n, m), "exact")
    if tied and math.comb(m + n, m) <= _MAX_SPLITS:
        return RankTest(u, _split_p_value(pooled, n, u), "exact (ties)")
    return RankTest(u, _normal_p_value(pooled, m, n, u), "normal")


def min_p_value(m: int, n: int) -> float:
    """The smallest p-value ``m`` vs ``n`` runs can give (complete separation):
    ``1 / C(m + n, m)``; 3 vs 3 runs can never go below 0.05, 5 vs 5 reach 0.004."""
    return 1 / math.comb(m + n, m) if m and n else 1.0


def _u(baseline: Sequence[float], current: Sequence[float]) -> float:
    return sum(1.0 if c > b else 0.5 if c == b else 0.0 for c in current for b in baseline)


@cache
def _u_frequencies(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m + n, m) orderings give each U = 0 .. m n (no ties)."""
    if m == 0 or n == 0:
        return (1,)
    # U counts pairs (baseline, current) with current above: the largest value is either a
    # current one (adds m to U, leaving m vs n - 1) or a baseline one (adds 0: m - 1 vs n)
    with_current = _u_frequencies(m, n - 1)
    with_baseline = _u_frequencies(m - 1, n)
    out = [0] * (m * n + 1)
    for u, count in enumerate(with_current):
        out[u + m] += count
    for u, count in enumerate(with_baseline):
        out[u] += count
    return tuple(out)


def _split_p_value(pooled: Sequence[float], n: int, observed: float) -> float:
    """P(U >= observed) over every way to pick which ``n`` pooled values are "current"."""
    total = at_least = 0
    indices = range(len(pooled))
    for chosen in combinations(indices, n):
        picked = set(chosen)
        current = [pooled[i] for i in chosen]
        base = [pooled[i] for i in indices if i not in picked]
        total += 1
        if _u(base, current) >= observed - 1e-9:
            at_least += 1
    return at_least / total


def _normal_p_value(pooled: Sequence[float], m: int, n: int, u: float) -> float:
    """Normal approximation with the tie-corrected variance and a continuity correction."""
    size = m + n
    ties: dict[float, int] = {}
    for value in pooled:
        ties[value] = ties.get(value, 0) + 1
    tie_term = sum(t**3 - t for t in ties.values()) / (size * (size - 1))
    variance = m * n / 12 * ((size + 1) - tie_term)
    if variance <= 0:
        return 1.0  # every value equal: nothing to tell apart
    z = (u - m * n / 2 - 0.5) / math.sqrt(variance)
    return 1 - NormalDist().cdf(z)
