"""The core's own exceptions: the peer broke the protocol, or wsload broke its own rules.

They live in the core because the core raises them (the frame reader, the upgrade parser, the
close state machine) and the core imports nothing above it; :mod:`wsload.errors` shows where
they sit in the tool's one exception tree.
"""

from __future__ import annotations

from wsload.core.outcomes import Outcome

__all__ = ["ProtocolViolation", "WsloadBug"]


class ProtocolViolation(Exception):
    """The peer broke the protocol; the driver records ``outcome`` and, when set, fails the
    connection with Close ``code``.

    Attributes:
        outcome: how the driver classifies the connection.
        code: the Close code to fail with (1002, 1007, 1009), None when no Close is due
            (a malformed upgrade response: there is no WebSocket yet).
    """

    def __init__(
        self, message: str, outcome: Outcome = Outcome.PROTOCOL_ERROR, code: int | None = None
    ) -> None:
        self.outcome = outcome
        self.code = code
        super().__init__(message)


class WsloadBug(Exception):
    """wsload broke one of its own invariants (never the peer's or the user's doing)."""
