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
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from wsload.core.browser import ABNORMAL_CLOSURE, browser_close_event
from wsload.core.record import ConnectionRecord
from wsload.metrics.histograms import histogram_stats, new_histogram, record, seconds_to_us
from wsload.metrics.wire import close_events_to_json

__all__ = ["EXIT_TOLERANCE", "EventAudit", "FiredEvent"]

EXIT_TOLERANCE = 0.05
"""An EOF this close before the process's exit was seen counts as caused by the exit.

The kernel closes a dead process's sockets before its parent can observe the exit, so a
connection the server never closed reads its EOF a moment *before* wsload sees the exit (by
the thread and scheduling delays of a busy machine: several ms were seen on 2 busy cores). On
the wire a ``terminate()`` in the last 50 ms before the exit looks the same as the kernel's cut,
so it is counted here too."""

_CURVE_POINTS = 60


@dataclass(slots=True)
class FiredEvent:
    """One event as it happened, and what its connections saw after it.

    Attributes:
        at_s: planned time from the start of the load.
        signal: the signal's name.
        sent: the instant it was sent (run clock); None: the target was not running.
        pid: the process that got it (None: none was running).
        exited / status: when that process exited and its status (None: it did not, in the run).
    """

    at_s: float
    signal: str
    sent: float | None = None
    pid: int | None = None
    exited: float | None = None
    status: int | None = None
    open_at_signal: int = 0
    closed_clean: int = 0
    closed_abnormal: int = 0
    still_open_at_exit: int = 0
    close_received: HdrHistogram = field(default_factory=new_histogram)
    eof: HdrHistogram = field(default_factory=new_histogram)
    codes: Counter[int] = field(default_factory=Counter)
    close_events: Counter[tuple[int, bool]] = field(default_factory=Counter)
    close_times: dict[int, array[int]] = field(default_factory=dict)

    def was_open(self, rec: ConnectionRecord) -> bool:
        """Upgraded before the signal, and no Close or TCP end had happened yet."""
        sent = self.sent
        if sent is None or rec.upgraded is None or rec.upgraded > sent:
            return False
        moments = (rec.close_sent, rec.close_received, rec.eof, rec.socket_closed)
        return all(t is None or t >= sent for t in moments)

    def add(self, rec: ConnectionRecord) -> None:
        """Count ``rec`` if it was open at the signal (else it is not this event's)."""
        sent = self.sent
        if sent is None or not self.was_open(rec):  # (sent: for the type checker)
            return
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
        exited = self.exited
        if (
            exited is not None
            and rec.close_received is None
            and (rec.eof is None or rec.eof >= exited - EXIT_TOLERANCE)
        ):
            self.still_open_at_exit += 1

    def as_dict(self) -> dict[str, Any]:
        """One entry of summary.json ``events`` (docs/results.md)."""
        sent = self.sent
        return {
            "at_s": round(self.at_s, 6),
            "signal": self.signal,
            "pid": self.pid,
            "exit_s": (
                round(self.exited - sent, 6)
                if self.exited is not None and sent is not None
                else None
            ),
            "exit_status": self.status,
            "open_at_signal": self.open_at_signal,
            "closed_clean": self.closed_clean,
            "closed_abnormal": self.closed_abnormal,
            "still_open_at_exit": self.still_open_at_exit,
            "codes": {str(code): n for code, n in sorted(self.codes.items())},
            "close_events": close_events_to_json(self.close_events),
            "latency_us": {
                "close_received": histogram_stats(self.close_received),
                "eof": histogram_stats(self.eof),
            },
            "closes_over_time": {
                str(code): _curve(times) for code, times in sorted(self.close_times.items())
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
    """The events of one run; records are added as the connections end."""

    def __init__(self, events: tuple[tuple[float, str], ...]) -> None:
        self.events = [FiredEvent(at_s=at, signal=signame) for at, signame in events]
        self._pending: list[ConnectionRecord] = []

    def signal_sent(self, index: int, sent: float, pid: int | None) -> None:
        event = self.events[index]
        event.sent, event.pid = (sent if pid is not None else None), pid

    def process_exited(self, pid: int, exited: float, status: int | None) -> None:
        """The process ``pid`` was seen to exit: the events sent to it get its exit."""
        for event in self.events:
            if event.pid == pid and event.exited is None:
                event.exited, event.status = exited, status

    def add(self, rec: ConnectionRecord) -> None:
        """A finished connection. One open at a signal already sent is kept until ``finish``
        (the process's exit, which decides ``still_open_at_exit``, may not be known yet); any
        other cannot belong to an event (it ended before the later ones) and is dropped."""
        if any(event.was_open(rec) for event in self.events):
            self._pending.append(rec)

    def finish(self) -> list[dict[str, Any]]:
        """Audit every record against every event; summary.json ``events``."""
        for rec in self._pending:
            for event in self.events:
                event.add(rec)
        self._pending.clear()
        return [event.as_dict() for event in self.events]
