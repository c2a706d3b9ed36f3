"""The shutdown audit: what each connection saw after a signal was sent to the target.

Pure bookkeeping (no Trio, no I/O): ``EventAudit`` is fed the events as they are fired
(``signal_sent``), the target's exits (``process_exited``) and then every connection's record
(``add``); ``as_list()`` is summary.json's ``events``. Everything is measured on the run's one
clock from the instant the signal was sent, so ``close_received.p99`` is "how long after the
SIGTERM did the last 1 % get their Close", independent of when each connection opened.

A connection belongs to an event when it was *open at the signal*: upgraded before it, and
neither side had started to close or dropped TCP yet. Its close event is what a browser's
``CloseEvent`` would say (``wsload.core.browser``): the server's Close code with ``wasClean``
(``closed_clean``), or 1006 when TCP went away without a Close (``closed_abnormal``).
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from wsload.core.browser import ABNORMAL_CLOSURE, browser_close_event
from wsload.core.record import ConnectionRecord
from wsload.metrics.histograms import (
    decode,
    encode,
    histogram_stats,
    new_histogram,
    record,
    seconds_to_us,
)
from wsload.metrics.wire import close_events_to_json, count, counter, parse_close_events

__all__ = ["EXIT_TOLERANCE", "NEVER", "EventAudit", "EventTally", "FiredEvent"]

EXIT_TOLERANCE = 0.05
"""An EOF this close before the process's exit was seen counts as caused by the exit.

The kernel closes a dead process's sockets before its parent can observe the exit, so a
connection the server never closed reads its EOF a moment *before* wsload sees the exit (by
the thread and scheduling delays of a busy machine: several ms were seen on 2 busy cores). On
the wire a ``terminate()`` in the last 50 ms before the exit looks the same as the kernel's cut,
so it is counted here too."""

_CURVE_POINTS = 60

NEVER = 2**62
"""``EventTally.unclosed``'s entry for a connection that saw no EOF either (µs: after any exit)."""


