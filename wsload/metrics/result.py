"""``RunResult``: everything one run produced, as plain data for the report functions.

The runner fills it once the load has drained; ``wsload.report`` turns it into summary.json,
the terminal table and the HTML report without touching the run again. Its load side is a
``SegmentResult``: one segment's figures, or several merged exactly. Their wire form (JSON-able:
the collector's ``to_wire`` plus the encoded lag histograms) travels between processes and is
what ``totals.json`` stores for ``wsload merge``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass, field
from datetime import datetime
from typing import Any

from hdrh.histogram import HdrHistogram

from wsload.metrics.collector import Collector
from wsload.metrics.events import EventTally
from wsload.metrics.histograms import decode, encode, new_histogram
from wsload.metrics.reconnects import ReconnectTotals
from wsload.plan.segment import format_segments, parse_segments
from wsload.scenario.model import Scenario

__all__ = [
    "ReceiveClocks",
    "RunResult",
    "SegmentResult",
    "StormRelease",
    "latest_shift",
    "new_lag_histogram",
]

_FORMAT = "wsload.segment"
_VERSION = 1


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
            (``wsload.plan.segment.shared_release_offset``; with ``--workers``, the parent's
            release once every share was open: ``wsload.runner.load.gate``); None for an
            unsegmented storm, which counts from its own release.
    """

    first: float
    last: float
    planned: float | None = None


@dataclass(frozen=True, slots=True)
class ReceiveClocks:
    """Which clock stamped the received frames: connections read with kernel receive stamps
    and connections read on the event loop's clock (``wsload.engine.wireclock``).

    Attributes:
        kernel: connections whose received frames carry the kernel's arrival time.
        loop: connections stamped when the loop read them (TLS, the reference engine, a
            platform or clock without kernel stamps).
        coalesced: kernel-stamped phase ends whose stamp may be later than their arrival
            (``generator.coalesced_stamps``: later bytes or a merged FIN came in the same read).
    """

    kernel: int = 0
    loop: int = 0
    coalesced: int = 0

    @property
    def name(self) -> str | None:
        """``generator.receive_clock``: "kernel", "loop", "mixed", None (nothing was read)."""
        if self.kernel and self.loop:
            return "mixed"
        if self.kernel:
            return "kernel"
        return "loop" if self.loop else None

    def __add__(self, other: ReceiveClocks) -> ReceiveClocks:
        return ReceiveClocks(
            self.kernel + other.kernel, self.loop + other.loop, self.coalesced + other.coalesced
        )


@dataclass(slots=True)
class SegmentResult:
    """The load side of a run: one segment, or several merged (all workers of a run).

    Attributes:
        collector: every connection's metrics and counters.
        duration_s: run-clock seconds from the first intended start to the end of the drain.
        loop_lag: the generator's event-loop lag histogram (µs, ``new_lag_histogram``).
        start_lag: how late connection tasks started versus their intended start (µs), if the
            runner measured it.
        saturated: the generator, not the target, was the bottleneck (lag p99 over its limit).
        cpu_seconds: CPU time the generator used (all processes).
        cpu_wait_seconds: time the generator was runnable but waiting for a CPU, taken by
            other processes (all processes; None where the kernel does not report it).
        processes: generator processes that contributed.
        interrupted: stopped by SIGINT/SIGTERM before the planned end.
        intervals: interval snapshots taken (lines of time series in histograms.hlog).
        intended: connections the schedule asked for (attempted + dropped), None if unknown.
        segment: ``generator.segment``: ``"i/N"`` (one share), ``"0,2/4"`` (some shares
            merged) or None (the whole scenario, ``wsload.plan.segment``).
        release_s: a storm's release instants, seconds after the (common) schedule start:
            ``first`` and ``last`` over the segments held (equal for one segment) and the
            shared ``planned`` one of a segmented storm; None when no storm was released.
        events: the shutdown audit of the deploy's events over this segment's connections
            (a split run's segments: the coordinator adds them into summary ``events``);
            None when the segment did not audit them (one process audits in place).
        reconnect: ``[reconnect]``'s logical clients of this segment, likewise.
        ended_by: why the load ended before its plan (``[data]`` rows ran out), else None.
        notice_lag: µs from a reply's kernel arrival to the loop noticing it (the generator's
            delay, kept out of the latencies where kernel stamps are read).
        receive_clocks: which clock stamped the received frames, per connection.
        start_shift_s: with ``--start-at``: seconds by which the schedule started later than
            asked because that instant had already passed when the run was ready (the whole
            schedule is shifted, nothing is cut; 0.0: on time); the largest over the
            segments; None without ``--start-at``.
        priority_raised: the most nice steps a generator process ran raised by during the
            load (``wsload.process.raised_priority``: a storm's release pass and drain, where
            the process may; 0: never), the largest over the segments.
    """

    collector: Collector
    duration_s: float
    loop_lag: HdrHistogram = field(default_factory=new_lag_histogram)
    start_lag: HdrHistogram | None = None
    saturated: bool = False
    cpu_seconds: float = 0.0
    cpu_wait_seconds: float | None = None
    processes: int = 1
    interrupted: bool = False
    intervals: int = 0
    intended: int | None = None
    segment: str | None = None
    release_s: StormRelease | None = None
    events: list[EventTally] | None = None
    reconnect: ReconnectTotals | None = None
    ended_by: str | None = None
    notice_lag: HdrHistogram = field(default_factory=new_lag_histogram)
    receive_clocks: ReceiveClocks = ReceiveClocks()
    start_shift_s: float | None = None
    priority_raised: int = 0

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
            "start_lag": None if self.start_lag is None else encode(self.start_lag),
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
            **_audit_wire(self.events, self.reconnect),
            "notice_lag": encode(self.notice_lag),
            "receive_clocks": list(astuple(self.receive_clocks)),
            "start_shift_s": self.start_shift_s,
            "priority_raised": self.priority_raised,
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
                start_lag=None if data["start_lag"] is None else decode(data["start_lag"]),
                saturated=bool(data["saturated"]),
                cpu_seconds=float(data["cpu_seconds"]),
                duration_s=float(data["duration_s"]),
                interrupted=bool(data["interrupted"]),
                intervals=int(data["intervals"]),
                intended=None if data["intended"] is None else int(data["intended"]),
                processes=int(data["processes"]),
                cpu_wait_seconds=_optional_float(data.get("cpu_wait_seconds")),
                release_s=_release_from_wire(data),
                events=_events_from_wire(data.get("events")),
                reconnect=(
                    None
                    if data.get("reconnect") is None
                    else ReconnectTotals.from_wire(data["reconnect"])
                ),
                ended_by=None if data.get("ended_by") is None else str(data["ended_by"]),
                start_shift_s=_optional_float(data.get("start_shift_s")),
                priority_raised=int(data.get("priority_raised") or 0),
                **_receive_from_wire(data),
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
        intended = [p.intended for p in parts]
        loop_lag, start_lag = new_lag_histogram(), new_lag_histogram()
        notice_lag, clocks = new_lag_histogram(), ReceiveClocks()
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
            notice_lag.add(part.notice_lag)
            clocks += part.receive_clocks
            if part.start_lag is not None:
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
            intended=None if None in intended else sum(n or 0 for n in intended),
            processes=sum(p.processes for p in parts),
            cpu_wait_seconds=_sum_known(p.cpu_wait_seconds for p in parts),
            release_s=_release_span(p.release_s for p in parts),
            events=_merge_events([p.events for p in parts]),
            reconnect=_merge_reconnects([p.reconnect for p in parts]),
            ended_by=next((p.ended_by for p in parts if p.ended_by), None),
            notice_lag=notice_lag,
            receive_clocks=clocks,
            start_shift_s=latest_shift(p.start_shift_s for p in parts),
            priority_raised=max(p.priority_raised for p in parts),
        )


