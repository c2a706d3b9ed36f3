"""The generator as a suspect: when a latency rise is its own delay, not the target's.

Every latency wsload measures on a busy machine holds some delay of its own: its event loop
late to run a timer or a write (``generator.loop_lag_us``), late to notice a reply that had
arrived (``generator.notice_lag_us``, kernel arrival → read). On loopback the target shares
the machine, so the same contention slows it too, and the generator's two lags are the
comparison's evidence of how busy the machine was. When the current run's generator was
distinguishably slower than the baseline's, a latency rise that this delay could produce is
``inconclusive``, not ``regressed``; one it could not produce still regresses.

**Distinguishably slower**: for either lag, the current p99 is at least twice the baseline's
and 1 ms more. A quiet run's lag p99 wanders (a single stall moves the loop lag p99 of a
5-second run from 1.3 to 4.6 ms; ci_gate's quiet runs: loop 1.2-4.6 ms, notice 0.26-0.97 ms)
and a CPU hog on every core lifts both (loop 4.4-6.2 ms, notice 3.7-4.8 ms); the loop lag alone
misses a hogged run whose baseline had such a stall, the notice lag (more samples, one per read)
catches it.

**What the delay can explain** (a bound, not a fit): model a measured latency as
``L = T + D_1 + D_2``: the target's time ``T`` (unchanged, under the hypothesis that the target
did not change) plus the scheduling delays of the two processes a measurement crosses on a
loaded machine, the generator and, on loopback, the target, which suffers the same contention
(the generator's lags are the only measure of it; a remote target is thereby given the
benefit of the doubt too). For any figures, ``P(T + D_1 + D_2 > a + 2b) ≤ P(T > a) +
P(D_1 > b) + P(D_2 > b)``, whatever the dependence; with ``a`` and ``b`` at a percentile ``p'``
with ``3·(1 − p') ≤ 1 − p``, the current run's ``p``-th percentile is at most
``T(p') + 2·D_cur(p') ≤ L_base(p') + 2·D_cur(p')`` (the baseline's latency holds ``T`` plus
delays ≥ 0). So a current value above ``L_base(p') + 2·D_cur(p')`` cannot be the machine's
delay; one at or below it could be. ``p'`` is the lowest summary percentile with
``p' ≥ 1 − (1 − p) / 3`` (p50 → p90, p90 → p99, p95 → p99, p99 → p999, p999 → p99.99, then
the maximum) and ``D_cur(p')`` the larger of the current loop and notice lag at ``p'``. A
median that moved by more than twice the delay's p90 is therefore still a regression beside a
slower generator, while a p99 within twice its p999 is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wsload.metrics.histograms import PERCENTILES
from wsload.report._format import format_us

__all__ = ["DELAYS", "LAGS", "SlowerGenerator", "bound_percentile", "generator_slower"]

LAGS: tuple[tuple[str, str], ...] = (("loop", "loop_lag_us"), ("notice", "notice_lag_us"))
"""The generator's delays: name in messages, key under summary.json ``generator``."""

_RATIO = 2.0
_MARGIN_US = 1000.0
DELAYS = 2
"""Scheduling delays a latency may hold on a loaded machine: the generator's and the target's."""


@dataclass(frozen=True, slots=True)
class SlowerGenerator:
    """The current generator was distinguishably slower than the baseline's.

    Attributes:
        slower: each lag that was, as ``(name, baseline p99, current p99)`` (µs).
        current: the current run's statistics of every lag it measured, by name.
    """

    slower: tuple[tuple[str, float, float], ...]
    current: Mapping[str, Mapping[str, Any]]

    def describe(self) -> str:
        """``loop lag p99 8.6 ms vs 1.2 ms, notice lag p99 4.4 ms vs 970 µs``."""
        return ", ".join(
            f"{name} lag p99 {format_us(cur)} vs {format_us(base)}"
            for name, base, cur in self.slower
        )

    def bound(self, stat: str, baseline: Mapping[str, Any]) -> float | None:
        """The largest current value of ``stat`` the generator's delay could produce from
        the baseline's latency statistics (module docstring); None when a figure is missing."""
        upper = bound_percentile(stat)
        base = baseline.get(upper)
        delays = [
            float(lag[upper])
            for lag in self.current.values()
            if int(lag.get("count") or 0) and lag.get(upper) is not None
        ]
        if base is None or not delays:
            return None
        return float(base) + DELAYS * max(delays)


def bound_percentile(stat: str) -> str:
    """The summary statistic ``p'`` that bounds percentile ``stat`` (``p90`` → ``p99``): the
    lowest with ``(DELAYS + 1)·(1 − p') ≤ 1 − p``, else ``max``."""
    num, den = PERCENTILES[stat]
    for key, (k_num, k_den) in sorted(PERCENTILES.items(), key=lambda kv: kv[1][0] / kv[1][1]):
        if (DELAYS + 1) * (k_den - k_num) * den <= (den - num) * k_den:
            return key
    return "max"


def generator_slower(
    baseline: Mapping[str, Any], current: Mapping[str, Any]
) -> SlowerGenerator | None:
    """The current generator when it was distinguishably slower than the baseline's by its
    loop lag or its notice lag (module docstring); None otherwise, or without the figures."""
    b_gen, c_gen = baseline.get("generator") or {}, current.get("generator") or {}
    slower: list[tuple[str, float, float]] = []
    lags: dict[str, Mapping[str, Any]] = {}
    for name, key in LAGS:
        b_lag, c_lag = b_gen.get(key) or {}, c_gen.get(key) or {}
        if int(c_lag.get("count") or 0):
            lags[name] = c_lag
        b_p99, c_p99 = _p99(b_lag), _p99(c_lag)
        if b_p99 is not None and c_p99 is not None and c_p99 >= _threshold(b_p99):
            slower.append((name, b_p99, c_p99))
    return SlowerGenerator(tuple(slower), lags) if slower else None


def _p99(stats: Mapping[str, Any]) -> float | None:
    """A lag's p99, when it measured anything (a loop-clock run's notice lag has no samples)."""
    if not int(stats.get("count") or 0) or stats.get("p99") is None:
        return None
    return float(stats["p99"])


def _threshold(baseline_p99: float) -> float:
    return max(_RATIO * baseline_p99, baseline_p99 + _MARGIN_US)
