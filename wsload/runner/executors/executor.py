"""Where the load of one run executes: this process, worker processes, or a Dask cluster.

The run mode knows only the ``Executor`` protocol: give it the scenario, the URL and a
``LoadFeed`` (where intervals and progress go, the stop events), get back one
``SegmentResult``. ``Local`` runs the load (or one ``--segment`` of it) in this process;
``workers.Workers`` and ``cluster.Cluster`` (beside this module) split it into shares and
gather them through ``SplitResults``, the one place where shares' intervals are merged, each
share's own result is kept beside the run's, failed shares are reported and the parts merged.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from wsload.core.record import ConnectionRecord
from wsload.errors import ToolError
from wsload.metrics.audits import SegmentAudit
from wsload.metrics.result import SegmentResult
from wsload.metrics.snapshots import IntervalMerger, IntervalSnapshot
from wsload.plan.segment import WHOLE, Segment, parse_segment
from wsload.report.redact import redact_text
from wsload.runner.executors.segment_run import run_segment
from wsload.runner.load.loop import Progress
from wsload.runner.result_files import SegmentLogs
from wsload.scenario.model import Scenario

__all__ = [
    "Executor",
    "LoadFeed",
    "Local",
    "SplitResults",
    "chain_records",
    "error_text",
    "progress_to_wire",
]

_PROGRESS_FIELDS = ("attempted", "dropped", "in_flight", "peak_in_flight", "finished", "intended")


@dataclass(slots=True)
class LoadFeed:
    """What a running load reports to, and is stopped by, wherever it executes.

    Attributes:
        on_interval: each second's snapshot (merged across shares for a split run).
        segment_logs: each share's own interval log and result (split runs only).
        on_record: each connection's record (--record-connections; ``Local`` only).
        on_live_interval: a merged second seen while the shares run, when the logged one
            comes only with their results at the end (``Cluster``): the live ``/metrics``
            endpoint takes it then, and skips it when it is logged.
        on_event: a deploy's event was sent, ``(index, seconds after the start or None)``:
            set by an executor whose processes audit their own connections (``Workers``).
        audit_from_schedule: the executor's processes audit against each event's planned
            instant, so the parent's audit counts from it too (``Cluster``, a ``--segment``).
        origin: the common start agreed with segments elsewhere (``--segment`` with
            ``--start-at``), on this process's clock: the deploy's events count from it.
        failed_segments: the shares that died or failed, each with its error and what the
            parent had received of its measurements (summary ``failed_segments``).
    """

    on_interval: Callable[[IntervalSnapshot], None]
    segment_logs: SegmentLogs
    progress: Progress = field(default_factory=Progress)
    stop: trio.Event = field(default_factory=trio.Event)
    hard_stop: trio.Event = field(default_factory=trio.Event)
    on_record: Callable[[ConnectionRecord], None] | None = None
    on_live_interval: Callable[[IntervalSnapshot], None] | None = None
    on_event: Callable[[int, float | None], None] | None = None
    audit_from_schedule: bool = False
    origin: float | None = None
    failed_segments: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, snapshot: IntervalSnapshot) -> None:
        """Hand one (merged) interval to the live panel and the run's logs."""
        self.progress.last_interval = snapshot
        self.on_interval(snapshot)


class Executor(Protocol):
    """Runs a scenario's load somewhere and returns its (merged) result."""

    @property
    def processes(self) -> int:
        """Generator processes on this machine (the pre-flight check splits fds by it)."""
        ...

    async def run(self, scenario: Scenario, url: str, feed: LoadFeed) -> SegmentResult: ...


@dataclass(frozen=True, slots=True)
class Local:
    """The load in this process: the whole scenario, or one ``--segment`` of it.

    Attributes:
        start_at: wall-clock epoch seconds at which the schedule starts; None: now.
    """

    segment: Segment = WHOLE
    start_at: float | None = None

    @property
    def processes(self) -> int:
        return 1

    async def run(self, scenario: Scenario, url: str, feed: LoadFeed) -> SegmentResult:
        """The load; a ``--segment`` also audits its own connections for the deploy's events
        (from their planned instants after ``start_at``) and ``[reconnect]``, onto its result,
        which ``wsload merge`` adds up with the other segments'."""
        if not self.segment.whole and self.start_at is not None:
            # the common start on this process's clock, once: the wall clock may step later
            feed.origin = trio.current_time() + (self.start_at - time.time())
        audit = None if self.segment.whole else SegmentAudit.of(scenario)
        on_record = feed.on_record
        if audit is not None:
            feed.audit_from_schedule = True
            if feed.origin is not None:
                audit.announce_schedule(feed.origin)
            on_record = chain_records(audit.on_record, feed.on_record)
        part = await run_segment(
            scenario,
            url,
            segment=self.segment,
            start_at=self.start_at,
            progress=feed.progress,
            on_interval=feed.on_interval,
            stop=feed.stop,
            hard_stop=feed.hard_stop,
            on_record=on_record,
        )
        if audit is not None:
            audit.attach(part)
        return part


