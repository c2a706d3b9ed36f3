"""``RunResult``: everything one run produced, as plain data for the report functions.

The runner fills it once the load has drained; ``wsload.report`` turns it into summary.json,
the terminal table and the HTML report without touching the run again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hdrh.histogram import HdrHistogram

from wsload.metrics.collector import Collector
from wsload.metrics.histograms import new_histogram
from wsload.scenario.model import Scenario

__all__ = ["RunResult", "StormRelease", "new_lag_histogram"]


def new_lag_histogram() -> HdrHistogram:
    """A histogram for the generator's event-loop lag: µs, same layout as every latency.

    The same layout means a worker's lag histogram adds exactly into the parent's.
    """
    return new_histogram()


@dataclass(frozen=True, slots=True)
class StormRelease:
    """When a storm was released, in seconds after the (common) schedule start.

    Attributes:
        first: the earliest segment's release (the only one for one process).
        last: the latest segment's release (``first`` for one process).
        planned: the segments' shared release instant, which ``close_start_lag`` counts from
            (``wsload.plan.segment.shared_release_offset``); None for an unsegmented storm,
            which counts from its own release.
    """

    first: float
    last: float
    planned: float | None = None


@dataclass(slots=True)
class RunResult:
    """One run's results.

    Attributes:
        scenario: the resolved scenario that ran (seed filled in).
        started_at: wall-clock start, timezone-aware UTC (report headers only).
        duration_s: run-clock seconds from the first intended start to the end of the drain.
        collector: every connection's metrics and counters (all workers merged).
        loop_lag: the generator's event-loop lag histogram (µs, ``new_lag_histogram``).
        saturated: the generator, not the target, was the bottleneck (lag p99 over its limit).
        cpu_seconds: CPU time the generator used (all processes).
        cpu_wait_seconds: time the generator was runnable but waiting for a CPU, taken by
            other processes (all processes; None where the kernel does not report it).
        processes: generator processes that ran the load.
        server: the built-in server's statistics (``as_dict()``), None for external targets.
        interrupted: stopped by SIGINT/SIGTERM before the planned end.
        intervals: interval snapshots taken (lines of time series in histograms.hlog).
        intended: connections the schedule asked for (attempted + dropped), None if unknown.
        start_lag: how late connection tasks started versus their intended start (µs), if the
            runner measured it.
        segment: which shares of a split scenario this result holds: ``"1/4"``, ``"0,2/4"``;
            None for the whole scenario (``wsload.plan.segment``).
        release_s: a storm's release (``SegmentResult.release_s``); None otherwise.
        ended_by: why the load ended before its plan (``[data]`` rows ran out), else None.
    """

    scenario: Scenario
    started_at: datetime
    duration_s: float
    collector: Collector
    loop_lag: HdrHistogram
    saturated: bool = False
    cpu_seconds: float = 0.0
    cpu_wait_seconds: float | None = None
    processes: int = 1
    server: dict[str, Any] | None = None
    interrupted: bool = False
    intervals: int = 0
    intended: int | None = None
    start_lag: HdrHistogram | None = None
    segment: str | None = None
    release_s: StormRelease | None = None
    ended_by: str | None = None
