"""One figure, baseline vs current, judged against the measured noise.

A change counts only when the noise cannot explain it *and* it is large enough to matter.
Which noise depends on what the two sides carry, strongest evidence first:

1. **rank test** — per-run values on both sides (``--repeat``), enough runs for the test to
   reach ``alpha``: one-sided Mann-Whitney U over the runs (``wsload.report.compare.ranktest``);
2. **spread** — per-run values in the baseline only: the current value must lie outside the
   baseline's run-to-run band by more than the floor. The band is the wider of the runs'
   ``[min, max]`` and the prediction interval for one more run, ``mean ± t·s·√(1 + 1/n)``
   (Student t at ``alpha``, one-sided): the range of 5 runs alone leaves out a new run of the
   same target a third of the time (2/(n+1)), and a p99 that wanders by a millisecond from run
   to run then looks like a regression (measured: 1 false alarm in 10 with ``[min, max]``);
3. **interval** — one run a side (or merged runs against one run): the two confidence
   intervals (``wsload.report.compare.confidence``) must be apart; for shares, the interval of the
   *difference* (Newcombe's hybrid score method, from the two Wilson intervals) must exclude
   0, because two Wilson intervals, one of them at 0 %, overlap long after the change is
   clear (0 vs 10 timeouts in 1,000 closes: overlapping intervals, difference interval
   [-1.7, -0.2] pt);
4. **floor** — no interval (a summary.json without its histograms.hlog): the floor alone.

The floor (``max(relative × baseline, absolute)``) then says whether the change matters: on
loopback a p50 moving from 28 to 35 µs is real for the interval and irrelevant for anyone.
Every judgement carries its reason in words, which every output shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from wsload.report.compare.confidence import t_value
from wsload.report.compare.ranktest import mann_whitney, min_p_value

__all__ = [
    "NOISY_RUNS",
    "Evidence",
    "Floor",
    "Judgement",
    "Method",
    "Verdict",
    "judge",
    "spread_band",
    "too_noisy",
]


class Verdict(StrEnum):
    """One row's judgement. Only ``REGRESSED`` (on a judged figure) fails the comparison."""

    WITHIN_NOISE = "within noise"
    IMPROVED = "improved"
    REGRESSED = "regressed"
    INSUFFICIENT = "insufficient samples"
    MISSING = "missing"
    NOISY = "baseline too noisy"  # the baseline's runs disagree too much to judge by them
    INCONCLUSIVE = "inconclusive"  # a change the generator itself could explain


