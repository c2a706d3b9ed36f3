"""The client side of an upgraded connection, without I/O: bytes and times in, bytes out.

In the manner of h11 and websockets' ``Protocol`` (h11's rule: everything that affects the
state machine lives here): the engine hands received bytes to
:meth:`ClientProtocol.receive_data` with the time they arrived, the server's TCP close to
:meth:`~ClientProtocol.receive_eof`, a failed write to :meth:`~ClientProtocol.connection_lost`,
and writes back whatever bytes a call returns (pongs, reflected messages, our Close). Every
close decision is a method here: sending a Close (valid or malformed on purpose) records it in
the close tracker in the same call, answering the server's Close echoes its code, failing the
connection returns the Close to fail with (or None when none may go out), pings are matched
with their pongs. What the session and the close behaviours wait for is kept as plain state
(the close tracker, the failure, the awaited match, the message counters), so no event object
is allocated per message on the echo hot path. The engine only writes the bytes and waits.

A Close is recorded when it is built, stamped with the instant before its write (a loop that
resumes the task late must not shorten the close); a write that then fails takes it back
(:meth:`ClientProtocol.close_unwritten`), so a record never claims a Close that did not go out.

Data messages are dispatched in this order: a ``[[session.on]]`` reply rule that matches takes
the message and its reply is returned at once (``messages_auto_replied``); else the message the
session is waiting for (an ``expect`` step's :class:`~wsload.core.matching.Matcher`, echo
mode's ``any``) is recorded as matched; every other data message is a *push*: counted
(``messages_unmatched`` too while a match is awaited), timed against the previous push
(``push_intervals``) and, with ``reflect``, sent back while the connection is open (a
reflection counts as a message sent). A push that arrived while no ``expect`` waited (in the
same read as the 101, during a ``sleep``, a ``send``, a ``ping``) waits in the *inbox*, in
order, for the script's next ``expect`` or ``receive``, which read it before anything newer:
no message is lost to a race between its arrival and the step that wants it. The inbox is
bounded (``INBOX_SIZE``; the oldest is dropped and counted in ``inbox_overflow``) and only kept
while a script may still read it. That holds from the first byte after the 101 to the
server's Close, whatever phase the connection is in (session, hold, close behaviour).

Extensions (permessage-deflate, RFC 7692) plug in at the two places frames are made and read:
:meth:`ClientProtocol.message` is the only builder of outgoing data frames (``encoder``: payload
→ ``(payload, rsv1)``), and the :class:`~wsload.core.frames.FrameReader` the only parser (its
decoder takes wsproto extensions; its fast path leaves every frame with an RSV bit to it).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from wsload.core.capture import Capture
from wsload.core.closing import CloseState, CloseTracker
from wsload.core.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    FrameReader,
    ReceivedClose,
    close_payload,
    encode_frame,
    invalid_close,
)
from wsload.core.matching import Matcher
from wsload.core.outcomes import Outcome
from wsload.core.script import Rule, Step
from wsload.core.templates import Template

__all__ = ["INBOX_SIZE", "ClientProtocol", "Encoder"]

INBOX_SIZE = 1024
"""Data messages a connection keeps for its script's next ``expect`` / ``receive``."""

Encoder = Callable[[bytes], tuple[bytes, bool]]
"""An outgoing-message transform (compression): payload → (payload on the wire, RSV1 set)."""


