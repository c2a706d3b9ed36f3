"""The ``CloseEvent`` a browser's JavaScript would have received for one connection.

Users of a WebSocket server mostly meet its closes through browsers: ``ws.onclose`` gets
``code``, ``reason`` and ``wasClean``, and that is what their dashboards and error reports show.
wsload's outcomes say more, but in wsload's words; this module says it in the browser's.

The rules are RFC 6455 §7.1.4-7.1.5 as browsers apply them (checked against headless Chromium
in tests/process/test_browser_close_events.py), read off the finished
:class:`~wsload.core.record.ConnectionRecord` alone (pure: the collector calls it per record):

- ``code`` is the code of the Close frame received, 1005 when that Close carried no code, and
  1006 when no Close frame was received at all (including every connection that failed
  before or during the upgrade, and one the client *failed* for a protocol error: a browser
  that fails a connection reports 1006 whatever the peer sent);
- ``reason`` is the received Close's reason ("" otherwise);
- ``wasClean`` is true when a Close was received and the connection then ended without an
  error: the TCP connection closed after the closing handshake (§7.1.4), whoever closed it. A
  browser answers a Close at once and, when the server then keeps TCP open, closes it itself
  (Chromium after 2 s) and still reports ``wasClean: true``; wsload's close timeouts after a
  received Close count the same. A reset (RST), a protocol failure, a message timeout or a TLS
  failure is ``wasClean: false``; so is everything without a received Close.

docs/outcomes.md tabulates the result for every outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord

__all__ = ["ABNORMAL_CLOSURE", "NO_STATUS", "BrowserCloseEvent", "browser_close_event"]

NO_STATUS = 1005
"""``code`` for a Close frame without a status code (RFC 6455 §7.1.5)."""

ABNORMAL_CLOSURE = 1006
"""``code`` when no Close frame was received (RFC 6455 §7.1.5)."""

_FAILED = frozenset({Outcome.PROTOCOL_ERROR})
"""The client failed the connection (RFC 6455 §7.1.7): whatever came in, the event is 1006."""

_ERRORS = frozenset({Outcome.RESET, Outcome.MESSAGE_TIMEOUT, Outcome.TLS_ERROR})
"""Outcomes that end a connection in an error even after a Close was received."""


@dataclass(frozen=True, slots=True, init=False)
class BrowserCloseEvent:
    """What ``ws.onclose`` would receive (field names as in JavaScript, ``was_clean`` aside).

    Attributes:
        code: the close code (1005: Close without a code; 1006: no Close received).
        reason: the received Close's reason text ("" without one).
        was_clean: ``wasClean``: a Close was received and the connection ended without error.
    """

    code: int
    reason: str
    was_clean: bool

    def __init__(self, code: int, reason: str, was_clean: bool) -> None:
        # written out (see wsload.core.record.ConnectionRecord.__init__): compiled, not the
        # dataclass's interpreted one; tests/core/test_native_init.py checks it is the same
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "was_clean", was_clean)

    def __str__(self) -> str:
        clean = "true" if self.was_clean else "false"
        return f"CloseEvent(code={self.code}, reason={self.reason!r}, wasClean={clean})"


_ABNORMAL = BrowserCloseEvent(ABNORMAL_CLOSURE, "", False)


def browser_close_event(record: ConnectionRecord) -> BrowserCloseEvent:
    """The close event a browser would have fired for ``record``'s connection."""
    if record.close_received is None or record.outcome in _FAILED:
        return _ABNORMAL
    code = NO_STATUS if record.code_received is None else record.code_received
    clean = not record.reset and record.outcome not in _ERRORS
    return BrowserCloseEvent(code, record.reason_received or "", clean)
