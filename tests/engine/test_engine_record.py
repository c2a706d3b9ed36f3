"""The driver's hot-path record builder gives exactly the record of the generic one.

``ConnectionPlan.upgraded_record`` builds an upgraded connection's record with one positional
call in ``ConnectionRecord``'s field order; ``ConnectionPlan.record`` copies the close
tracker's fields by name. Every value here is distinct, so a field out of order shows.
"""

from __future__ import annotations

import trio.testing

from wsload.core.closing import CloseState
from wsload.core.frames import FrameReader
from wsload.core.outcomes import Outcome
from wsload.core.protocol import ClientProtocol
from wsload.core.record import Side
from wsload.engine.context import ConnectionPlan
from wsload.engine.link import Link
from wsload.scenario.model import CloseSpec


def _measured_link() -> Link:
    client, _ = trio.testing.memory_stream_pair()
    proto = ClientProtocol(FrameReader(1 << 20))
    link = Link(client, proto, 5.0)
    t = link.tracker
    t.state = CloseState.CLOSED
    t.close_initiated, t.close_sent, t.close_received, t.eof, t.socket_closed = (
        10.0,
        11.0,
        12.0,
        13.0,
        14.0,
    )
    t.code_sent, t.reason_sent, t.code_received, t.reason_received = 1000, "a", 4001, "b"
    t.close_initiator, t.tcp_closed_first, t.reset = Side.CLIENT, Side.SERVER, True
    link.message_rtts.extend([0.1, 0.2])
    proto.ping_rtts.append(0.3)
    link.step_latencies.append(("step.x", 0.4))
    proto.push_intervals.append(0.5)
    proto.messages_sent, proto.messages_received = 21, 22
    proto.bytes_sent, proto.bytes_received, proto.messages_unmatched = 23, 24, 25
    return link


def test_upgraded_record_equals_the_generic_record() -> None:
    plan = ConnectionPlan(7, 1.5, CloseSpec("clean", "mine", timeout=2.0), attempt=3)
    link = _measured_link()
    proto = link.proto
    fast = plan.upgraded_record(
        Outcome.RESET, "why", link, 2.0, 3.0, 4.0, 5.0, ("permessage-deflate",)
    )
    generic = plan.record(
        Outcome.RESET,
        "why",
        tracker=link.tracker,
        connect_start=2.0,
        connect_end=3.0,
        request_sent=4.0,
        upgraded=5.0,
        message_rtts=(0.1, 0.2),
        ping_rtts=(0.3,),
        step_latencies=(("step.x", 0.4),),
        push_intervals=(0.5,),
        messages_sent=proto.messages_sent,
        messages_received=proto.messages_received,
        bytes_sent=proto.bytes_sent,
        bytes_received=proto.bytes_received,
        messages_unmatched=proto.messages_unmatched,
        extensions=("permessage-deflate",),
        messages_auto_replied=proto.messages_auto_replied,
        inbox_overflow=proto.inbox_overflow,
        subprotocol="",  # upgraded: the server selected none
    )
    assert fast == generic
    assert (fast.seq, fast.label, fast.kind, fast.attempt, fast.scheduled) == (
        7,
        "mine",
        "clean",
        3,
        1.5,
    )
    assert (fast.close_sent, fast.code_received, fast.reset) == (11.0, 4001, True)
    assert fast.http_status is None
