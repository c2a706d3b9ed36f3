"""The browser's CloseEvent, derived from records the close tracker and ``classify`` produce.

Every outcome appears in the table at least once (a test checks that), each with the
``code``/``wasClean`` pair RFC 6455 §7.1.4-7.1.5 gives for it; docs/outcomes.md shows the same
table to users.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from wsload.core.browser import BrowserCloseEvent, browser_close_event
from wsload.core.closing import CloseTracker, classify
from wsload.core.kinds import CloseKind
from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord

pytestmark = pytest.mark.usefixtures("bounded_sync")

Oc = Outcome


@dataclass(frozen=True)
class Case:
    """One connection's close, step by step, and the event a browser would fire for it.

    Steps: ``send CODE``/``send -`` (our Close, ``-``: no code), ``recv CODE [REASON]``/
    ``recv -``, ``eof``, ``rst`` (the server's TCP close), ``close`` (our socket).
    """

    name: str
    kind: str
    steps: str
    outcome: Outcome
    code: int
    was_clean: bool
    reason: str = ""
    timed_out: bool = False
    stopped: bool = False
    failure: Outcome | None = None


# fmt: off
CASES = [
    Case("clean", "clean", "send 1000; recv 1000 bye; eof; close", Oc.CLEAN, 1000, True, "bye"),
    Case("clean 4000", "clean", "send 4000; recv 4000; eof; close", Oc.CLEAN, 4000, True),
    Case("server close", "clean", "recv 1001 restart; send 1001; eof; close", Oc.SERVER_CLOSED,
         1001, True, "restart"),
    Case("server close without code", "await_server_close", "recv -; send -; eof; close",
         Oc.SERVER_CLOSED, 1005, True),
    # the browser's answer is not needed for wasClean: the TCP close came after the server's Close
    Case("server closed TCP before our answer", "clean", "recv 1001; eof; close",
         Oc.SERVER_CLOSED, 1001, True),
    Case("our Close unanswered", "clean", "send 1000; close", Oc.CLOSE_TIMEOUT, 1006, False,
         timed_out=True),
    # a browser closes TCP itself after the handshake (Chromium: 2 s later) and says clean
    Case("answered, TCP left open", "clean", "send 1000; recv 1000; close", Oc.CLOSE_TIMEOUT,
         1000, True, timed_out=True),
    Case("server's Close, TCP left open", "await_server_close", "recv 1001; send 1001; close",
         Oc.CLOSE_TIMEOUT, 1001, True, timed_out=True),
    Case("abnormal", "clean", "eof; close", Oc.ABNORMAL, 1006, False),
    Case("abnormal after our Close", "clean", "send 1000; eof; close", Oc.ABNORMAL, 1006, False),
    Case("reset", "clean", "rst; close", Oc.RESET, 1006, False),
    Case("reset after the handshake", "clean", "send 1000; recv 1000; rst; close", Oc.RESET,
         1000, False),
    Case("reset after the server's Close", "await_server_close", "recv 4000; send 4000; rst; close",
         Oc.RESET, 4000, False),
    Case("terminate", "terminate", "close", Oc.TERMINATED, 1006, False),
    Case("close_no_wait", "close_no_wait", "send 1000; close", Oc.CLOSE_NO_WAIT, 1006, False),
    Case("no server close, terminated", "await_server_close", "close", Oc.NO_SERVER_CLOSE, 1006,
         False, timed_out=True),
    Case("no server close, clean fallback", "await_server_close",
         "send 1000; recv 1000; eof; close", Oc.NO_SERVER_CLOSE, 1000, True, timed_out=True),
    Case("server dropped", "ignore_server_close", "recv 1001; eof; close", Oc.SERVER_DROPPED,
         1001, True),
    Case("server dropped by a reset", "ignore_server_close", "recv 1001; rst; close",
         Oc.SERVER_DROPPED, 1001, False),
    Case("ignored, TCP left open", "ignore_server_close", "recv 1000; close", Oc.CLOSE_TIMEOUT,
         1000, True, timed_out=True),
    Case("invalid rejected 1002", "invalid_close", "send 1005; recv 1002; eof; close",
         Oc.INVALID_REJECTED, 1002, True),
    Case("invalid rejected by a drop", "invalid_close", "send 1005; eof; close",
         Oc.INVALID_REJECTED, 1006, False),
    Case("invalid accepted", "invalid_close", "send 1005; recv 1000; eof; close",
         Oc.INVALID_ACCEPTED, 1000, True),
    Case("protocol error", "clean", "send 1002; close", Oc.PROTOCOL_ERROR, 1006, False,
         failure=Oc.PROTOCOL_ERROR),
    Case("protocol error after a Close", "clean", "recv 1000; send 1002; close",
         Oc.PROTOCOL_ERROR, 1006, False, failure=Oc.PROTOCOL_ERROR),
    Case("message timeout", "clean", "close", Oc.MESSAGE_TIMEOUT, 1006, False,
         failure=Oc.MESSAGE_TIMEOUT),
    Case("TLS error after the upgrade", "clean", "close", Oc.TLS_ERROR, 1006, False,
         failure=Oc.TLS_ERROR),
    Case("interrupted", "await_server_close", "close", Oc.INTERRUPTED, 1006, False, stopped=True),
    Case("wsload's own error (the runner's record)", "clean", "", Oc.INTERNAL_ERROR, 1006, False),
    *(
        Case(f"{outcome} before the upgrade", "clean", "", outcome, 1006, False)
        for outcome in (
            Oc.REFUSED, Oc.CONNECT_TIMEOUT, Oc.CONNECT_ERROR, Oc.HANDSHAKE_REJECTED,
            Oc.HANDSHAKE_TIMEOUT, Oc.HANDSHAKE_INVALID, Oc.TLS_ERROR, Oc.LOCAL_RESOURCE,
        )
    ),
]
# fmt: on


def _code(text: str) -> int | None:
    return None if text == "-" else int(text)


def record_of(case: Case) -> ConnectionRecord:
    """The record the driver would make: the steps through a tracker, then ``classify``."""
    if not case.steps:
        return ConnectionRecord(
            seq=1,
            label=case.kind,
            kind=case.kind,
            outcome=case.outcome,
            scheduled=0.0,
            socket_closed=0.1,
        )
    t = CloseTracker()
    for now, step in enumerate(case.steps.split("; "), start=1):
        verb, _, rest = step.partition(" ")
        code, _, reason = rest.partition(" ")
        if verb == "send":
            t.send_close(float(now), _code(code), reason)
        elif verb == "recv":
            t.receive_close(float(now), _code(code), reason)
        elif verb in ("eof", "rst"):
            t.receive_eof(float(now), reset=verb == "rst")
        else:
            t.close_socket(float(now))
    failure = None if case.failure is None else (case.failure, "test")
    outcome, _ = classify(
        CloseKind(case.kind), t, timed_out=case.timed_out, stopped=case.stopped, failure=failure
    )
    return ConnectionRecord(
        seq=1,
        label=case.kind,
        kind=case.kind,
        outcome=outcome,
        scheduled=0.0,
        upgraded=0.5,
        close_initiated=t.close_initiated,
        close_sent=t.close_sent,
        close_received=t.close_received,
        eof=t.eof,
        socket_closed=t.socket_closed,
        code_sent=t.code_sent,
        reason_sent=t.reason_sent,
        code_received=t.code_received,
        reason_received=t.reason_received,
        close_initiator=t.close_initiator,
        tcp_closed_first=t.tcp_closed_first,
        reset=t.reset,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_close_event_of_each_outcome(case: Case) -> None:
    record = record_of(case)
    assert record.outcome is case.outcome
    assert browser_close_event(record) == BrowserCloseEvent(case.code, case.reason, case.was_clean)


def test_the_table_covers_every_outcome() -> None:
    assert {case.outcome for case in CASES} == set(Outcome)


def test_clean_needs_a_received_close_and_no_reset() -> None:
    for case in CASES:
        record = record_of(case)
        if browser_close_event(record).was_clean:
            assert record.close_received is not None and not record.reset, case.name


def test_str_reads_like_javascript() -> None:
    event = BrowserCloseEvent(1001, "bye", False)
    assert str(event) == "CloseEvent(code=1001, reason='bye', wasClean=false)"