@dataclass(slots=True)
class EventTally:
    """What the connections open at one signal saw, every time relative to that signal.

    Relative times make tallies of different processes (each with its own run clock) add up
    exactly: a ``--workers`` segment tallies its own connections against the instant the
    coordinator announced, and the coordinator adds the tallies (``merge``). The exit is not
    needed here: ``unclosed`` keeps, for each connection that got no Close, its EOF (µs after
    the signal, ``NEVER`` without one), and ``still_open_at_exit`` is counted from it once the
    exit is known.
    """

    open_at_signal: int = 0
    closed_clean: int = 0
    closed_abnormal: int = 0
    close_received: HdrHistogram = field(default_factory=new_histogram)
    eof: HdrHistogram = field(default_factory=new_histogram)
    codes: Counter[int] = field(default_factory=Counter)
    close_events: Counter[tuple[int, bool]] = field(default_factory=Counter)
    close_times: dict[int, array[int]] = field(default_factory=dict)
    unclosed: array[int] = field(default_factory=lambda: array("q"))

    def add(self, rec: ConnectionRecord, sent: float) -> None:
        """Count ``rec``, open at the signal sent at ``sent`` (same clock as the record)."""
        self.open_at_signal += 1
        if rec.close_received is not None:
            record(self.close_received, seconds_to_us(rec.close_received - sent))
        if rec.eof is not None:
            record(self.eof, seconds_to_us(rec.eof - sent))
        event = browser_close_event(rec)
        self.codes[event.code] += 1
        self.close_events[event.code, event.was_clean] += 1
        if event.was_clean:
            self.closed_clean += 1
        elif event.code == ABNORMAL_CLOSURE:
            self.closed_abnormal += 1
        moment = rec.close_received if rec.close_received is not None else rec.eof
        if moment is None:
            moment = rec.socket_closed
        if moment is not None:
            times = self.close_times.setdefault(event.code, array("q"))
            times.append(seconds_to_us(max(0.0, moment - sent)))
        if rec.close_received is None:
            self.unclosed.append(NEVER if rec.eof is None else seconds_to_us(rec.eof - sent))

    def merge(self, other: EventTally) -> None:
        """Add ``other`` (another process's connections) into this tally."""
        self.open_at_signal += other.open_at_signal
        self.closed_clean += other.closed_clean
        self.closed_abnormal += other.closed_abnormal
        self.close_received.add(other.close_received)
        self.eof.add(other.eof)
        self.codes.update(other.codes)
        self.close_events.update(other.close_events)
        for code, times in other.close_times.items():
            self.close_times.setdefault(code, array("q")).extend(times)
        self.unclosed.extend(other.unclosed)

    def still_open_at(self, exit_us: int) -> int:
        """Connections with no Close whose EOF (if any) came with an exit ``exit_us`` after
        the signal (``EXIT_TOLERANCE`` before it counts)."""
        cut = exit_us - seconds_to_us(EXIT_TOLERANCE)
        return sum(1 for eof in self.unclosed if eof >= cut)

    def to_wire(self) -> dict[str, Any]:
        return {
            "open_at_signal": self.open_at_signal,
            "closed_clean": self.closed_clean,
            "closed_abnormal": self.closed_abnormal,
            "close_received": encode(self.close_received),
            "eof": encode(self.eof),
            "codes": {str(code): n for code, n in sorted(self.codes.items())},
            "close_events": close_events_to_json(self.close_events),
            "close_times": {str(c): list(t) for c, t in sorted(self.close_times.items())},
            "unclosed": list(self.unclosed),
        }

    @classmethod
    def from_wire(cls, data: Any, where: str = "event") -> EventTally:
        """Raises: ValueError naming the field that is missing or malformed."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected an object")
        try:
            times = data["close_times"]
            if not isinstance(times, Mapping):
                raise ValueError(f"{where}.close_times: expected an object")
            return cls(
                open_at_signal=count(data["open_at_signal"], f"{where}.open_at_signal"),
                closed_clean=count(data["closed_clean"], f"{where}.closed_clean"),
                closed_abnormal=count(data["closed_abnormal"], f"{where}.closed_abnormal"),
                close_received=decode(data["close_received"]),
                eof=decode(data["eof"]),
                codes=Counter(counter(data["codes"], f"{where}.codes", int)),
                close_events=Counter(parse_close_events(data["close_events"], where)),
                close_times={int(c): array("q", map(int, t)) for c, t in times.items()},
                unclosed=array("q", map(int, data["unclosed"])),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{where}: missing or malformed field {exc}") from None


@dataclass(slots=True)
class FiredEvent:
    """One event as it happened, and what its connections saw after it.

    Attributes:
        at_s: planned time from the start of the load.
        signal: the signal's name.
        sent: the instant it was sent (run clock); None: the target was not running, or
            (in a segment) it has not been announced yet.
        announced: ``sent`` is known (None or not): records are audited against it.
        pid: the process that got it (None: none was running).
        exited / status: when that process exited and its status (None: it did not, in the run).
        tally: what its connections saw.
    """

    at_s: float
    signal: str
    sent: float | None = None
    announced: bool = False
    pid: int | None = None
    exited: float | None = None
    status: int | None = None
    tally: EventTally = field(default_factory=EventTally)

    def was_open(self, rec: ConnectionRecord) -> bool:
        """Upgraded before the signal, and no Close or TCP end had happened yet."""
        sent = self.sent
        if sent is None or rec.upgraded is None or rec.upgraded > sent:
            return False
        moments = (rec.close_sent, rec.close_received, rec.eof, rec.socket_closed)
        return all(t is None or t >= sent for t in moments)

    def add(self, rec: ConnectionRecord) -> None:
        """Count ``rec`` if it was open at the signal (else it is not this event's)."""
        if self.sent is not None and self.was_open(rec):
            self.tally.add(rec, self.sent)

    def as_dict(self) -> dict[str, Any]:
        """One entry of summary.json ``events`` (docs/results.md)."""
        sent, tally = self.sent, self.tally
        exit_s = None
        if self.exited is not None and sent is not None:
            exit_s = round(self.exited - sent, 6)
        return {
            "at_s": round(self.at_s, 6),
            "signal": self.signal,
            "pid": self.pid,
            "exit_s": exit_s,
            "exit_status": self.status,
            "open_at_signal": tally.open_at_signal,
            "closed_clean": tally.closed_clean,
            "closed_abnormal": tally.closed_abnormal,
            "still_open_at_exit": (
                0 if exit_s is None else tally.still_open_at(seconds_to_us(exit_s))
            ),
            "codes": {str(code): n for code, n in sorted(tally.codes.items())},
            "close_events": close_events_to_json(tally.close_events),
            "latency_us": {
                "close_received": histogram_stats(tally.close_received),
                "eof": histogram_stats(tally.eof),
            },
            "closes_over_time": {
                str(code): _curve(times) for code, times in sorted(tally.close_times.items())
            },
        }


def _curve(times: array[int]) -> list[list[int]]:
    """``[[µs after the signal, closes so far], ...]``: at most ``_CURVE_POINTS`` points."""
    ordered = sorted(times)
    if not ordered:
        return []
    low, high = ordered[0], ordered[-1]
    steps = min(_CURVE_POINTS, len(ordered))
    marks = sorted({low + (high - low) * i // max(1, steps - 1) for i in range(steps)})
    return [[mark, bisect_right(ordered, mark)] for mark in marks]


class EventAudit:
    """The events of one run; records are added as the connections end.

    In one process the events are ``signal_sent`` as they are fired. In a segment of a split
    run (``--workers``) the coordinator fires them and ``announce`` gives their instants on
    this process's clock, a moment later: until then a record that ended after the event's
    planned instant (``origin`` + ``at_s``, which the signal can only follow) is kept, since it
    may have been open at the signal.
    """

    def __init__(self, events: tuple[tuple[float, str], ...]) -> None:
        self.events = [FiredEvent(at_s=at, signal=signame) for at, signame in events]
        self.origin: float | None = None  # the start of the load (run clock), once known
        self._pending: list[tuple[ConnectionRecord, tuple[int, ...]]] = []

    def announce(self, index: int, sent: float | None) -> None:
        """Event ``index`` was sent at ``sent`` (None: the target was not running); the
        records kept for it are audited now."""
        event = self.events[index]
        event.sent, event.announced = sent, True
        if not self._pending:
            return
        kept: list[tuple[ConnectionRecord, tuple[int, ...]]] = []
        for rec, waiting in self._pending:
            if index in waiting:
                event.add(rec)
                waiting = tuple(i for i in waiting if i != index)
            if waiting:
                kept.append((rec, waiting))
        self._pending = kept

    def signal_sent(self, index: int, sent: float, pid: int | None) -> None:
        self.announce(index, sent if pid is not None else None)
        self.events[index].pid = pid

    def process_exited(self, pid: int, exited: float, status: int | None) -> None:
        """The process ``pid`` was seen to exit: the events sent to it get its exit."""
        for event in self.events:
            if event.pid == pid and event.exited is None:
                event.exited, event.status = exited, status

    def _may_belong(self, rec: ConnectionRecord, event: FiredEvent) -> bool:
        if event.announced:
            return event.was_open(rec)
        origin, end = self.origin, rec.socket_closed
        return origin is None or end is None or end >= origin + event.at_s - EXIT_TOLERANCE

    def add(self, rec: ConnectionRecord) -> None:
        """A finished connection, audited at once against every event already announced (the
        tally needs the signal's instant only: the exit, which decides
        ``still_open_at_exit``, is applied to the tally's EOF times at ``finish``). It is kept
        only while an event it may belong to is not announced yet; any other cannot belong to
        an event (it ended before the later ones) and is dropped.

        Kept until ``finish`` instead, the records of a deploy's swept connections were
        100,000 records (≈ 0.8 KB each) held through the reconnects, in the generator's
        peak."""
        waiting: tuple[int, ...] = ()
        for index, event in enumerate(self.events):
            if event.announced:
                event.add(rec)
            elif self._may_belong(rec, event):
                waiting = (*waiting, index)
        if waiting:
            self._pending.append((rec, waiting))

    def tallies(self) -> list[EventTally]:
        """Each event's tally (a record still kept waits for an event never announced: it
        belongs to none)."""
        self._pending.clear()
        return [event.tally for event in self.events]

    def absorb(self, tallies: list[EventTally]) -> None:
        """Add other processes' tallies of the same events (a split run's segments); an
        event that was not sent has no connections, whatever a segment assumed."""
        for event, tally in zip(self.events, tallies, strict=True):
            if event.sent is not None:
                event.tally.merge(tally)

    def finish(self) -> list[dict[str, Any]]:
        """Audit every record against every event; summary.json ``events``."""
        self.tallies()
        return [event.as_dict() for event in self.events]
