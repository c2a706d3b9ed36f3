"""Client-side WebSocket frames: a lean masked encoder and a strict reader, without I/O.

Why not ``wsproto.connection.Connection``: it wraps every frame in an event object and keeps its
own close state, which wsload already tracks (``closing``) and must be able to break on purpose
(``invalid_close`` sends frames no library will build). So outgoing frames are encoded here
(masked with a fresh key, as RFC 6455 §5.3 requires of a client), and incoming bytes go through
``wsproto.frame_protocol``'s decoder, which checks framing strictly (RSV bits, opcodes, control
frame size and fragmentation, minimal length encoding, unmasked server frames, UTF-8 of text).
Close frames are decoded here so that an invalid one still tells which code the server used.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from wsproto.extensions import Extension
from wsproto.frame_protocol import FrameDecoder, MessageDecoder, Opcode, ParseFailed

from wsload.core.codes import is_sendable
from wsload.core.entropy import random_bytes
from wsload.core.faults import ProtocolViolation
from wsload.core.outcomes import Outcome

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameError",
    "FrameReader",
    "ReceivedClose",
    "close_frame",
    "close_payload",
    "encode_frame",
    "invalid_close",
    "mask",
]

OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

_MAX_REASON = 123
_FAST_OPCODES = frozenset((OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG))
_OUT_OF_RANGE_CODE = 999


class FrameError(ProtocolViolation):
    """The server broke RFC 6455 framing; ``code`` is the Close code to fail with.

    Attributes:
        code: 1002 (protocol error), 1007 (invalid payload data) or 1009 (message too big).
    """

    code: int

    def __init__(self, message: str, code: int = 1002) -> None:
        super().__init__(message, Outcome.PROTOCOL_ERROR, code)


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` repeated (RFC 6455 §5.3).

    One big-integer XOR: far cheaper in CPython than a per-byte loop for any size.
    """
    n = len(payload)
    if not n:
        return b""
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(
        n, "little"
    )


def encode_frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """One masked client frame. Does not police sizes: ``invalid_close`` relies on that."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        header = bytes((first, 0x80 | n))
    elif n < 65536:
        header = struct.pack("!BBH", first, 0xFE, n)
    else:
        header = struct.pack("!BBQ", first, 0xFF, n)
    key = random_bytes(4)
    return header + key + mask(payload, key)


def close_payload(code: int | None, reason: str = "") -> bytes:
    """A Close payload: empty without a code, else the code and the reason cut to 123 bytes.

    The cut never splits a UTF-8 sequence (the receiver must validate the reason).
    """
    if code is None:
        return b""
    raw = reason.encode("utf-8")
    if len(raw) > _MAX_REASON:
        raw = raw[:_MAX_REASON].decode("utf-8", "ignore").encode("utf-8")
    return struct.pack("!H", code) + raw


def close_frame(code: int | None, reason: str = "") -> tuple[bytes, int | None, str]:
    """Our Close frame (``code`` None: an empty Close) with the code and reason it records."""
    if code is None:
        reason = ""
    return encode_frame(OP_CLOSE, close_payload(code, reason)), code, reason


def invalid_close(variant: str) -> tuple[bytes, int | None, str | None]:
    """The malformed Close frame of an ``invalid_close`` variant.

    Returns:
        ``(frame bytes, code on the wire or None, reason as text or None)``; the reason of
        ``invalid_utf8`` is shown with backslash escapes.

    Raises:
        ValueError: an unknown variant.
    """
    code: int | None = 1000
    reason: str | None = ""
    if variant in ("code_1005", "code_1006", "code_1015"):
        code = int(variant[-4:])
        payload = struct.pack("!H", code)
    elif variant == "code_out_of_range":
        code = _OUT_OF_RANGE_CODE
        payload = struct.pack("!H", code)
    elif variant == "reason_too_long":
        reason = "x" * (_MAX_REASON + 1)  # 2 + 124 = 126 bytes: over the 125-byte control limit
        payload = struct.pack("!H", 1000) + reason.encode("ascii")
    elif variant == "invalid_utf8":
        raw = b"bye \xff\xfe"
        reason = raw.decode("utf-8", "backslashreplace")
        payload = struct.pack("!H", 1000) + raw
    elif variant == "one_byte":
        code, reason = None, None
        payload = b"\x03"
    else:
        raise ValueError(f"unknown invalid_close variant {variant!r}")
    return encode_frame(OP_CLOSE, payload), code, reason


@dataclass(frozen=True, slots=True, init=False)
class ReceivedClose:
    """The server's Close frame, decoded.

    Attributes:
        code: the status code, or None when the payload was empty (reported as 1005).
        reason: the reason text (undecodable bytes escaped when ``error`` is set).
        error: why the frame is invalid (bad code, 1-byte payload, bad UTF-8), or "".
        fail_code: the Close code to fail the connection with when ``error`` is set.
    """

    code: int | None
    reason: str
    error: str = ""
    fail_code: int = 1002

    def __init__(
        self, code: int | None, reason: str, error: str = "", fail_code: int = 1002
    ) -> None:
        # written out: see wsload.core.record.ConnectionRecord.__init__
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "error", error)
        object.__setattr__(self, "fail_code", fail_code)


def _decode_close(payload: bytes) -> ReceivedClose:
    """RFC 6455 §5.5.1 / §7.4: validate a Close payload without losing what the server sent."""
    if not payload:
        return ReceivedClose(None, "")
    if len(payload) == 1:
        return ReceivedClose(None, "", "Close with a 1-byte payload")
    (code,) = struct.unpack("!H", payload[:2])
    raw = payload[2:]
    try:
        reason = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "backslashreplace")
        return ReceivedClose(code, text, "Close reason is not valid UTF-8", 1007)
    if not is_sendable(code):
        return ReceivedClose(code, reason, f"Close with code {code}, which may not be sent")
    return ReceivedClose(code, reason)


def _utf8_prefix(data: bytes) -> bool:
    """Whether ``data`` can still begin valid UTF-8 (it may end inside a character)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


