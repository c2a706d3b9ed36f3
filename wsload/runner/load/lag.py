"""The generator watching itself: event-loop lag and schedule lateness.

If the load generator's own loop is late, every latency it reports is inflated by that lateness
and the intended load was not applied — the *generator*, not the target, was the bottleneck.
A run is flagged ``saturated`` when either lag's p99 exceeds ``SATURATION_US`` *and* at least
``MIN_STALLS`` samples did: in a one-second run the p99 of ~100 loop ticks is set by two ticks, so
one GC pause or GIL hand-off would otherwise brand a healthy run.
"""

from __future__ import annotations

from pathlib import Path

import trio
from hdrh.histogram import HdrHistogram

from wsload.metrics.histograms import (
    HIGHEST_US,
    last_value_not_above,
    percentile_above,
    record,
)
from wsload.metrics.result import new_lag_histogram

__all__ = ["MIN_STALLS", "SATURATION_US", "LagMonitor", "cpu_wait_seconds"]

SATURATION_US = 20_000
"""p99 loop lag or start lateness above this (20 ms) marks the run saturated."""

MIN_STALLS = 5
"""How many samples over ``SATURATION_US`` a lag needs before its p99 can mark the run."""

_TICK = 0.01
_LINE = last_value_not_above(SATURATION_US)
"""A recorded lag above this reads above ``SATURATION_US`` in the histogram's percentiles."""


class LagMonitor:
    """Sleeps ``_TICK`` repeatedly and records how late each wake-up was (µs).

    Also keeps ``start_lag``: how late connection tasks began versus their intended start,
    recorded by the runner through ``record_start``. The loop lag of the current interval is
    kept apart as well (``take_interval``), for the interval snapshots and the live
    ``/metrics`` endpoint.
    """

    def __init__(self) -> None:
        self.loop_lag = new_lag_histogram()
        self._interval_lag = new_lag_histogram()
        self.start_lag = new_lag_histogram()
        self.max_start_lag_us = 0  # exact; the histogram keeps 3 significant digits
        self.loop_stalls = 0  # ticks later than SATURATION_US
        self.start_stalls = 0  # starts later than SATURATION_US
        self._loop_above = 0  # recorded ticks above _LINE (see saturated)
        self._start_above = 0

    def record_start(self, late_s: float) -> None:
        """Record one connection start ``late_s`` seconds after its intended time.

        On-time starts are recorded too (as 0): the percentiles are over *all* starts, so a
        few late ones among many punctual ones do not read as a saturated generator.
        """
        us = min(max(0, int(late_s * 1e6)), HIGHEST_US)
        record(self.start_lag, us)
        if us > SATURATION_US:
            self.start_stalls += 1
        if us > _LINE:
            self._start_above += 1
        self.max_start_lag_us = max(self.max_start_lag_us, us)

    async def run(self) -> None:
        """Measure until cancelled."""
        while True:
            intended = trio.current_time() + _TICK
            await trio.sleep_until(intended)
            late_us = int((trio.current_time() - intended) * 1e6)
            us = max(1, min(late_us, HIGHEST_US))
            record(self.loop_lag, us)
            record(self._interval_lag, us)
            if late_us > SATURATION_US:
                self.loop_stalls += 1
            if us > _LINE:
                self._loop_above += 1

    def take_interval(self) -> HdrHistogram:
        """The loop lag recorded since the previous call (the caller owns it)."""
        taken, self._interval_lag = self._interval_lag, new_lag_histogram()
        return taken

    @property
    def saturated(self) -> bool:
        """Either lag's p99 above ``SATURATION_US`` (with ``MIN_STALLS``), from counts kept as
        the samples come: asked once a second, a pass over the histograms' buckets (two of
        them, 23,552 buckets each: ≈ 1.2 ms of CPU, many times that on a starved core) made
        the tick after it late by as much, one tick a second of a hundred: the p99 it judges
        (tests/core/test_lag_saturated.py: the same answer as the percentile)."""
        loop = self.loop_stalls >= MIN_STALLS and percentile_above(
            self.loop_lag.total_count, self._loop_above, 99
        )
        start = self.start_stalls >= MIN_STALLS and percentile_above(
            self.start_lag.total_count, self._start_above, 99
        )
        return loop or start


_SCHEDSTAT = Path("/proc/self/schedstat")


def cpu_wait_seconds(path: Path = _SCHEDSTAT) -> float | None:
    """Seconds this process has spent runnable but waiting for a CPU (Linux ``schedstat``
    ``run_delay`` of the thread running the loop), or None where the kernel does not say.

    A lagging loop is either wsload's own work (more workers help) or other processes taking
    the CPU (a quieter machine helps); the difference of two readings tells which.
    """
    try:
        return int(path.read_text(encoding="ascii").split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None
