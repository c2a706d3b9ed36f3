"""The client side of an upgraded connection, without I/O: bytes in, replies and events out.

In the manner of h11 and websockets' ``Protocol``: the engine hands received bytes to
:meth:`ClientProtocol.receive_data` with the time they arrived and writes back what it returns
(pongs, reflected messages); everything the session and the close behaviours decide on is kept
here as plain state (the close tracker, the failure, the awaited match, the pongs, the message
counters), so no event object is allocated per message on the echo hot path.

Data messages are dispatched in this order: the message the session is waiting for (an
``expect`` step's :class:`~wsload.core.matching.Matcher`, echo mode's ``any``) is recorded as
matched; every other data message is a *push*: counted (``messages_unmatched`` too while a
match is awaited), timed against the previous push (``push_intervals``) and, with ``reflect``,
sent back while the connection is open (a reflection counts as a message sent). That holds
from the first byte after the 101 to the server's Close, whatever phase the connection is in
(session, hold, close behaviour).

Extensions (permessage-deflate, RFC 7692) plug in at the two places frames are made and read:
:meth:`ClientProtocol.message` is the only builder of outgoing data frames (``encoder``: payload
→ ``(payload, rsv1)``), and the :class:`~wsload.core.frames.FrameReader` the only parser (its
decoder takes wsproto extensions; its fast path leaves every frame with an RSV bit to it).
"""

from __future__ import annotations

from collections.abc import Callable

from wsload.core.closing import CloseState, CloseTracker
from wsload.core.frames import (
    OP_BINARY,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    FrameReader,
    ReceivedClose,
    encode_frame,
)
from wsload.core.matching import Matcher
from wsload.core.outcomes import Outcome

__all__ = ["ClientProtocol", "Encoder"]

Encoder = Callable[[bytes], tuple[bytes, bool]]
"""An outgoing-message transform (compression): payload → (payload on the wire, RSV1 set)."""


class ClientProtocol:
    """One upgraded client connection's protocol state.

    Attributes:
        reader: the frame parser (strict; size limit applied).
        tracker: the close handshake record.
        failure: ``(outcome, detail)`` once the connection failed (first failure wins).
        fail_code: the Close code to fail with after a protocol failure (1002/1007/1009).
        reflect: send back every push while open (session ``reflect``).
        expecting: the matcher of the message awaited now (None: nothing awaited).
        matched_at: when the awaited message arrived (cleared by whoever awaits).
        matched_count: ``messages_received`` right after the awaited message (messages after
            it, maybe in the same read, are the session's to take).
        pongs: ``(payload, arrival time)`` of pongs not yet taken by the session.
        messages_sent / bytes_sent: data messages (and their payload bytes) we sent.
        messages_received / bytes_received: complete data messages (payload bytes) received.
        messages_unmatched: data messages that arrived while a match was awaited and did not
            match it.
        push_intervals: seconds between consecutive pushes.
        encoder: compresses outgoing payloads once an extension is negotiated (None: none).
    """

    __slots__ = (
        "_last_push",
        "_parts",
        "_size",
        "bytes_received",
        "bytes_sent",
        "encoder",
        "expecting",
        "fail_code",
        "failure",
        "matched_at",
        "matched_count",
        "messages_received",
        "messages_sent",
        "messages_unmatched",
        "pongs",
        "push_intervals",
        "reader",
        "reflect",
        "tracker",
    )

    def __init__(
        self, reader: FrameReader, *, reflect: bool = False, encoder: Encoder | None = None
    ) -> None:
        self.reader = reader
        self.tracker = CloseTracker()
        self.failure: tuple[Outcome, str] | None = None
        self.fail_code: int | None = None
        self.reflect = reflect
        self.encoder = encoder
        self.expecting: Matcher | None = None
        self.matched_at: float | None = None
        self.matched_count = 0
        self.pongs: list[tuple[bytes, float]] = []
        self.messages_sent = self.bytes_sent = 0
        self.messages_received = self.bytes_received = self.messages_unmatched = 0
        self.push_intervals: list[float] = []
        self._last_push: float | None = None
        self._parts: list[bytes | str] = []
        self._size = 0  # bytes of the message being assembled

    @property
    def ended(self) -> bool:
        """Nothing more can be read: failed, or the server's TCP close was seen."""
        return self.failure is not None or self.tracker.eof is not None

    def fail(self, outcome: Outcome, detail: str) -> None:
        """Record how the connection failed (a later failure does not replace the first)."""
        if self.failure is None:
            self.failure = (outcome, detail)

    def fail_protocol(self, code: int, detail: str) -> None:
        """The server broke the protocol: fail with Close ``code`` (sent when the link ends)."""
        if self.failure is None:
            self.failure = (Outcome.PROTOCOL_ERROR, detail)
            self.fail_code = code

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
                self.fail_protocol(exc.code, str(exc))
                return out
            if item is None:
                return out
            if isinstance(item, ReceivedClose):
                self.tracker.receive_close(now, item.code, item.reason)
                if item.error:
                    self.fail_protocol(
                        item.fail_code, f"invalid Close from the server: {item.error}"
                    )
                return out
            opcode, payload, finished = item
            if opcode == OP_PING:
                if self.tracker.state is CloseState.OPEN:
                    assert isinstance(payload, bytes)
                    out += encode_frame(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                assert isinstance(payload, bytes)
                self.pongs.append((payload, now))
                continue
            self._size += (
                len(payload)
                if isinstance(payload, bytes) or payload.isascii()
                else len(payload.encode("utf-8"))
            )
            expecting = self.expecting
            if not finished:
                if self.reflect or (expecting is not None and expecting.needs_payload):
                    self._parts.append(payload)
                continue
            self.messages_received += 1
            self.bytes_received += self._size
            self._size = 0
            if expecting is not None:
                if expecting.kind == "any" or expecting.matches(self._whole(opcode, payload)):
                    self.expecting = None
                    self.matched_at = now
                    self.matched_count = self.messages_received
                    self._parts.clear()
                    continue
                self.messages_unmatched += 1
            last, self._last_push = self._last_push, now
            if last is not None:
                self.push_intervals.append(now - last)
            if self.reflect and self.tracker.state is CloseState.OPEN:
                out += self.message(self._encoded(opcode, payload), binary=opcode == OP_BINARY)
            elif self._parts:
                self._parts.clear()

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
