"""The built-in server's connection phases (transitions as data), without I/O."""

from __future__ import annotations

import itertools

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Message

from wsload.core.closing import IllegalTransition
from wsload.core.faults import WsloadBug
from wsload.scenario.model import Delay, ServerConfig
from wsload.server.phases import READS_FRAMES, TRANSITIONS, Phase, PhaseEvent, next_phase
from wsload.server.policy import _ON_DEADLINE, ConnectionPolicy, ServerState

P, E = Phase, PhaseEvent


@pytest.mark.parametrize(("phase", "event"), list(itertools.product(P, E)))
def test_every_phase_event_pair_is_legal_or_raises_naming_the_phase(
    phase: Phase, event: PhaseEvent
) -> None:
    expected = TRANSITIONS.get((phase, event))
    if expected is None:
        with pytest.raises(IllegalTransition, match=f"cannot {event} in state {phase}") as info:
            next_phase(phase, event)
        assert isinstance(info.value, WsloadBug)  # a server bug, never the client's doing
    else:
        assert next_phase(phase, event) is expected


def test_only_an_open_connection_starts_a_close_and_every_phase_can_end() -> None:
    """Whoever starts the close (client Close, our Close, a malformed frame), it happens once,
    from ``open``; after that the only step is ``end``, and nothing follows ``finished``."""
    starts = {key: to for key, to in TRANSITIONS.items() if key[1] is not E.END}
    assert {phase for phase, _ in starts} == {P.OPEN}
    assert set(starts.values()) == {P.SERVER_CLOSING, P.REPLY_DELAY, P.MUTE, P.DRAIN}
    assert all(TRANSITIONS[p, E.END] is P.FINISHED for p in P if p is not P.FINISHED)
    assert not [key for key in TRANSITIONS if key[0] is P.FINISHED]


def test_every_waiting_phase_has_a_timer_and_only_open_and_server_closing_read_frames() -> None:
    assert set(_ON_DEADLINE) == set(P) - {P.FINISHED}
    assert set(READS_FRAMES) == {P.OPEN, P.SERVER_CLOSING}


def _client_frames(*events: object) -> bytes:
    """What a wsproto client sends for ``events`` after its upgrade (masked frames)."""
    client = Connection(ConnectionType.CLIENT)
    return b"".join(client.send(event) for event in events)  # type: ignore[arg-type]


def test_the_policy_is_told_the_time_and_answers_a_close_after_its_delay() -> None:
    """No I/O and no clock: bytes and times in, bytes out and the phase's timer."""
    state = ServerState(ServerConfig(close_reply_delay=Delay(0.25, 0.25), close_after=60.0))
    policy = ConnectionPolicy(state)
    policy.start(_client_frames(Message(data="hi")), 10.0)
    assert policy.deadline == 70.0 and policy.phase is P.OPEN
    echo, policy.out = bytes(policy.out), bytearray()
    assert echo == b"\x81\x02hi"
    policy.receive(_client_frames(CloseConnection(code=4000)), 11.0)
    assert (policy.phase, policy.next_timer, bytes(policy.out)) == (P.REPLY_DELAY, 11.25, b"")
    policy.timer(11.25)
    assert policy.finished and bytes(policy.out) == b"\x88\x02" + (4000).to_bytes(2, "big")
    assert state.stats.close_codes_received[4000] == 1 and state.stats.close_codes_sent[4000] == 1


def test_the_policy_closes_after_its_timer_and_drops_an_unanswered_close() -> None:
    state = ServerState(ServerConfig(close_after=1.0, close_timeout=2.0, close_code=4001))
    policy = ConnectionPolicy(state)
    policy.start(b"", 5.0)
    policy.timer(5.5)  # not yet: nothing happens
    assert policy.phase is P.OPEN and not policy.out
    policy.timer(6.0)
    assert (policy.phase, policy.deadline) == (P.SERVER_CLOSING, 8.0)
    assert bytes(policy.out)[:4] == b"\x88\x02" + (4001).to_bytes(2, "big")
    policy.timer(8.0)
    assert policy.finished and state.stats.close_timeouts == 1
