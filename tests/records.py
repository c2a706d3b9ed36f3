"""Connection records with round, known stamps, for tests that need a record without a run
(the collector's, the Prometheus exporter's)."""

from __future__ import annotations

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side

__all__ = ["clean_record", "terminated_record"]


def clean_record(
    seq: int = 1,
    *,
    label: str = "clean",
    t: float = 10.0,
    close_rtt: float = 0.0025,
    teardown: float = 0.0004,
    code_sent: int | None = 1000,
    code_received: int | None = 1000,
) -> ConnectionRecord:
    """A client-initiated clean close with round, known stamps (seconds)."""
    return ConnectionRecord(
        seq=seq,
        label=label,
        kind="clean",
        outcome=Outcome.CLEAN,
        scheduled=t,
        connect_start=t + 0.001,
        connect_end=t + 0.0012,
        request_sent=t + 0.0013,
        upgraded=t + 0.0019,
        close_initiated=t + 0.01,
        close_sent=t + 0.01,
        close_received=t + 0.01 + close_rtt,
        eof=t + 0.01 + close_rtt + teardown,
        socket_closed=t + 0.01 + close_rtt + teardown + 0.0001,
        message_rtts=(0.0002, 0.0003),
        ping_rtts=(0.0001,),
        code_sent=code_sent,
        reason_sent="bye",
        code_received=code_received,
        close_initiator=Side.CLIENT,
        tcp_closed_first=Side.SERVER,
    )


def terminated_record(
    seq: int = 2, *, label: str = "terminate", t: float = 10.0
) -> ConnectionRecord:
    """A client-side terminate (TCP closed without a Close frame) with round stamps."""
    return ConnectionRecord(
        seq=seq,
        label=label,
        kind="terminate",
        outcome=Outcome.TERMINATED,
        scheduled=t,
        connect_start=t,
        connect_end=t + 0.0002,
        request_sent=t + 0.0003,
        upgraded=t + 0.0008,
        close_initiated=t + 0.005,
        socket_closed=t + 0.0051,
        tcp_closed_first=Side.CLIENT,
    )
