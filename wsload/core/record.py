"""The frozen per-connection record: everything measured about one connection.

Timestamps are seconds on the run's single monotonic clock (``trio.current_time()``), ``None``
when the step did not happen. Metrics (docs/results.md) are differences of these stamps,
computed in ``wsload.metrics``; the record itself stays plain data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wsload.core.codes import label as code_label
from wsload.core.outcomes import Outcome

__all__ = ["ConnectionRecord", "Side"]


class Side(StrEnum):
    """Which endpoint did something first (sent Close, closed TCP)."""

    CLIENT = "client"
    SERVER = "server"


@dataclass(frozen=True, slots=True, init=False)
class ConnectionRecord:
    """One connection from intended start to socket gone.

    Attributes:
        seq: 1-based connection number within the run (``{seq}`` in URLs).
        label: close behaviour label (``kind`` or the ``[[close]]`` entry's ``name``).
        kind: close behaviour kind.
        outcome: how it ended (exactly one per connection).
        scheduled: intended start; open-loop latencies count from here.
        connect_start / connect_end: TCP connect (and TLS) started / done.
        request_sent / upgraded: upgrade request fully written / 101 parsed and valid.
        close_initiated: the moment the close behaviour began (or the server's Close arrived).
        close_sent: our Close frame written (None: never sent).
        close_received: peer's Close frame parsed.
        eof: TCP EOF (or reset) from the server observed.
        socket_closed: our socket closed; the connection's end.
        message_rtts / ping_rtts: seconds, one per echoed message / answered ping.
        step_latencies: ``(metric, seconds)`` per matched named expect step (``step.<name>``).
        push_intervals: seconds between consecutive server pushes (messages not awaited).
        messages_sent / bytes_sent: data messages we sent (reflections too), payload bytes.
        messages_received / bytes_received: complete data messages received, payload bytes
            (also those after the session: during the hold and the close).
        messages_unmatched: data messages that did not match the expect step awaiting them.
        code_sent / reason_sent: what our Close carried (None: no Close or no code).
        code_received / reason_received: what the peer's Close carried.
        http_status: upgrade response status when not 101.
        close_initiator: who sent the first Close frame.
        tcp_closed_first: who closed TCP first (``server`` is the RFC's clean order).
        reset: the server's TCP close (``eof``) was a reset (RST), not a FIN.
        extensions: the WebSocket extensions the server accepted (``permessage-deflate``).
        detail: a short human explanation for non-clean outcomes.
        attempt: the logical client's attempt number (``[reconnect]``: 1, 2, ...; else 1).
        censored: ``(metric, seconds)`` per session measurement that started and never got its
            end (an expect or ping step that timed out): the seconds waited, a lower bound.
            The close phases' censored measurements are read from the stamps
            (``wsload.metrics.samples.censored_samples``).
        messages_auto_replied: data messages a ``[[session.on]]`` rule took and answered.
        inbox_overflow: data messages dropped from the script's full inbox, unread.
        subprotocol: the subprotocol the server selected (``""``: none; None: not upgraded).
    """

    seq: int
    label: str
    kind: str
    outcome: Outcome
    scheduled: float
    connect_start: float | None = None
    connect_end: float | None = None
    request_sent: float | None = None
    upgraded: float | None = None
    close_initiated: float | None = None
    close_sent: float | None = None
    close_received: float | None = None
    eof: float | None = None
    socket_closed: float | None = None
    message_rtts: tuple[float, ...] = ()
    ping_rtts: tuple[float, ...] = ()
    step_latencies: tuple[tuple[str, float], ...] = ()
    push_intervals: tuple[float, ...] = ()
    messages_sent: int = 0
    messages_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    messages_unmatched: int = 0
    code_sent: int | None = None
    reason_sent: str | None = None
    code_received: int | None = None
    reason_received: str | None = None
    http_status: int | None = None
    close_initiator: Side | None = None
    tcp_closed_first: Side | None = None
    reset: bool = False
    extensions: tuple[str, ...] = ()
    detail: str = ""
    attempt: int = 1
    censored: tuple[tuple[str, float], ...] = ()
    messages_auto_replied: int = 0
    inbox_overflow: int = 0
    subprotocol: str | None = None

    def __init__(
        self,
        seq: int,
        label: str,
        kind: str,
        outcome: Outcome,
        scheduled: float,
        connect_start: float | None = None,
        connect_end: float | None = None,
        request_sent: float | None = None,
        upgraded: float | None = None,
        close_initiated: float | None = None,
        close_sent: float | None = None,
        close_received: float | None = None,
        eof: float | None = None,
        socket_closed: float | None = None,
        message_rtts: tuple[float, ...] = (),
        ping_rtts: tuple[float, ...] = (),
        step_latencies: tuple[tuple[str, float], ...] = (),
        push_intervals: tuple[float, ...] = (),
        messages_sent: int = 0,
        messages_received: int = 0,
        bytes_sent: int = 0,
        bytes_received: int = 0,
        messages_unmatched: int = 0,
        code_sent: int | None = None,
        reason_sent: str | None = None,
        code_received: int | None = None,
        reason_received: str | None = None,
        http_status: int | None = None,
        close_initiator: Side | None = None,
        tcp_closed_first: Side | None = None,
        reset: bool = False,
        extensions: tuple[str, ...] = (),
        detail: str = "",
        attempt: int = 1,
        censored: tuple[tuple[str, float], ...] = (),
        messages_auto_replied: int = 0,
        inbox_overflow: int = 0,
        subprotocol: str | None = None,
    ) -> None:
        # Written out, field for field, instead of the one ``@dataclass`` generates: that one
        # is interpreted even in the compiled build (mypyc leaves a dataclass's generated
        # methods to the ``dataclasses`` module), and a frozen one sets each field through
        # ``object.__setattr__`` from Python: ≈ 8 µs for this record, once per connection,
        # against ≈ 0.4 µs compiled. tests/core/test_native_init.py checks that the signature
        # is the dataclass's (names, order, defaults).
        object.__setattr__(self, "seq", seq)
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "outcome", outcome)
        object.__setattr__(self, "scheduled", scheduled)
        object.__setattr__(self, "connect_start", connect_start)
        object.__setattr__(self, "connect_end", connect_end)
        object.__setattr__(self, "request_sent", request_sent)
        object.__setattr__(self, "upgraded", upgraded)
        object.__setattr__(self, "close_initiated", close_initiated)
        object.__setattr__(self, "close_sent", close_sent)
        object.__setattr__(self, "close_received", close_received)
        object.__setattr__(self, "eof", eof)
        object.__setattr__(self, "socket_closed", socket_closed)
        object.__setattr__(self, "message_rtts", message_rtts)
        object.__setattr__(self, "ping_rtts", ping_rtts)
        object.__setattr__(self, "step_latencies", step_latencies)
        object.__setattr__(self, "push_intervals", push_intervals)
        object.__setattr__(self, "messages_sent", messages_sent)
        object.__setattr__(self, "messages_received", messages_received)
        object.__setattr__(self, "bytes_sent", bytes_sent)
        object.__setattr__(self, "bytes_received", bytes_received)
        object.__setattr__(self, "messages_unmatched", messages_unmatched)
        object.__setattr__(self, "code_sent", code_sent)
        object.__setattr__(self, "reason_sent", reason_sent)
        object.__setattr__(self, "code_received", code_received)
        object.__setattr__(self, "reason_received", reason_received)
        object.__setattr__(self, "http_status", http_status)
        object.__setattr__(self, "close_initiator", close_initiator)
        object.__setattr__(self, "tcp_closed_first", tcp_closed_first)
        object.__setattr__(self, "reset", reset)
        object.__setattr__(self, "extensions", extensions)
        object.__setattr__(self, "detail", detail)
        object.__setattr__(self, "attempt", attempt)
        object.__setattr__(self, "censored", censored)
        object.__setattr__(self, "messages_auto_replied", messages_auto_replied)
        object.__setattr__(self, "inbox_overflow", inbox_overflow)
        object.__setattr__(self, "subprotocol", subprotocol)

    def __str__(self) -> str:
        parts = [f"#{self.seq} {self.label}: {self.outcome}"]
        if self.code_sent is not None:
            parts.append(f"sent {code_label(self.code_sent)}")
        if self.code_received is not None:
            parts.append(f"received {code_label(self.code_received)}")
        elif self.close_received is not None:
            parts.append("received Close without code")
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.tcp_closed_first is not None and self.eof is not None:
            base = self.close_received or self.close_sent or self.close_initiated
            after = f" after {(self.eof - base) * 1e3:.2f} ms" if base is not None else ""
            parts.append(f"{self.tcp_closed_first} closed TCP{after}")
        if self.detail:
            parts.append(self.detail)
        return "; ".join(parts)
