"""The built-in server's connection phases as data: what a connection is waiting for.

Like the client's close tracker (``wsload.core.closing``), the phases are a table of legal
``(phase, event) -> next phase`` transitions, so that every way a server connection can end is
listed in one place and an impossible step is a loud bug (``IllegalTransition``) instead of a
silently wrong counter. Pure: ``server/policy.py`` fires the events and arms the timers.

Phases after the upgrade::

    open ──reply_later──▶ reply_delay ──end (reply sent)─────────────────────┐
     │                     client Close, answered after close_reply_delay    │
     ├───stay_mute──▶ mute ──end (close_timeout: TCP dropped)────────────────┤
     │                     client Close, close_reply = never                 │
     ├───send_close──▶ server_closing ──end (client's Close, close_timeout)──┤
     │                     close_after, close_after_messages, storm          │
     ├───fail──▶ drain ──end (EOF, close_timeout)────────────────────────────┤
     │                     malformed frame: Close 1002/1007 sent, then FIN   ▼
     └───end──────────────────────────────────────────────────────────────▶ finished
            Close answered at once, close_reply = drop, FIN/RST close_action

``end`` is legal from every phase but ``finished``: the connection may always be done. Each
phase but ``finished`` has a timer (``close_after``, the reply delay, ``close_timeout``); what
its expiry does is ``policy.py``'s ``_ON_DEADLINE`` table.
"""

from __future__ import annotations

from enum import StrEnum

from wsload.core.closing import IllegalTransition

__all__ = ["READS_FRAMES", "TRANSITIONS", "Phase", "PhaseEvent", "next_phase"]


class Phase(StrEnum):
    """What one upgraded server connection is doing."""

    OPEN = "open"
    """Echoing messages and pings; ``close_after`` armed."""
    SERVER_CLOSING = "server_closing"
    """Our Close is out; waiting for the client's (``close_timeout``)."""
    REPLY_DELAY = "reply_delay"
    """The client's Close arrived; the answer waits for ``close_reply_delay``."""
    MUTE = "mute"
    """The client's Close arrived and is never answered (``close_timeout``, then drop)."""
    DRAIN = "drain"
    """A malformed frame was answered with Close 1002/1007 and FIN; reading to EOF."""
    FINISHED = "finished"
    """Nothing more to send or wait for: the socket is closed next."""


class PhaseEvent(StrEnum):
    """What moves a server connection from one phase to the next."""

    SEND_CLOSE = "send_close"
    REPLY_LATER = "reply_later"
    STAY_MUTE = "stay_mute"
    FAIL = "fail"
    END = "end"


_P, _E = Phase, PhaseEvent
TRANSITIONS: dict[tuple[Phase, PhaseEvent], Phase] = {
    (_P.OPEN, _E.SEND_CLOSE): _P.SERVER_CLOSING,
    (_P.OPEN, _E.REPLY_LATER): _P.REPLY_DELAY,
    (_P.OPEN, _E.STAY_MUTE): _P.MUTE,
    (_P.OPEN, _E.FAIL): _P.DRAIN,
    **{(phase, _E.END): _P.FINISHED for phase in _P if phase is not _P.FINISHED},
}
"""Every legal ``(phase, event) -> next phase``; anything else is a bug in the server."""

READS_FRAMES = frozenset({Phase.OPEN, Phase.SERVER_CLOSING})
"""Phases in which the client's bytes are parsed; in the others it has no business sending
more, and what it sends is discarded."""


def next_phase(phase: Phase, event: PhaseEvent) -> Phase:
    """The phase after ``event``.

    Raises:
        IllegalTransition: ``event`` cannot happen in ``phase``.
    """
    try:
        return TRANSITIONS[phase, event]
    except KeyError:
        raise IllegalTransition(phase, event) from None