def chain_records(
    first: Callable[[ConnectionRecord], None], then: Callable[[ConnectionRecord], None] | None
) -> Callable[[ConnectionRecord], None]:
    """A record callback that calls ``first``, then ``then`` (if any)."""
    if then is None:
        return first

    def both(record: ConnectionRecord) -> None:
        first(record)
        then(record)

    return both


def error_text(exc: BaseException) -> str:
    """``Type: message`` of what failed, the leaves of an exception group rather than the
    group ("Exceptions from Trio nursery" says nothing). Not yet redacted: the printer does."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(error_text(leaf) for leaf in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def progress_to_wire(progress: Progress) -> dict[str, Any]:
    """A share's live figures as it sends them (``SplitResults.progress`` sums them)."""
    out: dict[str, Any] = {name: getattr(progress, name) for name in _PROGRESS_FIELDS}
    out["phase"] = progress.phase
    out["outcomes"] = dict(progress.outcomes)
    return out


class SplitResults:
    """The shares of a split run coming back: intervals merged by index, results kept.

    Args:
        count: the shares.
        warning: how a failed share is reported (``{segment}``, ``{error}`` filled in).
        none_left: the ``ToolError`` message when no share produced a result.
    """

    def __init__(self, count: int, feed: LoadFeed, *, warning: str, none_left: str) -> None:
        self.feed = feed
        self.merger = IntervalMerger(count)
        self.live = IntervalMerger(count)
        self.shares: dict[int, dict[str, Any]] = {}
        self.measured: dict[int, dict[int, tuple[int, int]]] = {}  # share → second → counts
        self.done: set[int] = set()
        self.parts: list[SegmentResult] = []
        self.errors: list[tuple[str, str]] = []
        self.warning = warning
        self.none_left = none_left

    def interval(self, index: int, segment: str, snapshot: IntervalSnapshot) -> None:
        """Share ``index`` (named ``segment``, ``i/N``) measured one more second."""
        self.feed.segment_logs.write(segment, snapshot)
        self._measure(index, snapshot)
        for merged in self.merger.add(index, snapshot):
            self.feed.emit(merged)

    def live_interval(self, index: int, snapshot: IntervalSnapshot) -> None:
        """Share ``index``'s second, for the live panel only (its result brings the logged
        intervals later: a share that cannot stream them as it runs, a Dask task)."""
        self._measure(index, snapshot)
        for merged in self.live.add(index, snapshot):
            self.feed.progress.last_interval = merged
            if self.feed.on_live_interval is not None:
                self.feed.on_live_interval(merged)

    def _measure(self, index: int, snapshot: IntervalSnapshot) -> None:
        seconds = self.measured.setdefault(index, {})
        seconds[snapshot.index] = (snapshot.attempted, snapshot.opened)

    def progress(self, index: int, data: dict[str, Any]) -> None:
        """Share ``index``'s live figures (``progress_to_wire``): the run's are their sum."""
        self.shares[index] = dict(data)
        progress, shares = self.feed.progress, self.shares.values()
        for name in _PROGRESS_FIELDS:
            setattr(progress, name, sum(int(share.get(name, 0)) for share in shares))
        outcomes: dict[str, int] = {}
        for share in shares:
            for name, n in share.get("outcomes", {}).items():
                outcomes[name] = outcomes.get(name, 0) + int(n)
        progress.outcomes = outcomes
        phases = [d.get("phase") for i, d in self.shares.items() if i not in self.done]
        progress.phase = str(phases[0]) if phases and phases[0] else progress.phase

    def result(self, part: SegmentResult) -> None:
        """A share's result: written into its own directory, kept for the merge."""
        self.feed.segment_logs.finish(part)
        self.parts.append(part)

    def failed(self, segment: str, error: str) -> None:
        self.errors.append((segment, error))

    def ended(self, index: int) -> None:
        """Share ``index`` sends nothing more: the intervals waiting for it go out."""
        self.done.add(index)
        for merged in self.merger.done(index):
            self.feed.emit(merged)

    def finish(self, scenario: Scenario) -> SegmentResult:
        """The last intervals out, failed shares reported, the kept results merged.

        Raises:
            ToolError: no share produced a result.
        """
        for merged in self.merger.finish():
            self.feed.emit(merged)
        for segment, error in self.errors:
            # an exception's text can carry the URL's token
            error = redact_text(error, scenario.secrets)
            text = self.warning.format(segment=segment, error=error)
            sys.stderr.write(f"wsload: warning: {text}\n")
            seconds = self.measured.get(parse_segment(segment).index, {}).values()
            self.feed.failed_segments.append(
                {
                    "segment": segment,
                    "error": error,
                    "intervals": len(seconds),
                    "attempted": sum(attempted for attempted, _ in seconds),
                    "opened": sum(opened for _, opened in seconds),
                }
            )
        if not self.parts:
            raise ToolError(self.none_left)
        return SegmentResult.merge(self.parts, labels=tuple(spec.label for spec in scenario.close))