class Method(StrEnum):
    """What the verdict rests on (the ``method`` of ``wsload compare --json`` rows)."""

    RANK_TEST = "rank test"
    SPREAD = "spread"
    INTERVAL = "interval"
    FLOOR = "floor"
    TOLERANCE = "tolerance"  # a search's capacity: a level found, not a sample


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one side knows about a figure.

    Attributes:
        value: the figure of the (merged) result; ``inf`` past the histogram's 1 h top.
        interval: its confidence interval, None when unknown (no histograms).
        runs: per-run values of a ``--repeat`` result (empty for a single run).
    """

    value: float
    interval: tuple[float, float] | None = None
    runs: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Floor:
    """The smallest change that matters: ``max(relative × |baseline|, absolute)``."""

    relative: float
    absolute: float

    def margin(self, baseline: float) -> float:
        """The floor for this baseline value, in the figure's unit."""
        return max(self.relative * abs(baseline), self.absolute)


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict, what it rests on, and why in words."""

    verdict: Verdict
    method: Method
    why: str
    p_value: float | None = None


def judge(
    base: Evidence,
    cur: Evidence,
    floor: Floor,
    *,
    worse_up: bool,
    alpha: float,
    fmt: Callable[[float], str],
    confidence: float,
    difference: bool = False,
) -> Judgement:
    """Judge ``cur`` against ``base``: regressed, improved or within noise.

    Args:
        floor: the smallest change that matters.
        worse_up: True when a higher value is worse (latencies, error shares).
        alpha: the rank test's one-sided significance level.
        fmt: a value of this figure for people (``2.71 ms``, ``81.20 %``).
        confidence: of the intervals, for the words (``99 %``).
        difference: judge the interval of the difference (shares) instead of whether the
            two intervals overlap (percentiles).
    """
    delta = cur.value - base.value
    margin = floor.margin(base.value)
    if math.isinf(base.value) or math.isinf(cur.value):  # past 1 h: only order is known
        why = f"{fmt(base.value)} → {fmt(cur.value)}: past the 1 h range only the order is known"
        if base.value == cur.value:
            return Judgement(Verdict.WITHIN_NOISE, Method.FLOOR, why)
        return _moved(cur.value > base.value, worse_up, Method.FLOOR, why)
    runs_b, runs_c = len(base.runs), len(cur.runs)
    noisy = too_noisy(base.runs, margin, alpha) if runs_b >= 2 else None
    if runs_b >= 2 and runs_c >= 2 and min_p_value(runs_b, runs_c) <= alpha:
        signal = _rank_test(base.runs, cur.runs, alpha)
    elif noisy is not None:  # the runs cannot say: the pooled samples' intervals judge
        return _noisy(base, cur, floor, noisy, worse_up, fmt, alpha, confidence, difference)
    elif runs_b >= 2:
        return _spread(base.runs, cur.value, margin, worse_up, fmt, alpha)
    elif base.interval is not None and cur.interval is not None:
        signal = _intervals(base, cur, f"{100 * confidence:g} %", fmt, difference=difference)
    else:
        signal = _Signal(Method.FLOOR, "no interval (no histograms)", True, delta > 0)
    if not signal.changed:
        return Judgement(Verdict.WITHIN_NOISE, signal.method, signal.words, signal.p_value)
    change, floor_words = _signed(delta, fmt), f"the floor {fmt(margin)}"
    if abs(delta) <= margin:
        why = f"{signal.words}, but {change} is within {floor_words}"
        return Judgement(Verdict.WITHIN_NOISE, signal.method, why, signal.p_value)
    why = f"{signal.words}; {change} beyond {floor_words}"
    return _moved(signal.up, worse_up, signal.method, why, signal.p_value)


def _noisy(
    base: Evidence,
    cur: Evidence,
    floor: Floor,
    noisy: str,
    worse_up: bool,
    fmt: Callable[[float], str],
    alpha: float,
    confidence: float,
    difference: bool,
) -> Judgement:
    """A baseline too noisy to judge by its runs: the pooled samples (the merged result's
    intervals) still judge a regression; anything else reads ``baseline too noisy`` with
    the fix."""
    low, high = spread_band(base.runs, alpha)
    fix = (
        f"baseline too noisy: {noisy} ([{fmt(low)}, {fmt(high)}] over {len(base.runs)} runs); "
        f"record it with --repeat {max(NOISY_RUNS, len(base.runs) + 2)} or more on a quiet machine"
    )
    pooled = judge(
        Evidence(base.value, base.interval),
        Evidence(cur.value, cur.interval),
        floor,
        worse_up=worse_up,
        alpha=alpha,
        fmt=fmt,
        confidence=confidence,
        difference=difference,
    )
    if pooled.verdict is Verdict.REGRESSED and pooled.method is Method.INTERVAL:
        return Judgement(Verdict.REGRESSED, pooled.method, f"{pooled.why} ({fix})")
    return Judgement(Verdict.NOISY, Method.SPREAD, f"{fix}; pooled samples: {pooled.why}")


@dataclass(frozen=True, slots=True)
class _Signal:
    """What the noise test says: whether the figure changed, which way, in words."""

    method: Method
    words: str
    changed: bool
    up: bool
    p_value: float | None = None


def _rank_test(base: Sequence[float], cur: Sequence[float], alpha: float) -> _Signal:
    """Mann-Whitney U both ways; the smaller p-value says which way, if any."""
    higher, lower = mann_whitney(base, cur), mann_whitney(cur, base)
    test = higher if higher.p_value <= lower.p_value else lower
    changed = test.p_value <= alpha
    words = (
        f"Mann-Whitney U over {len(base)} vs {len(cur)} runs: p = {test.p_value:.3g} "
        f"{'<=' if changed else '>'} {alpha:g}"
    )
    return _Signal(Method.RANK_TEST, words, changed, test is higher, test.p_value)


def _spread(
    runs: Sequence[float],
    value: float,
    margin: float,
    worse_up: bool,
    fmt: Callable[[float], str],
    alpha: float,
) -> Judgement:
    """Outside the baseline runs' band by more than the floor, or within noise."""
    low, high = spread_band(runs, alpha)
    spread = f"the baseline's {len(runs)}-run band [{fmt(low)}, {fmt(high)}]"
    if value > high + margin or value < low - margin:
        why = f"{fmt(value)} is outside {spread} by more than the floor {fmt(margin)}"
        return _moved(value > high, worse_up, Method.SPREAD, why)
    why = f"{fmt(value)} is within {spread} ± the floor {fmt(margin)}"
    return Judgement(Verdict.WITHIN_NOISE, Method.SPREAD, why)


