"""One segment's load, wherever it runs (this process, a worker process, a Dask worker).

``run_segment`` returns its ``SegmentResult`` (``wsload.metrics.result``), whose wire form is
what a worker process pipes to the parent, what a Dask task returns and what ``totals.json``
stores for ``wsload merge``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import trio

from wsload.core.record import ConnectionRecord
from wsload.engine.context import DriverContext
from wsload.metrics.collector import Collector
from wsload.metrics.result import ReceiveClocks, SegmentResult, StormRelease
from wsload.metrics.snapshots import IntervalSnapshot
from wsload.plan.segment import WHOLE, Segment
from wsload.runner.load.gate import ReleaseGate
from wsload.runner.load.loop import LoadRun, Progress, run_load
from wsload.scenario.model import Scenario

__all__ = ["MAX_START_WAIT", "run_segment", "segment_result", "wait_for_start"]

MAX_START_WAIT = 24 * 3600.0
"""A ``--start-at`` further ahead than this is refused (a typo, not a plan)."""


def segment_result(collector: Collector, run: LoadRun, segment: Segment) -> SegmentResult:
    """The ``SegmentResult`` of one finished load run."""
    return SegmentResult(
        segment=None if segment.whole else str(segment),
        collector=collector,
        loop_lag=run.lag.loop_lag,
        start_lag=run.lag.start_lag,
        saturated=run.lag.saturated,
        cpu_seconds=run.cpu_seconds,
        duration_s=run.ended - run.started,
        interrupted=run.interrupted,
        intervals=run.intervals,
        intended=run.intended,
        cpu_wait_seconds=run.cpu_wait_seconds,
        release_s=_release(collector, run.started),
        ended_by=run.ended_by,
        notice_lag=run.wire.notice_lag,
        receive_clocks=ReceiveClocks(run.wire.kernel, run.wire.loop, run.wire.coalesced),
        priority_raised=run.priority_raised,
    )


def _release(collector: Collector, started: float) -> StormRelease | None:
    if collector.release_at is None:
        return None
    released = collector.release_at - started
    planned = None if collector.lag_from is None else collector.lag_from - started
    return StormRelease(released, released, planned)


async def wait_for_start(start_at: float | None, stop: trio.Event) -> float | None:
    """Sleep until wall-clock ``start_at`` (epoch seconds), or ``stop``; bounded.

    The wall clock is read once to turn the agreed instant into a delay; from then on the
    run clock (monotonic) rules, as everywhere else. A start already past begins now, with
    the whole schedule (nothing is cut), shifted by as much as it is late.

    Returns:
        The shift: seconds the start was already past (0.0: on time); None without
        ``start_at``.
    """
    if start_at is None:
        return None
    delay = start_at - time.time()
    if delay > MAX_START_WAIT:
        raise ValueError(f"start time is {delay:.0f} s away (more than {MAX_START_WAIT:.0f} s)")
    with trio.move_on_after(max(0.0, delay)):
        await stop.wait()
    return max(0.0, -delay)


async def run_segment(
    scenario: Scenario,
    url: str,
    *,
    segment: Segment = WHOLE,
    start_at: float | None = None,
    progress: Progress | None = None,
    on_interval: Callable[[IntervalSnapshot], None] = lambda _: None,
    stop: trio.Event | None = None,
    hard_stop: trio.Event | None = None,
    on_record: Callable[[ConnectionRecord], None] | None = None,
    release_gate: ReleaseGate | None = None,
) -> SegmentResult:
    """Wait for the common start, run ``segment`` of ``scenario`` against ``url``.

    ``on_record``: each connection's record, as ``run_load`` hands it (--record-connections);
    ``release_gate``: a ``--workers`` storm's release by the parent (``run_load``).
    """
    stop = stop if stop is not None else trio.Event()
    shift = await wait_for_start(start_at, stop)
    collector = Collector(labels=tuple(spec.label for spec in scenario.close))
    ctx = DriverContext.create(
        scenario.target, scenario.session, url, seed=scenario.seed, columns=scenario.columns
    )
    load_run = await run_load(
        scenario,
        ctx,
        collector,
        progress=progress,
        on_interval=on_interval,
        stop=stop,
        hard_stop=hard_stop,
        segment=segment,
        on_record=on_record,
        release_gate=release_gate,
    )
    result = segment_result(collector, load_run, segment)
    result.start_shift_s = shift
    return result
