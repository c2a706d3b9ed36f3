"""The close kinds of docs/design.md §3 and everything known about each, in one table.

Why one table: a close kind's expected ending, its clean ending, its scenario keys, its
default timeout, its headline close figure and whether the reference engine can do it are
needed by the parser, the metrics, the summary, the comparison and the reference engine; kept
in one place, a new kind is added once, and no forgotten list makes it silently "unexpected".
Every such list is derived from :data:`KINDS` (``EXPECTED_OUTCOMES``, ``CLEAN_OUTCOMES``,
``CLOSE_KIND_KEYS``, ``REFERENCE_KINDS``, ``CLOSE_METRIC``), and code branches on
:class:`CloseKind` members, never on text. The values are the TOML spelling and the
summary.json keys: they never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wsload.core.outcomes import Outcome

__all__ = ["KINDS", "CloseKind", "KindInfo"]


class CloseKind(StrEnum):
    """How the client ends a connection (``[[close]] kind``)."""

    CLEAN = "clean"
    TERMINATE = "terminate"
    CLOSE_NO_WAIT = "close_no_wait"
    AWAIT_SERVER_CLOSE = "await_server_close"
    IGNORE_SERVER_CLOSE = "ignore_server_close"
    INVALID_CLOSE = "invalid_close"


@dataclass(frozen=True, slots=True)
class KindInfo:
    """What one close kind is built for and what it accepts.

    Attributes:
        expected: the ending the kind is built for (an outcome that needs no explanation).
        clean: the ending docs/design.md §3 calls clean ("clean when"); None: never clean.
        keys: scenario keys the kind accepts besides ``kind``, ``name`` and ``weight``.
        timeout: the default of its ``timeout`` key, seconds (None: it has none).
        reference: the trio-websocket reference engine can do it.
        close_metric: the kind's one headline close figure (docs/outcomes.md, "One close
            figure per behaviour").
    """

    expected: Outcome
    clean: Outcome | None
    keys: tuple[str, ...]
    timeout: float | None = None
    reference: bool = False
    close_metric: str = "close_total"


_K = CloseKind
KINDS: dict[CloseKind, KindInfo] = {
    _K.CLEAN: KindInfo(
        Outcome.CLEAN,
        Outcome.CLEAN,
        ("code", "reason", "timeout"),
        10.0,
        reference=True,
        close_metric="close_handshake",
    ),
    _K.TERMINATE: KindInfo(Outcome.TERMINATED, None, ("rst",), reference=True),
    _K.CLOSE_NO_WAIT: KindInfo(Outcome.CLOSE_NO_WAIT, None, ("code", "reason")),
    _K.AWAIT_SERVER_CLOSE: KindInfo(
        Outcome.SERVER_CLOSED,
        Outcome.SERVER_CLOSED,
        ("timeout", "on_timeout", "code", "reason", "send_interval", "send_payload", "rst"),
        30.0,
        close_metric="close_teardown",
    ),
    _K.IGNORE_SERVER_CLOSE: KindInfo(
        Outcome.SERVER_DROPPED, None, ("timeout",), 60.0, close_metric="server_close_timeout"
    ),
    _K.INVALID_CLOSE: KindInfo(
        Outcome.INVALID_REJECTED, Outcome.INVALID_REJECTED, ("variant", "timeout"), 10.0
    ),
}
"""Every close kind, in the order the docs list them."""
