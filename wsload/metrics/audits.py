"""A segment's share of a deploy's audits, for a run split over processes (``--workers``,
``--cluster``, ``--segment``).

The coordinator (the ``wsload run`` process) owns the server and fires the events; each
segment holds connections, so each audits its own: ``SegmentAudit`` is fed the segment's
records and the events' instants on this process's clock, as the coordinator announces them
or, when nothing can reach the segment while it runs (a Dask task, a ``--segment`` run), at
their planned instants. It leaves its tallies on the segment's result, which the coordinator
(or ``wsload merge``, from totals.json) adds up (``SegmentResult.merge``) into the summary's
``events`` and ``reconnect``. Pure bookkeeping.
"""

from __future__ import annotations

from wsload.core.record import ConnectionRecord
from wsload.metrics.events import EventAudit
from wsload.metrics.reconnects import ReconnectAudit
from wsload.metrics.result import SegmentResult
from wsload.scenario.model import Scenario

__all__ = ["SegmentAudit"]


class SegmentAudit:
    """The events' shutdown audit and ``[reconnect]``'s clients of one segment."""

    def __init__(self, scenario: Scenario) -> None:
        process = scenario.target.process
        events = process.events if process is not None else ()
        self.events = EventAudit(tuple((e.at, e.signal) for e in events)) if events else None
        reconnect = scenario.reconnect
        self.reconnects = ReconnectAudit(reconnect) if reconnect is not None else None

    @classmethod
    def of(cls, scenario: Scenario) -> SegmentAudit | None:
        """The scenario's segment audit; None when it has no events and no ``[reconnect]``."""
        audit = cls(scenario)
        return audit if audit.events is not None or audit.reconnects is not None else None

    def start(self, origin: float) -> None:
        """The load starts at ``origin`` (this process's run clock): event instants count
        from it."""
        if self.events is not None:
            self.events.origin = origin

    def announce(self, index: int, offset: float | None) -> None:
        """Event ``index`` was sent ``offset`` seconds after the start (None: not sent)."""
        events = self.events
        if events is not None and events.origin is not None:
            events.announce(index, None if offset is None else events.origin + offset)

    def announce_schedule(self, origin: float) -> None:
        """The load starts at ``origin`` and every event at its planned instant (a segment
        nothing can tell while it runs: a Dask task, a ``--segment`` run)."""
        self.start(origin)
        if self.events is not None:
            for index, event in enumerate(self.events.events):
                self.announce(index, event.at_s)

    def waiting(self, now: float) -> bool:
        """An event due by ``now`` has not been announced yet (its message is on its way)."""
        events = self.events
        if events is None or events.origin is None:
            return False
        elapsed = now - events.origin
        return any(not e.announced and e.at_s <= elapsed for e in events.events)

    def on_record(self, record: ConnectionRecord) -> None:
        if self.events is not None:
            self.events.add(record)
        if self.reconnects is not None:
            self.reconnects.add(record)

    def attach(self, part: SegmentResult) -> None:
        """Leave the tallies on the segment's result (its wire form carries them)."""
        if self.events is not None:
            part.events = self.events.tallies()
        if self.reconnects is not None:
            part.reconnect = self.reconnects.totals()
