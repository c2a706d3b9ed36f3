"""The closed set of ways a connection can end. Every connection gets exactly one.

docs/outcomes.md explains each with what causes it; ``DESCRIPTIONS`` is its source.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DESCRIPTIONS", "Outcome"]


class Outcome(StrEnum):
    """How one connection ended. Values are the names used in summary.json."""

    CLEAN = "clean"
    CLOSE_TIMEOUT = "close_timeout"
    ABNORMAL = "abnormal"
    TERMINATED = "terminated"
    CLOSE_NO_WAIT = "close_no_wait"
    SERVER_CLOSED = "server_closed"
    NO_SERVER_CLOSE = "no_server_close"
    SERVER_DROPPED = "server_dropped"
    INVALID_REJECTED = "invalid_rejected"
    INVALID_ACCEPTED = "invalid_accepted"
    REFUSED = "refused"
    CONNECT_TIMEOUT = "connect_timeout"
    CONNECT_ERROR = "connect_error"
    HANDSHAKE_REJECTED = "handshake_rejected"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    HANDSHAKE_INVALID = "handshake_invalid"
    TLS_ERROR = "tls_error"
    MESSAGE_TIMEOUT = "message_timeout"
    RESET = "reset"
    PROTOCOL_ERROR = "protocol_error"
    LOCAL_RESOURCE = "local_resource"
    INTERRUPTED = "interrupted"
    INTERNAL_ERROR = "internal_error"


DESCRIPTIONS: dict[Outcome, str] = {
    Outcome.CLEAN: "Our Close was answered by the peer's Close and the server closed TCP in time.",
    Outcome.CLOSE_TIMEOUT: "A close phase (peer's Close or TCP EOF) did not finish within the "
    "behaviour's timeout; the client force-terminated the socket.",
    Outcome.ABNORMAL: "The server closed TCP (EOF) without sending a Close frame: 1006 as the "
    "client sees it.",
    Outcome.TERMINATED: "The client destroyed the socket without a Close (terminate kind).",
    Outcome.CLOSE_NO_WAIT: "The client sent Close and closed TCP at once (close_no_wait kind).",
    Outcome.SERVER_CLOSED: "The server started the close handshake; the client answered with "
    "the same code and the server closed TCP.",
    Outcome.NO_SERVER_CLOSE: "The behaviour waited for the server's Close and it never came.",
    Outcome.SERVER_DROPPED: "ignore_server_close: the server sent Close, got no answer, and "
    "dropped TCP (server_close_timeout measures how long it waited).",
    Outcome.INVALID_REJECTED: "invalid_close: the server refused the malformed Close (answered "
    "1002/1007 or dropped TCP).",
    Outcome.INVALID_ACCEPTED: "invalid_close: the server answered the malformed Close as if it "
    "were valid.",
    Outcome.REFUSED: "TCP connect was refused (nothing listening, or backlog full with RST).",
    Outcome.CONNECT_TIMEOUT: "TCP connect did not complete within connect_timeout.",
    Outcome.CONNECT_ERROR: "TCP connect failed for another reason (unreachable, DNS, ...).",
    Outcome.HANDSHAKE_REJECTED: "The server answered the upgrade with a non-101 HTTP status.",
    Outcome.HANDSHAKE_TIMEOUT: "No complete 101 response within handshake_timeout.",
    Outcome.HANDSHAKE_INVALID: "The 101 response broke RFC 6455 §4 (accept key, headers, "
    "unrequested subprotocol or extension) or TCP closed mid-handshake.",
    Outcome.TLS_ERROR: "The TLS handshake failed (certificate, protocol).",
    Outcome.MESSAGE_TIMEOUT: "An echo or pong did not arrive within message_timeout, or a "
    "session script step (expect, receive, ping) timed out; the detail names the step.",
    Outcome.RESET: "The server reset the TCP connection (RST) outside a terminate.",
    Outcome.PROTOCOL_ERROR: "The server sent bytes that break RFC 6455 framing, or a message "
    "over max_message_size; the client failed the connection.",
    Outcome.LOCAL_RESOURCE: "The load generator ran out of a local resource (EMFILE: file "
    "descriptors, EADDRNOTAVAIL: ephemeral ports).",
    Outcome.INTERRUPTED: "wsload itself was stopped (SIGINT/SIGTERM) while the connection was "
    "open.",
    Outcome.INTERNAL_ERROR: "An error inside wsload (a bug, not the target's doing) ended the "
    "connection; the detail names the exception and where it was raised. The run goes on and "
    "its verdict is inconclusive.",
}
