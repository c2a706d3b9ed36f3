"""The built-in server's connection phases (transitions as data), without I/O."""

from __future__ import annotations

import itertools

import pytest

from wsload.core.closing import IllegalTransition
from wsload.core.faults import WsloadBug
from wsload.server.connection import _ON_DEADLINE
from wsload.server.phases import READS_FRAMES, TRANSITIONS, Phase, PhaseEvent, next_phase

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
