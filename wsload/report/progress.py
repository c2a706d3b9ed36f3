"""The one-line progress report a run prints when not on a terminal (a CI log, ``| cat``).

The live panel redraws in place, which a log cannot show; a log gets one line every
``--progress-interval`` instead, with what the panel says: time, achieved vs intended rate, in
flight, outcomes so far, the close handshake's p99 and the generator's loop lag over the lines'
interval, and whether the generator is saturated. A pure function of the runner's figures and
the interval snapshots since the previous line (merged over workers already, when split).
"""

from __future__ import annotations

from collections.abc import Sequence

from hdrh.histogram import HdrHistogram

from wsload.metrics.histograms import histogram_stats, new_histogram
from wsload.metrics.snapshots import IntervalSnapshot
from wsload.report._format import format_us
from wsload.report.terminal import LiveProgress, intended_load
from wsload.scenario.model import Scenario

__all__ = ["progress_line"]

_SHOWN_OUTCOMES = 3


def progress_line(
    progress: LiveProgress,
    scenario: Scenario,
    now: float,
    window: Sequence[IntervalSnapshot],
) -> str:
    """``wsload: 10 s of 30 s · 199.8/s (intended 200/s) · in flight 3 · ...``.

    Args:
        progress: the runner's live figures (summed over workers for a split run).
        now: run-clock time.
        window: the interval snapshots since the previous line: the rate, the close p99 and
            the loop lag are over them (``-`` when none arrived, e.g. a cluster's tasks send
            their figures only at their end).
    """
    elapsed = max(0.0, now - progress.started) if progress.started else 0.0
    planned = progress.planned_s
    parts = [f"{elapsed:.0f} s" + (f" of {planned:.0f} s" if planned is not None else "")]
    span = sum(s.length for s in window)
    achieved = f"{sum(s.attempted for s in window) / span:,.1f}/s" if span > 0 else "-"
    parts.append(f"{achieved} (intended {intended_load(scenario, elapsed)})")
    parts.append(f"in flight {progress.in_flight:,}")
    outcomes = progress.outcomes
    ranked = sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{name} {n:,}" for name, n in ranked[:_SHOWN_OUTCOMES])
    more = len(ranked) - _SHOWN_OUTCOMES
    done = f"{sum(outcomes.values()):,} done" + (f": {shown}" if shown else "")
    parts.append(done + (f" +{more} more" if more > 0 else ""))
    last = f"last {span:.0f} s"
    close = _merged([s.histograms.get("close_handshake") for s in window])
    parts.append(f"close p99 {_p99(close)} ({last})")
    parts.append(f"loop lag p99 {_p99(_merged([s.loop_lag for s in window]))}")
    if any(s.saturated for s in window):
        parts.append("SATURATED (the generator, not the target, may be the limit)")
    return "wsload: " + " · ".join(parts)


def _merged(histograms: Sequence[HdrHistogram | None]) -> HdrHistogram | None:
    present = [h for h in histograms if h is not None]
    if not present:
        return None
    total = new_histogram()
    for histogram in present:
        total.add(histogram)
    return total


def _p99(histogram: HdrHistogram | None) -> str:
    if histogram is None:
        return "-"
    return format_us(histogram_stats(histogram).get("p99"))
