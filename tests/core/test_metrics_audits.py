"""A deploy's audits split over processes add up to the one-process audit of the same
connections: each segment tallies its own records on its own clock against the announced
instants, the tallies cross the wire on its ``SegmentResult``, and the coordinator's summary
``events`` and ``reconnect`` equal those of one audit that saw every record."""

from __future__ import annotations

import dataclasses

import pytest

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.metrics.audits import SegmentAudit
from wsload.metrics.collector import Collector
from wsload.metrics.events import EventAudit
from wsload.metrics.reconnects import ReconnectAudit
from wsload.metrics.result import SegmentResult
from wsload.report.verdict import Word, decide
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

SCENARIO = parse_scenario(
    'name = "deploy"\n[target]\nurl = "ws://127.0.0.1:{port}/"\n'
    '[target.process]\ncommand = ["server"]\nrestart = true\n'
    '[[target.process.events]]\nat = "10s"\n[[target.process.events]]\nat = "20s"\n'
    '[load]\nmodel = "storm"\nconcurrency = 8\n[[close]]\nkind = "await_server_close"\n'
    "[reconnect]\nmax_attempts = 3\n"
)
SIGNALS, EXIT, PID = (10.0, 20.5), 12.0, 4242
SKEW = 1000.125  # segment 1's run clock reads this much more than the coordinator's


def rec(seq: int, outcome: Outcome, attempt: int = 1, **stamps: float | int) -> ConnectionRecord:
    fields: dict[str, float | int] = {"upgraded": 1.0, "scheduled": 0.0, **stamps}
    return ConnectionRecord(
        seq=seq, label="close-1", kind="await_server_close", outcome=outcome, attempt=attempt,
        **fields,  # type: ignore[arg-type]
    )  # fmt: skip


RECORDS = [
    # swept by the first event, reconnected, swept by the second
    rec(0, Outcome.SERVER_CLOSED, close_received=10.5, code_received=1001, eof=10.6,
        socket_closed=10.6),
    rec(0, Outcome.SERVER_CLOSED, 2, scheduled=10.7, upgraded=13.25, close_received=20.75,
        code_received=1001, eof=20.8, socket_closed=20.8),
    # cut by the exit, no Close; never comes back (three attempts refused)
    rec(1, Outcome.ABNORMAL, eof=EXIT - 0.01, socket_closed=EXIT),
    rec(1, Outcome.REFUSED, 2, scheduled=12.5, upgraded=None, socket_closed=12.5),  # type: ignore[arg-type]
    rec(1, Outcome.REFUSED, 3, scheduled=13.0, upgraded=None, socket_closed=13.0),  # type: ignore[arg-type]
    # TCP gone 0.25 s after the signal, then back
    rec(2, Outcome.ABNORMAL, eof=10.25, socket_closed=10.25),
    rec(2, Outcome.SERVER_CLOSED, 2, scheduled=11.0, upgraded=14.5, close_received=20.625,
        code_received=1001, eof=20.7, socket_closed=20.7),
    # closed before the first signal: nobody's
    rec(3, Outcome.CLEAN, close_sent=5.0, close_received=5.125, eof=5.25, socket_closed=5.25),
    rec(4, Outcome.SERVER_CLOSED, close_received=10.375, code_received=1012, eof=10.5,
        socket_closed=10.5),
    rec(5, Outcome.SERVER_CLOSED, close_received=10.5, code_received=1001, eof=10.5,
        socket_closed=10.5),
]  # fmt: skip


def skewed(record: ConnectionRecord, skew: float) -> ConnectionRecord:
    """``record`` as a process whose run clock reads ``skew`` more would have it."""
    moments = ("scheduled", "upgraded", "close_sent", "close_received", "eof", "socket_closed")
    shifted = {
        name: getattr(record, name) + skew for name in moments if getattr(record, name) is not None
    }
    return dataclasses.replace(record, **shifted)


def coordinator() -> EventAudit:
    events = EventAudit(((10.0, "SIGTERM"), (20.0, "SIGTERM")))
    events.origin = 0.0
    for index, sent in enumerate(SIGNALS):
        events.signal_sent(index, sent, PID + index)
    return events


