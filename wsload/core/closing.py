"""The close handshake as data: states, legal transitions, stamps, and the outcome they mean.

Why a separate machine instead of wsproto's connection state: wsload must do what a correct
library refuses to do (never answer a Close, close TCP with a Close unanswered, send a
malformed Close) and still know precisely what happened and when. :class:`CloseTracker` records
every close step with its timestamp and who did it; :func:`classify` turns that record, plus
what the close behaviour observed (its deadline passed, wsload was stopping, the peer broke the
protocol), into exactly one :class:`~wsload.core.outcomes.Outcome`. Both are pure: the driver
feeds them times from its one clock.

The states, after the upgrade (RFC 6455 §7)::

    open ──send_close──▶ close_sent ──receive_close──▶ closing ──receive_eof──▶ peer_gone
      │  ──receive_close─▶ close_received ──send_close──▶ closing                  │
      │                                                                         close_socket
      └── receive_eof ──▶ peer_gone (from any state but closed)  ──close_socket──▶ closed

``close_socket`` is legal from every state but ``closed``: the client may always drop TCP.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wsload.core.codes import label
from wsload.core.faults import WsloadBug
from wsload.core.kinds import CloseKind
from wsload.core.outcomes import Outcome
from wsload.core.record import Side

__all__ = [
    "TRANSITIONS",
    "CloseState",
    "CloseTracker",
    "HandshakeEvent",
    "IllegalTransition",
    "classify",
]


class CloseState(StrEnum):
    """Where the close handshake of one upgraded connection stands."""

    OPEN = "open"
    CLOSE_SENT = "close_sent"
    CLOSE_RECEIVED = "close_received"
    CLOSING = "closing"
    """Both Close frames exchanged; TCP still open."""
    PEER_GONE = "peer_gone"
    """The server closed (or reset) TCP; our socket is still open."""
    CLOSED = "closed"


class HandshakeEvent(StrEnum):
    """What can happen to a connection's close handshake."""

    SEND_CLOSE = "send_close"
    RECEIVE_CLOSE = "receive_close"
    RECEIVE_EOF = "receive_eof"
    CLOSE_SOCKET = "close_socket"


_S, _E = CloseState, HandshakeEvent
TRANSITIONS: dict[tuple[CloseState, HandshakeEvent], CloseState] = {
    (_S.OPEN, _E.SEND_CLOSE): _S.CLOSE_SENT,
    (_S.OPEN, _E.RECEIVE_CLOSE): _S.CLOSE_RECEIVED,
    (_S.CLOSE_SENT, _E.RECEIVE_CLOSE): _S.CLOSING,
    (_S.CLOSE_RECEIVED, _E.SEND_CLOSE): _S.CLOSING,
    **{
        (state, _E.RECEIVE_EOF): _S.PEER_GONE
        for state in (_S.OPEN, _S.CLOSE_SENT, _S.CLOSE_RECEIVED, _S.CLOSING)
    },
    **{(state, _E.CLOSE_SOCKET): _S.CLOSED for state in _S if state is not _S.CLOSED},
}
"""Every legal ``(state, event) -> next state``; anything else is a bug in the caller."""


class IllegalTransition(WsloadBug):
    """An event that cannot happen in the current state (a driver bug, never the peer's).

    Raised by every transition table (this one, the built-in server's phases).
    """

    def __init__(self, state: StrEnum, event: StrEnum) -> None:
        self.state = state
        self.event = event
        super().__init__(f"cannot {event} in state {state}")