class ClientProtocol:
    """One upgraded client connection's protocol state.

    Attributes:
        reader: the frame parser (strict; size limit applied).
        tracker: the close handshake record (written only by this object).
        failure: ``(outcome, detail)`` once the connection failed (first failure wins).
        write_broken: a write did not complete; nothing more may be written.
        reflect: send back every push while open (session ``reflect``).
        expecting: the matcher of the message awaited now (None: nothing awaited).
        matched_at: when the awaited message arrived (taken by :meth:`take_match`).
        matched: the awaited message itself (for its captures), once it arrived.
        inbox: ``(message, arrival)`` of the pushes no step took yet, oldest first.
        inbox_size: the inbox's bound (0: no inbox: echo mode, or the script has ended).
        inbox_overflow: messages dropped from a full inbox.
        rules: the ``[[session.on]]`` reply rules, tried in order.
        messages_auto_replied: data messages a rule took (and answered).
        variables: captured values (``{var:NAME}``), by name.
        seq / row: the connection's number and ``[data]`` row, for templates.
        subprotocol: the subprotocol the server selected in its 101 ("" for none).
        step: the script step running now and its 1-based place in its list (None outside
            the script): named in the detail when the server closes mid-script.
        pings: ``payload -> (sent, pong due)`` of the pings whose pong has not arrived.
        ping_rtts: seconds from each ping to its pong.
        messages_sent / bytes_sent: data messages (and their payload bytes) we sent.
        messages_received / bytes_received: complete data messages (payload bytes) received.
        messages_unmatched: data messages that arrived while a match was awaited and did not
            match it.
        push_intervals: seconds between consecutive pushes.
        encoder: compresses outgoing payloads once an extension is negotiated (None: none).
        late_stamps: phase ends (the server's Close, a pong, an awaited or kept message, the
            101) stamped with an arrival time that may be later than their own: more bytes
            came after them in the same read, whose arrival the read's stamp is (the link
            adds the server's Close read together with a merged FIN).
    """

    __slots__ = (
        "_last_push",
        "_parts",
        "_ping_count",
        "_size",
        "bytes_received",
        "bytes_sent",
        "encoder",
        "expecting",
        "failure",
        "inbox",
        "inbox_overflow",
        "inbox_size",
        "late_stamps",
        "matched",
        "matched_at",
        "messages_auto_replied",
        "messages_received",
        "messages_sent",
        "messages_unmatched",
        "ping_rtts",
        "pings",
        "push_intervals",
        "reader",
        "reflect",
        "row",
        "rules",
        "seq",
        "step",
        "subprotocol",
        "tracker",
        "variables",
        "write_broken",
    )

    def __init__(
        self,
        reader: FrameReader,
        *,
        reflect: bool = False,
        encoder: Encoder | None = None,
        rules: tuple[Rule, ...] = (),
        inbox_size: int = 0,
        seq: int = 1,
        row: tuple[str, ...] = (),
    ) -> None:
        self.reader = reader
        self.tracker = CloseTracker()
        self.failure: tuple[Outcome, str] | None = None
        self.write_broken = False
        self.reflect = reflect
        self.encoder = encoder
        self.expecting: Matcher | None = None
        self.matched_at: float | None = None
        self.matched: bytes | str = b""
        self.inbox: deque[tuple[bytes | str, float]] = deque()
        self.inbox_size = inbox_size
        self.inbox_overflow = 0
        self.rules = rules
        self.messages_auto_replied = 0
        self.variables: dict[str, str] = {}
        self.seq, self.row = seq, row
        self.step: tuple[int, Step] | None = None
        self.subprotocol = ""
        self.pings: dict[bytes, tuple[float, float]] = {}
        self.ping_rtts: list[float] = []
        self._ping_count = 0
        self.messages_sent = self.bytes_sent = 0
        self.messages_received = self.bytes_received = self.messages_unmatched = 0
        self.push_intervals: list[float] = []
        self._last_push: float | None = None
        self._parts: list[bytes | str] = []
        self._size = 0  # bytes of the message being assembled
        self.late_stamps = 0

    # -- what the waits look at --------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """Nothing more can be read: failed, or the server's TCP close was seen."""
        return self.failure is not None or self.tracker.eof is not None

    def close_expected(self) -> bool:
        """The connection is closing: a Close went either way, TCP is gone, or it failed.

        Nothing but the close remains: a session (or a hold) stops here.
        """
        return self.failure is not None or self.tracker.state is not CloseState.OPEN

    @property
    def can_send_close(self) -> bool:
        """A Close frame may still be written: none sent, TCP up, nothing failed or broken."""
        return self.tracker.can_send_close and not self.ended and not self.write_broken

    # -- the close ---------------------------------------------------------------------------

    def start_close(self, now: float) -> float:
        """The close behaviour starts at ``now`` (the first call wins); returns the start."""
        return self.tracker.initiate(now)

    def send_close(self, code: int | None, reason: str, now: float) -> bytes:
        """Our Close frame (``code`` None: an empty Close), recorded as sent at ``now``."""
        if code is None:
            reason = ""
        self.tracker.send_close(now, code, reason)
        return encode_frame(OP_CLOSE, close_payload(code, reason))

    def send_invalid_close(self, variant: str, now: float) -> bytes:
        """The malformed Close of an ``invalid_close`` ``variant``, recorded as sent at ``now``."""
        frame, code, reason = invalid_close(variant)
        self.tracker.send_close(now, code, reason)
        return frame

    def close_unwritten(self) -> None:
        """The Close just recorded by :meth:`send_close` could not be written after all."""
        self.tracker.unsend_close()

    def answer_close(self, now: float) -> bytes | None:
        """The answer to the server's Close: the same code (RFC 6455 §5.5.1), if one may go."""
        t = self.tracker
        if t.close_received is None or not self.can_send_close:
            return None
        return self.send_close(t.code_received, "", now)

    def fail(
        self, outcome: Outcome, detail: str, code: int | None = None, now: float = 0.0
    ) -> bytes | None:
        """Fail the connection (a later failure does not replace the first).

        Args:
            outcome: how the connection ends.
            detail: why, for the record.
            code: fail with a Close of this code (1002/1007/1009: the server broke the
                protocol); None: no Close (the socket is closed at once).
            now: the clock (stamps the Close).

        Returns:
            The Close frame to write (recorded as sent), or None when no Close is due or none
            may go out any more.
        """
        if self.failure is not None:
            return None
        for value in sorted(self.variables.values(), key=len, reverse=True):
            if len(value) >= 4:  # captured values are secrets (a 1-3 character one is no key)
                detail = detail.replace(value, "REDACTED")
        self.failure = (outcome, detail)
        if code is None or not self.tracker.can_send_close or self.write_broken:
            return None
        return self.send_close(code, "", now)

    def receive_eof(self, now: float, *, reset: bool = False) -> None:
        """The server closed TCP (FIN, or RST when ``reset``); a second report is ignored."""
        if self.tracker.eof is None:
            self.tracker.receive_eof(now, reset=reset)

    def write_failed(self) -> None:
        """A write did not complete in time (maybe part of a frame is out): write no more."""
        self.write_broken = True

    def connection_lost(self, now: float, tls_error: str | None = None) -> None:
        """A read or write failed: a reset (ECONNRESET/EPIPE), or TLS (``tls_error``)."""
        self.write_broken = True
        if tls_error is not None:
            self.fail(Outcome.TLS_ERROR, f"TLS failed after the upgrade: {tls_error}")
        else:
            self.receive_eof(now, reset=True)

    def socket_closed(self, now: float) -> None:
        """Our socket was closed (FIN or RST): the connection's end."""
        if self.tracker.state is not CloseState.CLOSED:
            self.tracker.close_socket(now)

    # -- the session -------------------------------------------------------------------------

    def ping(self, now: float, timeout: float) -> tuple[bytes, bytes]:
        """A ping whose pong is due within ``timeout``: ``(frame, payload)``."""
        self._ping_count += 1
        data = self._ping_count.to_bytes(8, "big")
        self.pings[data] = (now, now + timeout)
        return encode_frame(OP_PING, data), data

    def pong_due(self) -> float:
        """When the earliest outstanding pong is due (infinity: none outstanding)."""
        pings = self.pings
        return min(due for _, due in pings.values()) if pings else math.inf

    def expect(self, matcher: Matcher) -> None:
        """Await the message ``matcher`` matches (recorded in :attr:`matched_at`): the inbox
        first, oldest first (the ones that do not match are dropped, counted unmatched)."""
        self.matched_at = None
        inbox = self.inbox
        while inbox:
            message, arrived = inbox.popleft()
            if matcher.kind == "any" or matcher.matches(message):
                self.matched_at, self.matched = arrived, message
                return
            self.messages_unmatched += 1
        self.expecting = matcher

    def take_inbox(self, count: int) -> int:
        """Take up to ``count`` messages from the inbox (a ``receive`` step); how many."""
        taken = min(count, len(self.inbox))
        for _ in range(taken):
            self.inbox.popleft()
        return taken

    def close_inbox(self) -> None:
        """The script is over: no step will read the inbox any more."""
        self.inbox_size = 0
        self.inbox.clear()

    def render(self, template: Template) -> bytes:
        """``template`` for this connection's next send (its number, row, captured values)."""
        return template.render(self.seq, self.messages_sent + 1, self.row, self.variables)

    def capture(self, save: tuple[Capture, ...], message: bytes | str) -> Capture | None:
        """Store ``save``'s values from ``message``; the first capture missing in it, if any
        (the values found before it are kept)."""
        for capture in save:
            value = capture.take(message)
            if value is None:
                return capture
            self.variables[capture.name] = value
        return None

    def take_match(self) -> float | None:
        """Stop awaiting; when the awaited message arrived (None: it did not)."""
        arrived, self.matched_at, self.expecting = self.matched_at, None, None
        return arrived

    def message(self, payload: bytes, *, binary: bool = False) -> bytes:
        """The frame of one outgoing data message (counted as sent)."""
        self.messages_sent += 1
        self.bytes_sent += len(payload)
        opcode = OP_BINARY if binary else OP_TEXT
        if self.encoder is None:
            return encode_frame(opcode, payload)
        wire, rsv1 = self.encoder(payload)
        frame = bytearray(encode_frame(opcode, wire))
        if rsv1:
            frame[0] |= 0x40
        return bytes(frame)

    def receive_data(self, data: bytes | bytearray, now: float) -> bytes:
        """Process received bytes; return the control replies and reflections to write."""
        reader = self.reader
        reader.feed(data)
        out = b""
        while True:
            try:
                item = reader.next()
            except FrameError as exc:
                return out + (self.fail(Outcome.PROTOCOL_ERROR, str(exc), exc.code, now) or b"")
            if item is None:
                return out
            if isinstance(item, ReceivedClose):
                self.tracker.receive_close(now, item.code, item.reason)
                self.late_stamps += reader.more
                if item.error:
                    detail = f"invalid Close from the server: {item.error}"
                    out += self.fail(Outcome.PROTOCOL_ERROR, detail, item.fail_code, now) or b""
                return out
            opcode, payload, finished = item
            if opcode == OP_PING:
                if self.tracker.state is CloseState.OPEN:
                    assert isinstance(payload, bytes)
                    out += encode_frame(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                assert isinstance(payload, bytes)
                ping = self.pings.pop(payload, None)
                if ping is not None:  # an unsolicited pong is allowed and ignored
                    self.ping_rtts.append(now - ping[0])
                    self.late_stamps += reader.more
                continue
            self._size += (
                len(payload)
                if isinstance(payload, bytes) or payload.isascii()
                else len(payload.encode("utf-8"))
            )
            expecting = self.expecting
            if not finished:
                if (
                    self.reflect
                    or self.rules
                    or self.inbox_size
                    or (expecting is not None and expecting.needs_payload)
                ):
                    self._parts.append(payload)
                continue
            self.messages_received += 1
            self.bytes_received += self._size
            self._size = 0
            whole: bytes | str | None = None
            if self.rules:
                whole = self._whole(opcode, payload)
                reply = self._reply(whole, now)
                if reply is not None:
                    self.messages_auto_replied += 1
                    self._parts.clear()
                    out += reply
                    continue
            if expecting is not None:
                if expecting.kind == "any" or expecting.matches(
                    whole if whole is not None else (whole := self._whole(opcode, payload))
                ):
                    self.expecting = None
                    self.matched_at = now
                    self.late_stamps += reader.more
                    self.matched = whole if whole is not None else b""
                    self._parts.clear()
                    continue
                self.messages_unmatched += 1
            elif self.inbox_size:
                inbox = self.inbox
                inbox.append((whole if whole is not None else self._whole(opcode, payload), now))
                self.late_stamps += reader.more
                if len(inbox) > self.inbox_size:
                    inbox.popleft()
                    self.inbox_overflow += 1
            last, self._last_push = self._last_push, now
            if last is not None:
                self.push_intervals.append(now - last)
            if self.reflect and self.tracker.state is CloseState.OPEN:
                out += self.message(self._encoded(opcode, payload), binary=opcode == OP_BINARY)
            elif self._parts:
                self._parts.clear()

    def _reply(self, message: bytes | str, now: float) -> bytes | None:
        """The reply of the first rule that matches ``message`` (None: no rule matched)."""
        for rule in self.rules:
            if not (rule.matcher.kind == "any" or rule.matcher.matches(message)):
                continue
            self.capture(rule.save, message)
            if self.tracker.state is not CloseState.OPEN or self.write_broken:
                return b""  # taken, but nothing may be sent any more
            out = b""
            if rule.send is not None:
                out += self.message(self.render(rule.send), binary=rule.binary)
            if rule.ping:
                out += encode_frame(OP_PING, b"")  # unsolicited: its pong is ignored
            if rule.close is not None:
                self.start_close(now)
                out += self.send_close(rule.close[0], rule.close[1], now)
            return out
        return None

    def _whole(self, opcode: int, last: bytes | str) -> bytes | str:
        """The complete message whose last part is ``last`` (parts kept, for a reflection)."""
        if not self._parts:
            return last
        parts = [*self._parts, last]
        if opcode == OP_TEXT:
            return "".join(p for p in parts if isinstance(p, str))
        return b"".join(p for p in parts if isinstance(p, bytes))

    def _encoded(self, opcode: int, last: bytes | str) -> bytes:
        whole = self._whole(opcode, last)
        self._parts.clear()
        return whole.encode("utf-8") if isinstance(whole, str) else whole