@dataclass(slots=True)
class RunResult:
    """One run's results: the load side, and what surrounds it.

    Attributes:
        scenario: the resolved scenario that ran (seed filled in).
        started_at: wall-clock start, timezone-aware UTC (report headers only).
        load: the load's figures (all workers merged).
        server: the built-in server's statistics (``as_dict()``), None for external targets.
    """

    scenario: Scenario
    started_at: datetime
    load: SegmentResult
    server: dict[str, Any] | None = None


def latest_shift(shifts: Iterable[float | None]) -> float | None:
    """The largest of the known start shifts (None: no part had ``--start-at``)."""
    known = [shift for shift in shifts if shift is not None]
    return max(known) if known else None


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _release_wire(release: StormRelease | None) -> dict[str, Any]:
    """``release_s: [first, last]`` and ``release_planned_s`` (absent from older wire forms)."""
    if release is None:
        return {"release_s": None, "release_planned_s": None}
    return {"release_s": [release.first, release.last], "release_planned_s": release.planned}


def _receive_from_wire(data: Mapping[str, Any]) -> dict[str, Any]:
    """``notice_lag`` and ``receive_clocks`` (absent from older wire forms: none read)."""
    out: dict[str, Any] = {}
    if data.get("notice_lag") is not None:
        out["notice_lag"] = decode(data["notice_lag"])
    if data.get("receive_clocks") is not None:
        out["receive_clocks"] = ReceiveClocks(*(int(n) for n in data["receive_clocks"][:3]))
    return out


def _release_from_wire(data: Mapping[str, Any]) -> StormRelease | None:
    value = data.get("release_s")
    if value is None:
        return None
    first, last = value
    return StormRelease(float(first), float(last), _optional_float(data.get("release_planned_s")))


def _release_span(releases: Iterable[StormRelease | None]) -> StormRelease | None:
    """The earliest and the latest release of the parts that released a storm; the planned
    instant is the same in every segment (computed from the scenario), the earliest if not
    (the ``--workers`` parent's one release, counted from each worker's own start, which a
    loaded machine may delay a little)."""
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


def _audit_wire(
    events: list[EventTally] | None, reconnect: ReconnectTotals | None
) -> dict[str, Any]:
    """``events`` and ``reconnect`` only when audited (absent from other wire forms)."""
    out: dict[str, Any] = {}
    if events is not None:
        out["events"] = [tally.to_wire() for tally in events]
    if reconnect is not None:
        out["reconnect"] = reconnect.to_wire()
    return out


def _events_from_wire(value: Any) -> list[EventTally] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError("events: expected a list")
    return [EventTally.from_wire(item, f"events.{i}") for i, item in enumerate(value)]


def _merge_events(parts: list[list[EventTally] | None]) -> list[EventTally] | None:
    """Each event's tallies added over the parts that audited it."""
    known = [p for p in parts if p is not None]
    if not known:
        return None
    if len({len(p) for p in known}) != 1:
        raise ValueError("the parts audited different numbers of events")
    merged = [EventTally() for _ in known[0]]
    for part in known:
        for total, tally in zip(merged, part, strict=True):
            total.merge(tally)
    return merged


def _merge_reconnects(parts: list[ReconnectTotals | None]) -> ReconnectTotals | None:
    known = [p for p in parts if p is not None]
    if not known:
        return None
    merged = ReconnectTotals()
    for part in known:
        merged.merge(part)
    return merged