@dataclass(slots=True, init=False)
class CloseTracker:
    """The close handshake of one connection: state, stamps, codes, and who went first.

    Timestamps are seconds on the driver's clock; ``None`` means "did not happen". Field names
    match :class:`~wsload.core.record.ConnectionRecord` so the driver copies them over.
    """

    state: CloseState = CloseState.OPEN
    close_initiated: float | None = None
    close_sent: float | None = None
    close_received: float | None = None
    eof: float | None = None
    socket_closed: float | None = None
    code_sent: int | None = None
    reason_sent: str | None = None
    code_received: int | None = None
    reason_received: str | None = None
    close_initiator: Side | None = None
    tcp_closed_first: Side | None = None
    reset: bool = False
    """The server's TCP close was a reset (RST), not a FIN."""
    eof_state: CloseState | None = None
    """The state the connection was in when the server's EOF (or reset) arrived."""

    def __init__(
        self,
        state: CloseState = CloseState.OPEN,
        close_initiated: float | None = None,
        close_sent: float | None = None,
        close_received: float | None = None,
        eof: float | None = None,
        socket_closed: float | None = None,
        code_sent: int | None = None,
        reason_sent: str | None = None,
        code_received: int | None = None,
        reason_received: str | None = None,
        close_initiator: Side | None = None,
        tcp_closed_first: Side | None = None,
        reset: bool = False,
        eof_state: CloseState | None = None,
    ) -> None:
        # written out: see wsload.core.record.ConnectionRecord.__init__
        self.state = state
        self.close_initiated = close_initiated
        self.close_sent = close_sent
        self.close_received = close_received
        self.eof = eof
        self.socket_closed = socket_closed
        self.code_sent = code_sent
        self.reason_sent = reason_sent
        self.code_received = code_received
        self.reason_received = reason_received
        self.close_initiator = close_initiator
        self.tcp_closed_first = tcp_closed_first
        self.reset = reset
        self.eof_state = eof_state

    def _go(self, event: HandshakeEvent) -> None:
        try:
            self.state = TRANSITIONS[self.state, event]
        except KeyError:
            raise IllegalTransition(self.state, event) from None

    @property
    def can_send_close(self) -> bool:
        """Whether a Close frame may still go out (none sent yet, TCP not gone)."""
        return self.state in (CloseState.OPEN, CloseState.CLOSE_RECEIVED)

    def initiate(self, now: float) -> float:
        """Stamp the start of the close (first call wins); returns the stamp."""
        if self.close_initiated is None:
            self.close_initiated = now
        return self.close_initiated

    def send_close(self, now: float, code: int | None, reason: str | None) -> None:
        """Our Close frame was written."""
        self._go(HandshakeEvent.SEND_CLOSE)
        self.initiate(now)
        self.close_sent = now
        self.code_sent = code
        self.reason_sent = reason
        if self.close_initiator is None:
            self.close_initiator = Side.CLIENT

    def unsend_close(self) -> None:
        """Take back the :meth:`send_close` just recorded: its frame could not be written.

        Legal only right after ``send_close`` (nothing else happened since): the protocol
        object records a Close when it builds it and calls this when the write then fails.
        """
        back = {_S.CLOSE_SENT: _S.OPEN, _S.CLOSING: _S.CLOSE_RECEIVED}.get(self.state)
        if back is None or self.close_sent is None:
            raise IllegalTransition(self.state, HandshakeEvent.SEND_CLOSE)
        self.state = back
        self.close_sent = self.code_sent = self.reason_sent = None
        if self.close_received is None:
            self.close_initiator = None

    def receive_close(self, now: float, code: int | None, reason: str) -> None:
        """The server's Close frame was parsed (``code`` None: empty payload, i.e. 1005)."""
        self._go(HandshakeEvent.RECEIVE_CLOSE)
        self.initiate(now)
        self.close_received = now
        self.code_received = code
        self.reason_received = reason
        if self.close_initiator is None:
            self.close_initiator = Side.SERVER

    def receive_eof(self, now: float, *, reset: bool = False) -> None:
        """The server closed TCP (FIN, or RST when ``reset``)."""
        self.eof_state = self.state
        self._go(HandshakeEvent.RECEIVE_EOF)
        self.eof = now
        self.reset = reset
        if self.tcp_closed_first is None:
            self.tcp_closed_first = Side.SERVER

    def close_socket(self, now: float) -> None:
        """Our socket was closed: the connection's end."""
        self._go(HandshakeEvent.CLOSE_SOCKET)
        self.socket_closed = now
        if self.tcp_closed_first is None:
            self.tcp_closed_first = Side.CLIENT

    def __str__(self) -> str:
        """``sent 1000 (Normal Closure); then received 1000 (Normal Closure); server closed
        TCP`` — the order in which things happened."""
        steps: list[tuple[float, int, str]] = []
        if self.close_sent is not None:
            what = "no code" if self.code_sent is None else label(self.code_sent)
            steps.append((self.close_sent, 0, f"sent {what}"))
        if self.close_received is not None:
            what = "no code" if self.code_received is None else label(self.code_received)
            steps.append((self.close_received, 1, f"received {what}"))
        if self.eof is not None:
            steps.append((self.eof, 2, "server reset TCP" if self.reset else "server closed TCP"))
        if self.socket_closed is not None and self.tcp_closed_first is Side.CLIENT:
            steps.append((self.socket_closed, 3, "client closed TCP"))
        if not steps:
            return f"no close ({self.state})"
        steps.sort()
        return "; then ".join(text for _, _, text in steps)


_REJECTING = frozenset({1002, 1007})


