"""The shutdown audit, record by record: who was open at the signal, how each ended (the browser's
close event), times from the signal, and who was still open when the process exited."""

from __future__ import annotations

import pytest

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.metrics.events import EXIT_TOLERANCE, EventAudit

pytestmark = pytest.mark.usefixtures("bounded_sync")

SIGNAL, EXIT = 10.0, 12.0


def rec(seq: int, outcome: Outcome, **stamps: float | int | bool) -> ConnectionRecord:
    fields: dict[str, float | int | bool] = {"upgraded": 1.0, **stamps}
    return ConnectionRecord(
        seq=seq, label="hold", kind="await_server_close", outcome=outcome, scheduled=0.0,
        **fields,  # type: ignore[arg-type]
    )  # fmt: skip


RECORDS = [
    # clean 1001: Close 0.5 s after the signal, EOF 0.6 s after
    rec(1, Outcome.SERVER_CLOSED, close_received=10.5, code_received=1001, eof=10.6,
        socket_closed=10.6),
    # TCP gone without a Close 0.2 s after: 1006
    rec(2, Outcome.ABNORMAL, eof=10.2, socket_closed=10.2),
    # already closing before the signal: not the event's
    rec(3, Outcome.CLEAN, close_sent=5.0, close_received=5.1, eof=5.2, socket_closed=5.2),
    # opened after the signal: not the event's
    rec(4, Outcome.SERVER_CLOSED, upgraded=11.0, close_received=11.5, code_received=1001),
    # never closed by the server: its EOF came with the exit (just before wsload saw it)
    rec(5, Outcome.ABNORMAL, eof=EXIT - EXIT_TOLERANCE / 2, socket_closed=EXIT),
    # a Close, then a reset before the handshake finished: 1001 but not clean
    rec(6, Outcome.RESET, close_received=10.3, code_received=1001, eof=10.31, socket_closed=10.31,
        reset=True),
    # never upgraded
    rec(7, Outcome.REFUSED, upgraded=None, socket_closed=10.0),  # type: ignore[arg-type]
]  # fmt: skip


def audit() -> dict[str, object]:
    events = EventAudit(((10.0, "SIGTERM"),))
    events.signal_sent(0, SIGNAL, pid=4242)
    for record in RECORDS:
        events.add(record)
    events.process_exited(4242, EXIT, 0)
    (event,) = events.finish()
    return event


def test_counts_codes_and_close_events() -> None:
    event = audit()
    assert event["open_at_signal"] == 4
    assert event["closed_clean"] == 1
    assert event["closed_abnormal"] == 2
    assert event["still_open_at_exit"] == 1
    assert event["codes"] == {"1001": 2, "1006": 2}
    # the browser's close events (wsload.core.browser), in summary.json's close_events shape
    assert event["close_events"] == {
        "1001": {"clean": 1, "unclean": 1},
        "1006": {"clean": 0, "unclean": 2},
    }
    assert (event["at_s"], event["signal"], event["pid"]) == (10.0, "SIGTERM", 4242)
    assert (event["exit_s"], event["exit_status"]) == (2.0, 0)


def test_times_count_from_the_signal() -> None:
    latency = audit()["latency_us"]
    assert isinstance(latency, dict)
    close = latency["close_received"]
    # HdrHistogram keeps 3 significant digits: each value within 0.1 %
    assert close["count"] == 2
    assert (close["min"], close["max"]) == (
        pytest.approx(300_000, rel=1e-3),
        pytest.approx(500_000, rel=1e-3),
    )
    eof = latency["eof"]
    assert eof["count"] == 4
    assert eof["min"] == pytest.approx(200_000, rel=1e-3)
    assert eof["max"] == pytest.approx(2_000_000 - EXIT_TOLERANCE / 2 * 1e6, rel=1e-3)


def test_closes_over_time_is_cumulative_per_code() -> None:
    curves = audit()["closes_over_time"]
    assert isinstance(curves, dict)
    assert curves["1001"][0] == [300_000, 1] and curves["1001"][-1] == [500_000, 2]
    assert curves["1006"][-1][1] == 2


def test_an_event_whose_signal_was_not_sent_has_no_connections() -> None:
    events = EventAudit(((10.0, "SIGTERM"),))
    events.signal_sent(0, SIGNAL, pid=None)
    for record in RECORDS:
        events.add(record)
    (event,) = events.finish()
    assert event["pid"] is None and event["open_at_signal"] == 0 and event["exit_s"] is None


def test_records_are_audited_as_they_come_once_the_signal_is_known() -> None:
    # a deploy's 100,000 swept records are not kept through the reconnects: once every event
    # is announced a record is tallied as it ends; before, only what may be an event's is kept,
    # audited when the event is announced: the same audit either way
    early = EventAudit(((10.0, "SIGTERM"),))
    early.signal_sent(0, SIGNAL, pid=4242)
    late = EventAudit(((10.0, "SIGTERM"),))
    late.origin = 0.0
    for record in RECORDS:
        early.add(record)
        late.add(record)
    assert early._pending == []
    # seq 3 ended before the planned instant (less the tolerance): dropped at once
    assert sorted(rec.seq for rec, _ in late._pending) == [1, 2, 4, 5, 6, 7]
    late.signal_sent(0, SIGNAL, pid=4242)
    assert late._pending == []
    for events in (early, late):
        events.process_exited(4242, EXIT, 0)
    assert early.finish() == late.finish() == [audit()]


def test_a_record_waits_only_for_the_events_not_announced_yet() -> None:
    events = EventAudit(((10.0, "SIGTERM"), (20.0, "SIGTERM")))
    events.origin = 0.0
    events.signal_sent(0, SIGNAL, pid=1)
    both = rec(8, Outcome.SERVER_CLOSED, close_received=20.5, code_received=1001, eof=20.6,
               socket_closed=20.6)  # fmt: skip
    events.add(both)
    assert [waiting for _, waiting in events._pending] == [(1,)]
    events.signal_sent(1, 20.0, pid=2)
    assert events._pending == []
    first, second = events.finish()
    assert first["open_at_signal"] == second["open_at_signal"] == 1