class FrameReader:
    """Server-to-client frames, validated, with the message size limit applied.

    :meth:`next` returns ``(opcode, payload, message_finished)`` per frame (data frames may
    arrive in pieces: ``payload`` is ``str`` for text, ``bytes`` otherwise; control frames come
    whole), a :class:`ReceivedClose` for the Close frame, or ``None`` when more bytes are
    needed. After the Close frame nothing more is parsed (RFC 6455 §5.5.1).

    Attributes:
        more: bytes followed the frame :meth:`next` returned last (it was not the end of the
            bytes received so far): a read's kernel arrival stamp is the arrival of its last
            bytes, so for such a frame it is only an upper bound.
    """

    __slots__ = (
        "_closed",
        "_extensions",
        "_fast_path",
        "_frames",
        "_limit",
        "_messages",
        "_pending",
        "_pos",
        "_size",
        "more",
    )

    def __init__(
        self, max_message_size: int, extensions: Sequence[Extension] = (), *, fast: bool = True
    ) -> None:
        """``extensions``: negotiated wsproto extensions (permessage-deflate) for the decoder;
        frames with an RSV bit never take the fast path, so they always reach them. ``fast``:
        False sends every byte through wsproto (the reference the fast path is tested
        against; a keyword, not a subclass: the compiled class cannot be subclassed)."""
        self._fast_path = fast
        self._extensions = tuple(extensions)  # a list only for wsproto, if it is ever built
        # wsproto's decoders: made together on first need (most connections never need them)
        self._frames: FrameDecoder | None = None
        self._messages: MessageDecoder | None = None
        self._limit = max_message_size
        self._size = 0
        self._closed = False
        self._pending = b""  # bytes for the fast path; wsproto's decoder is idle while set
        self._pos = 0  # where the unread part of ``_pending`` starts (no slicing per frame)
        self.more = False

    def feed(self, data: bytes | bytearray) -> None:
        """Buffer received bytes (ignored once the Close frame was read)."""
        if self._closed or not data:
            return
        if self._pending:
            self._pending = self._pending[self._pos :] + data
            self._pos = 0
        elif self._fast_path and self._idle():
            self._pending = bytes(data)
        else:
            self._decoder().receive_bytes(data if isinstance(data, bytes) else bytes(data))

    def _idle(self) -> bool:
        """wsproto holds no partial frame, no buffered byte and no unfinished message."""
        frames = self._frames
        if frames is None:
            return True
        messages = self._messages
        assert messages is not None  # made with ``_frames``
        return frames.header is None and not len(frames.buffer) and messages.opcode is None

    def _decoder(self) -> FrameDecoder:
        if self._frames is None:
            self._frames = FrameDecoder(client=True, extensions=list(self._extensions))
            self._messages = MessageDecoder()
        return self._frames

    def _fast(self) -> tuple[int, bytes | str, bool] | ReceivedClose | Literal[False] | None:
        """The next frame parsed directly from ``_pending``, for the common case only.

        The common case is a whole, unmasked, unfragmented frame without RSV bits and with
        a 7-bit length (< 126 bytes: echoes, control frames) whose text is valid UTF-8. For
        it this is several times cheaper than wsproto's decoder. Anything else returns
        False, and the caller hands every pending byte to wsproto, idle by construction, so
        every error and edge case is judged exactly as before (also a data frame over the size
        limit, and a text frame not yet whole whose start is not UTF-8). None: the frame is
        incomplete.
        """
        data, pos = self._pending, self._pos
        if len(data) - pos < 2:
            return None
        first, second = data[pos], data[pos + 1]
        opcode = first & 0x0F
        if first & 0xF0 != 0x80 or second >= 126 or opcode not in _FAST_OPCODES:
            return False  # fragment, RSV bits, masked, long length or odd opcode: wsproto
        if second > self._limit and opcode in (OP_TEXT, OP_BINARY):
            # to wsproto at once, before the payload is whole: it reports 1009 on the bytes
            # that arrived, as the reader without a fast path does (not a later 1007)
            return False
        end = pos + 2 + second
        if len(data) < end:
            # wsproto checks text as it arrives: a part that can no longer be UTF-8 goes to it
            # now (1007), as the reader without a fast path would report before the rest came
            if opcode == OP_TEXT and not _utf8_prefix(data[pos + 2 :]):
                return False
            return None
        payload = data[pos + 2 : end]
        self.more = end < len(data)
        if opcode == OP_CLOSE:
            self._closed = True
            self._pending, self._pos = b"", 0
            return _decode_close(payload)
        item: tuple[int, bytes | str, bool] = (opcode, payload, True)
        if opcode == OP_TEXT:
            try:
                item = (opcode, payload.decode("utf-8"), True)
            except UnicodeDecodeError:
                return False
        if end == len(data):
            self._pending, self._pos = b"", 0
        else:
            self._pos = end
        return item

    def next(self) -> tuple[int, bytes | str, bool] | ReceivedClose | None:
        """The next frame, or None when the buffered bytes hold no complete one.

        Raises:
            FrameError: the bytes break RFC 6455 framing or a message exceeds the limit.
        """
        if self._closed:
            return None
        if self._pending:
            fast = self._fast()
            if fast is not False:
                return fast
            self._decoder().receive_bytes(self._pending[self._pos :])
            self._pending, self._pos = b"", 0
        elif self._frames is None:
            return None  # nothing buffered and wsproto never had a byte: do not build it
        try:
            decoder = self._decoder()
            frame = decoder.process_buffer()
            if frame is None:
                return None
            self.more = len(decoder.buffer) > 0
            opcode = frame.opcode
            if opcode is Opcode.CLOSE:
                self._closed = True
                assert isinstance(frame.payload, bytes)
                return _decode_close(frame.payload)
            if opcode.iscontrol():
                assert isinstance(frame.payload, bytes)
                return int(opcode), frame.payload, True
            assert self._messages is not None  # made with ``_frames`` by ``_decoder()``
            frame = self._messages.process_frame(frame)
        except ParseFailed as exc:
            raise FrameError(str(exc), int(exc.code)) from None
        payload = frame.payload
        assert not isinstance(payload, tuple)
        size = self._size + (
            len(payload)
            if isinstance(payload, bytes) or payload.isascii()
            else len(payload.encode("utf-8"))
        )
        if size > self._limit:
            raise FrameError(f"message over max_message_size ({self._limit} bytes)", 1009)
        self._size = 0 if frame.message_finished else size
        return int(frame.opcode), payload, frame.message_finished