def classify(
    kind: CloseKind,
    t: CloseTracker,
    *,
    timed_out: bool = False,
    stopped: bool = False,
    failure: tuple[Outcome, str] | None = None,
) -> tuple[Outcome, str]:
    """The one outcome of an upgraded connection, with a short human detail.

    Args:
        kind: the close behaviour (``CloseSpec.kind``).
        t: the connection's close record.
        timed_out: a wait of the close behaviour reached its deadline.
        stopped: wsload's graceful stop cut a wait for the server's Close short.
        failure: a failure that ended the connection outside the close handshake's normal
            course (``protocol_error``, ``message_timeout``, ``tls_error``), with its detail.

    Order matters: the server's answer to an invalid Close is what ``invalid_close``
    measures, even when that answer is itself invalid; a TCP close with no Close frame either
    way is ``abnormal`` (or ``reset``) whatever the behaviour; a server-initiated close wins
    over the behaviour that never got to run.
    """
    if (
        kind == CloseKind.INVALID_CLOSE
        and t.close_initiator is Side.CLIENT
        and t.close_received is not None
    ):
        return _invalid_answer(t)
    if failure is not None:
        return failure
    if t.eof_state is CloseState.OPEN:
        if t.reset:
            return Outcome.RESET, "server reset TCP without a Close frame"
        return Outcome.ABNORMAL, "server closed TCP without a Close frame (1006)"
    if stopped:
        return Outcome.INTERRUPTED, "wsload stopped while waiting for the server's Close"
    if t.close_initiator is Side.SERVER:
        return _server_initiated(kind, t, timed_out)
    if kind == CloseKind.TERMINATE:
        return Outcome.TERMINATED, ""
    if kind == CloseKind.CLOSE_NO_WAIT:
        return Outcome.CLOSE_NO_WAIT, ""
    if kind in (CloseKind.AWAIT_SERVER_CLOSE, CloseKind.IGNORE_SERVER_CLOSE):
        return Outcome.NO_SERVER_CLOSE, _fallback_detail(t)
    if kind == CloseKind.INVALID_CLOSE:
        if t.eof is not None:
            return Outcome.INVALID_REJECTED, "server dropped TCP without a Close"
        return Outcome.CLOSE_TIMEOUT, "server ignored the invalid Close"
    return _client_initiated(t, timed_out)


def _invalid_answer(t: CloseTracker) -> tuple[Outcome, str]:
    code = t.code_received
    if code is not None and code in _REJECTING:
        return Outcome.INVALID_REJECTED, f"server answered {label(code)}"
    what = "an empty Close" if code is None else label(code)
    return Outcome.INVALID_ACCEPTED, f"server answered {what}"


def _server_initiated(kind: CloseKind, t: CloseTracker, timed_out: bool) -> tuple[Outcome, str]:
    if kind == CloseKind.IGNORE_SERVER_CLOSE:
        if t.eof is not None:
            how = "reset" if t.reset else "closed"
            return Outcome.SERVER_DROPPED, f"server {how} TCP with its Close unanswered"
        return Outcome.CLOSE_TIMEOUT, "server sent Close but never dropped TCP"
    if t.eof is None:
        if t.close_sent is None and not timed_out:
            return Outcome.CLOSE_TIMEOUT, "server sent Close; our answer could not be written"
        return Outcome.CLOSE_TIMEOUT, "server sent Close but did not close TCP in time"
    if t.reset:
        return Outcome.RESET, "server reset TCP after its Close"
    if t.close_sent is None:
        return Outcome.SERVER_CLOSED, "server closed TCP before our answer went out"
    return Outcome.SERVER_CLOSED, ""


def _client_initiated(t: CloseTracker, timed_out: bool) -> tuple[Outcome, str]:
    if t.close_received is not None and t.eof is not None:
        if t.reset:
            return Outcome.RESET, "server reset TCP after the close handshake"
        return Outcome.CLEAN, ""
    if t.eof is not None:
        if t.reset:
            return Outcome.RESET, "server reset TCP instead of answering our Close"
        return Outcome.ABNORMAL, "server closed TCP without answering our Close"
    if t.close_received is not None:
        return Outcome.CLOSE_TIMEOUT, "server answered our Close but did not close TCP in time"
    if t.close_sent is None:
        return Outcome.CLOSE_TIMEOUT, "our Close could not be written in time"
    return Outcome.CLOSE_TIMEOUT, "server did not answer our Close in time"


def _fallback_detail(t: CloseTracker) -> str:
    if t.close_sent is None:
        return "no Close from the server; terminated"
    if t.close_received is not None and t.eof is not None:
        return "no Close from the server; our fallback Close completed"
    return "no Close from the server; our fallback Close did not complete"