def one_process() -> tuple[list[dict[str, object]], dict[str, object]]:
    events = coordinator()
    assert SCENARIO.reconnect is not None
    reconnects = ReconnectAudit(SCENARIO.reconnect)
    for record in RECORDS:
        events.add(record)
        reconnects.add(record)
    events.process_exited(PID, EXIT, 0)
    return events.finish(), reconnects.as_dict()


def segment(index: int, skew: float, *, late: bool) -> SegmentResult:
    """Segment ``index`` of 2 (the even or odd logical clients) on a clock ``skew`` ahead;
    ``late``: its records end before the announcements reach it."""
    audit = SegmentAudit.of(SCENARIO)
    assert audit is not None
    audit.start(0.0 + skew)
    mine = [skewed(r, skew) for r in RECORDS if r.seq % 2 == index]
    if not late:
        for i, sent in enumerate(SIGNALS):
            audit.announce(i, sent)
    for record in mine:
        audit.on_record(record)
    assert audit.waiting(30.0 + skew) == late
    for i, sent in enumerate(SIGNALS):
        audit.announce(i, sent)
    assert not audit.waiting(30.0 + skew)
    part = SegmentResult(collector=Collector(), duration_s=30.0, segment=f"{index}/2")
    audit.attach(part)
    return SegmentResult.from_wire(part.to_wire())  # as the worker's pipe carries it


@pytest.mark.parametrize("late", [False, True])
def test_segments_tallies_merge_into_the_one_process_audit(late: bool) -> None:
    merged = SegmentResult.merge([segment(0, 0.0, late=late), segment(1, SKEW, late=late)])
    events = coordinator()
    assert merged.events is not None and merged.reconnect is not None
    events.absorb(merged.events)
    events.process_exited(PID, EXIT, 0)
    expected_events, expected_reconnect = one_process()
    assert events.finish() == expected_events
    assert merged.reconnect.as_dict() == expected_reconnect
    first, second = expected_events
    assert (first["open_at_signal"], first["still_open_at_exit"]) == (5, 1)
    assert first["codes"] == {"1001": 2, "1006": 2, "1012": 1}
    assert second["open_at_signal"] == 2
    assert expected_reconnect["clients"] == 6 and expected_reconnect["reconnected"] == 2
    assert expected_reconnect["gave_up"] == 1


def test_an_unannounced_event_keeps_only_what_ended_after_its_planned_instant() -> None:
    audit = EventAudit(((10.0, "SIGTERM"),))
    audit.origin = 100.0
    before, after = RECORDS[7], RECORDS[0]  # ended at 5.25 and 10.6 (load time)
    audit.add(skewed(before, 100.0))
    audit.add(skewed(after, 100.0))
    assert len(audit._pending) == 1  # the one that ended first cannot be the event's: not kept
    audit.announce(0, 110.0)
    (event,) = audit.finish()
    assert event["open_at_signal"] == 1


def test_a_segment_without_events_or_reconnect_audits_nothing() -> None:
    plain = parse_scenario(
        'name = "echo"\n[target]\nurl = "builtin"\n[load]\nmodel = "storm"\nconcurrency = 1\n'
    )
    assert SegmentAudit.of(plain) is None
    part = SegmentResult(collector=Collector(), duration_s=1.0)
    assert "events" not in part.to_wire() and "reconnect" not in part.to_wire()
    assert SegmentResult.merge([part]).events is None


def test_a_failed_segment_makes_the_verdict_inconclusive_and_names_it() -> None:
    failed = {
        "segment": "1/2",
        "error": "exited with code -9 before sending its result",
        "intervals": 3,
        "attempted": 1200,
        "opened": 1190,
    }
    verdict = decide({"failed_segments": [failed]})
    (reason,) = [r for r in verdict.reasons if r.code == "segment_failed"]
    assert verdict.word is Word.INCONCLUSIVE and reason.word is Word.INCONCLUSIVE
    assert "1/2 (exited with code -9" in reason.message
    assert "1,200 connections in 3 s" in reason.message
    assert not [r for r in decide({}).reasons if r.code == "segment_failed"]
