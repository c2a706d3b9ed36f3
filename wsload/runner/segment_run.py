"""One segment's load, wherever it runs (this process, a worker process, a Dask worker), and
its result in a form that travels between processes and merges exactly.

``SegmentResult`` is what ``RunResult`` needs from the load side. Its wire form (JSON-able:
the collector's ``to_wire`` plus the encoded lag histograms) is what a worker process pipes to
the parent, what a Dask task returns and what ``totals.json`` stores for ``wsload merge``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import trio
from hdrh.histogram import HdrHistogram

from wsload.core.record import ConnectionRecord
from wsload.engine.driver import DriverContext
from wsload.metrics.collector import Collector, IntervalSnapshot
from wsload.metrics.histograms import decode, encode
from wsload.metrics.result import StormRelease, new_lag_histogram
from wsload.plan.segment import WHOLE, Segment, format_segments, parse_segments
from wsload.runner.loop import LoadRun, Progress, run_load
from wsload.scenario.model import Scenario

__all__ = ["MAX_START_WAIT", "SegmentResult", "run_segment", "wait_for_start"]

MAX_START_WAIT = 24 * 3600.0
"""A ``--start-at`` further ahead than this is refused (a typo, not a plan)."""

_FORMAT = "wsload.segment"
_VERSION = 1


@dataclass(slots=True)
class SegmentResult:
    """The load side of a run: one segment, or several merged.

    Attributes:
        segment: ``generator.segment``: ``"i/N"`` (one share), ``"0,2/4"`` (some shares
            merged) or None (the whole scenario).
        processes: generator processes that contributed.
        release_s: a storm's release instants, seconds after the (common) schedule start:
            ``first`` and ``last`` over the segments held (equal for one segment) and the
            shared ``planned`` one of a segmented storm; None when no storm was released.
    """

    segment: str | None
    collector: Collector
    loop_lag: HdrHistogram
    start_lag: HdrHistogram
    saturated: bool
    cpu_seconds: float
    duration_s: float
    interrupted: bool
    intervals: int
    intended: int
    processes: int = 1
    cpu_wait_seconds: float | None = None
    release_s: StormRelease | None = None
    ended_by: str | None = None

    @classmethod
    def from_load(cls, collector: Collector, run: LoadRun, segment: Segment) -> SegmentResult:
        return cls(
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
        )

    def indices(self) -> tuple[frozenset[int], int]:
        """The segment indices this result holds, and the N they are shares of."""
        return parse_segments(self.segment) if self.segment else (frozenset({0}), 1)

    def to_wire(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "segment": self.segment,
            "collector": self.collector.to_wire(),
            "loop_lag": encode(self.loop_lag),
            "start_lag": encode(self.start_lag),
            "saturated": self.saturated,
            "cpu_seconds": self.cpu_seconds,
            "duration_s": self.duration_s,
            "interrupted": self.interrupted,
            "intervals": self.intervals,
            "intended": self.intended,
            "processes": self.processes,
            "cpu_wait_seconds": self.cpu_wait_seconds,
            "ended_by": self.ended_by,
            **_release_wire(self.release_s),
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> SegmentResult:
        """Raises: ValueError naming what is wrong."""
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ValueError(f"not a {_FORMAT} object")
        if data.get("version") != _VERSION:
            raise ValueError(f"{_FORMAT} version {data.get('version')!r} is not {_VERSION}")
        try:
            segment = data["segment"]
            if segment is not None:
                parse_segments(str(segment))
            return cls(
                segment=None if segment is None else str(segment),
                collector=Collector.from_wire(data["collector"]),
                loop_lag=decode(data["loop_lag"]),
                start_lag=decode(data["start_lag"]),
                saturated=bool(data["saturated"]),
                cpu_seconds=float(data["cpu_seconds"]),
                duration_s=float(data["duration_s"]),
                interrupted=bool(data["interrupted"]),
                intervals=int(data["intervals"]),
                intended=int(data["intended"]),
                processes=int(data["processes"]),
                cpu_wait_seconds=_optional_float(data.get("cpu_wait_seconds")),
                release_s=_release_from_wire(data),
                ended_by=None if data.get("ended_by") is None else str(data["ended_by"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{_FORMAT}: missing or malformed field {exc}") from None

    @classmethod
    def merge(cls, parts: Iterable[SegmentResult], labels: Iterable[str] = ()) -> SegmentResult:
        """Histograms added exactly, counters summed, saturated if any part was.

        Raises:
            ValueError: no parts, parts of different splits, or overlapping parts.
        """
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to merge")
        collector = Collector(labels, start=0.0)
        loop_lag, start_lag = new_lag_histogram(), new_lag_histogram()
        seen: set[int] = set()
        count = parts[0].indices()[1]
        for part in parts:
            indices, n = part.indices()
            name = part.segment or "the whole scenario"
            if n != count:
                raise ValueError(f"{name} is not a share of {count} segments")
            if seen & indices:
                raise ValueError(f"{name} overlaps another part")
            seen |= indices
            collector.merge(part.collector)
            loop_lag.add(part.loop_lag)
            start_lag.add(part.start_lag)
        return cls(
            segment=format_segments(seen, count),
            collector=collector,
            loop_lag=loop_lag,
            start_lag=start_lag,
            saturated=any(p.saturated for p in parts),
            cpu_seconds=sum(p.cpu_seconds for p in parts),
            duration_s=max(p.duration_s for p in parts),
            interrupted=any(p.interrupted for p in parts),
            intervals=max(p.intervals for p in parts),
            intended=sum(p.intended for p in parts),
            processes=sum(p.processes for p in parts),
            cpu_wait_seconds=_sum_known(p.cpu_wait_seconds for p in parts),
            release_s=_release_span(p.release_s for p in parts),
            ended_by=next((p.ended_by for p in parts if p.ended_by), None),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _release(collector: Collector, started: float) -> StormRelease | None:
    if collector.release_at is None:
        return None
    released = collector.release_at - started
    planned = None if collector.lag_from is None else collector.lag_from - started
    return StormRelease(released, released, planned)


def _release_wire(release: StormRelease | None) -> dict[str, Any]:
    """``release_s: [first, last]`` and ``release_planned_s`` (absent from older wire forms)."""
    if release is None:
        return {"release_s": None, "release_planned_s": None}
    return {"release_s": [release.first, release.last], "release_planned_s": release.planned}


def _release_from_wire(data: Mapping[str, Any]) -> StormRelease | None:
    value = data.get("release_s")
    if value is None:
        return None
    first, last = value
    return StormRelease(float(first), float(last), _optional_float(data.get("release_planned_s")))


def _release_span(releases: Iterable[StormRelease | None]) -> StormRelease | None:
    """The earliest and the latest release of the parts that released a storm; the planned
    instant is the same in every segment (computed from the scenario), the earliest if not."""
    known = [r for r in releases if r is not None]
    if not known:
        return None
    planned = [r.planned for r in known if r.planned is not None]
    return StormRelease(
        min(r.first for r in known), max(r.last for r in known), min(planned, default=None)
    )


def _sum_known(values: Iterable[float | None]) -> float | None:
    """The sum, or None when any part could not measure it (a partial sum would mislead)."""
    total = 0.0
    for value in values:
        if value is None:
            return None
        total += value
    return total


async def wait_for_start(start_at: float | None, stop: trio.Event) -> None:
    """Sleep until wall-clock ``start_at`` (epoch seconds), or ``stop``; bounded.

    The wall clock is read once to turn the agreed instant into a delay; from then on the
    run clock (monotonic) rules, as everywhere else. A start already past begins now.
    """
    if start_at is None:
        return
    delay = start_at - time.time()
    if delay > MAX_START_WAIT:
        raise ValueError(f"start time is {delay:.0f} s away (more than {MAX_START_WAIT:.0f} s)")
    with trio.move_on_after(max(0.0, delay)):
        await stop.wait()


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
) -> SegmentResult:
    """Wait for the common start, run ``segment`` of ``scenario`` against ``url``.

    ``on_record``: each connection's record, as ``run_load`` hands it (--record-connections).
    """
    stop = stop if stop is not None else trio.Event()
    await wait_for_start(start_at, stop)
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
    )
    return SegmentResult.from_load(collector, load_run, segment)