def spread_band(runs: Sequence[float], alpha: float) -> tuple[float, float]:
    """Where one more run of an unchanged target lands: ``[min, max]`` of the runs widened to
    the prediction interval ``mean ± t(alpha, n-1)·s·√(1 + 1/n)`` (at least 2 runs)."""
    n = len(runs)
    mean = sum(runs) / n
    sd = math.sqrt(sum((r - mean) ** 2 for r in runs) / (n - 1))
    half = t_value(alpha, n - 1) * sd * math.sqrt(1 + 1 / n)
    # latencies and shares are never negative: neither is where one more run lands
    return max(0.0, min(min(runs), mean - half)), max(max(runs), mean + half)


NOISY_RUNS = 5
"""Fewer baseline runs than this whose values disagree (by more than the floor) cannot say
where an unchanged target's next run lands: ``baseline too noisy``."""


def too_noisy(runs: Sequence[float], margin: float, alpha: float) -> str | None:
    """Why a baseline's per-run values cannot judge a figure, or None when they can: their
    band is wider than their median, or fewer than ``NOISY_RUNS`` runs disagree."""
    low, high = spread_band(runs, alpha)
    median = sorted(runs)[len(runs) // 2]
    if high - low > median:
        return "its band is wider than its median"
    if len(runs) < NOISY_RUNS and max(runs) - min(runs) > margin:
        return f"its {len(runs)} runs disagree by more than the floor"
    return None


def _intervals(
    base: Evidence, cur: Evidence, level: str, fmt: Callable[[float], str], *, difference: bool
) -> _Signal:
    """Apart or not: the two intervals (percentiles), or the difference's (shares, MOVER)."""
    assert base.interval is not None and cur.interval is not None
    (b_lo, b_hi), (c_lo, c_hi) = base.interval, cur.interval
    if difference:  # the difference's bounds from each side's distances to its own bounds
        delta = cur.value - base.value
        low = delta - math.hypot(cur.value - c_lo, b_hi - base.value)
        high = delta + math.hypot(c_hi - cur.value, base.value - b_lo)
        words = f"{level} interval of the difference [{_signed(low, fmt)}, {_signed(high, fmt)}]"
        changed = low > 0 or high < 0
        return _Signal(
            Method.INTERVAL, words if changed else f"{words}: 0 inside", changed, low > 0
        )
    changed = c_lo > b_hi or c_hi < b_lo
    words = f"{level} intervals {_span(base.interval, fmt)} and {_span(cur.interval, fmt)}"
    return _Signal(
        Method.INTERVAL, f"{words} {'apart' if changed else 'overlap'}", changed, c_lo > b_hi
    )


def _moved(
    up: bool, worse_up: bool, method: Method, why: str, p_value: float | None = None
) -> Judgement:
    verdict = Verdict.REGRESSED if up == worse_up else Verdict.IMPROVED
    return Judgement(verdict, method, why, p_value)


def _signed(delta: float, fmt: Callable[[float], str]) -> str:
    return f"{'+' if delta >= 0 else '-'}{fmt(abs(delta))}"


def _span(interval: Sequence[float], fmt: Callable[[float], str]) -> str:
    return f"[{fmt(interval[0])}, {fmt(interval[1])}]"
