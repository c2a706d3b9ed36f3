"""permessage-deflate (RFC 7692): the offer, strict negotiation, and bounded compression.

Why wsload speaks it: every browser offers it on every WebSocket, and a server that accepts it
runs another code path (a zlib context per connection, flushing compressed data while closing)
with another memory cost per held connection. A load tester that refuses it measures a server
its users never reach.

Everything here is pure (no I/O), for both ends:

- the client offers like browsers do (``permessage-deflate; client_max_window_bits``, plus what
  the scenario asks for) and checks the server's answer strictly: any other extension, any
  parameter the RFC does not let the server choose (``client_max_window_bits`` that was not
  offered, an unknown name, a value out of 8..15, a parameter twice, a required one missing)
  is a broken handshake;
- the built-in server accepts the first acceptable offer (:func:`accept_offer`);
- :class:`PerMessageDeflate` compresses outgoing messages and inflates incoming ones. It is a
  wsproto :class:`~wsproto.extensions.Extension`, so wsproto's frame decoder (the client's
  :class:`~wsload.core.frames.FrameReader`, the server's connection) checks RSV1 and calls it
  per frame. Inflating never produces more than the message size limit plus one byte: a
  decompression bomb is a 1009 ``Message Too Big``, not an out-of-memory.

What a connection holds is what the protocol needs, no more. The inflater must follow the
window the peer compresses with (it is allocated at the first compressed message and freed
after each one when the peer resets its context). The client's compressor is ours to size:
``client_max_window_bits`` only caps the window we may use (RFC 7692 §7.1.2.2), and §7.2.3.2
lets a sender reference its earlier messages, never obliges it to. So the client compresses
each message with a fresh, small zlib context (:data:`CLIENT_WINDOW_BITS`,
:data:`CLIENT_MEM_LEVEL`) freed when the message is sent, and keeps context takeover by
handing the new context, as a preset dictionary, the last :data:`CLIENT_HISTORY` bytes of what
it sent compressed: the very bytes the server's inflater holds at the end of its window, so the
references stay valid. A held connection pays those bytes instead of a zlib context.

zlib cannot *compress* with an 8-bit window in raw mode (zlib 1.2.9 on refuses ``-8``; older
versions silently used 9): when the peer requires one, messages are sent as stored
(uncompressed) deflate blocks, which never reference back and so are valid for any window.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

from wsload.core.faults import ProtocolViolation
from wsload.core.outcomes import Outcome

__all__ = [
    "CLIENT_HISTORY",
    "CLIENT_MEM_LEVEL",
    "CLIENT_WINDOW_BITS",
    "NAME",
    "OFFERS",
    "DeflateParams",
    "DeflateSettings",
    "PerMessageDeflate",
    "accept_offer",
    "negotiate",
]

NAME = "permessage-deflate"

_TAIL = b"\x00\x00\xff\xff"
_BITS = range(8, 16)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_INVALID = Outcome.HANDSHAKE_INVALID

CLIENT_WINDOW_BITS = 12
"""The client compressor's window when the agreed one allows it (4 KiB): a message longer than
that still compresses, with matches found within the last 4 KiB (websockets' default too)."""
CLIENT_MEM_LEVEL = 5
"""The client compressor's zlib memLevel (its hash table and block buffer: 16 KiB at 5)."""
CLIENT_HISTORY = 1024
"""Bytes of the client's last compressed messages kept for context takeover (a preset
dictionary for the next message's compressor; no more than its window, so 512 with a 9-bit
one; none under ``client_no_context_takeover``)."""


@dataclass(frozen=True, slots=True)
class DeflateSettings:
    """What the client offers (``[target] compression``); defaults are what browsers offer.

    Attributes:
        client_max_window_bits: our compression window, 8-15; None offers the parameter
            without a value, as browsers do ("choose any window for me").
        server_max_window_bits: the most the server may use, 8-15; None: not offered.
        client_no_context_takeover: we reset our compressor after each message.
        server_no_context_takeover: we ask the server to reset its compressor per message.
        threshold: messages shorter than this many bytes go uncompressed.
    """

    client_max_window_bits: int | None = None
    server_max_window_bits: int | None = None
    client_no_context_takeover: bool = False
    server_no_context_takeover: bool = False
    threshold: int = 0

    def offer(self) -> str:
        """The ``Sec-WebSocket-Extensions`` request value."""
        client = self.client_max_window_bits
        parts = [NAME, "client_max_window_bits" + ("" if client is None else f"={client}")]
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        return "; ".join(parts)


OFFERS = {
    "browser": DeflateSettings(),
    "lean": DeflateSettings(client_max_window_bits=9, server_max_window_bits=9),
}
"""The named offers of ``[target] compression = { offer = ... }``. ``browser`` is Chromium's
and Firefox's exact ``permessage-deflate; client_max_window_bits``. ``lean`` asks for 512-byte
windows both ways: the inflater we hold for the server's messages is then 512 bytes instead of
32 KiB (and the server's for ours too)."""


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """What both ends agreed on: each side's window and context takeover."""

    client_max_window_bits: int = 15
    server_max_window_bits: int = 15
    client_no_context_takeover: bool = False
    server_no_context_takeover: bool = False

    def response(self, *, client_bits: bool, server_bits: bool) -> str:
        """The server's ``Sec-WebSocket-Extensions`` value for these parameters.

        Args:
            client_bits: the offer had ``client_max_window_bits``; only then may the response
                name it (RFC 7692 §7.1.2.2).
            server_bits: the offer had ``server_max_window_bits``: the response must confirm
                it (§7.1.2.1).
        """
        parts = [NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if server_bits or self.server_max_window_bits != 15:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if client_bits and self.client_max_window_bits != 15:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)


def _elements(value: str) -> list[tuple[str, dict[str, str | None]]]:
    """``"a; x=1, b"`` → ``[("a", {"x": "1"}), ("b", {})]``.

    Raises:
        ValueError: a malformed element or a parameter given twice.
    """
    out: list[tuple[str, dict[str, str | None]]] = []
    for element in value.split(","):
        name, *raw = (part.strip() for part in element.split(";"))
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"malformed extension {element.strip()[:60]!r}")
        params: dict[str, str | None] = {}
        for item in raw:
            key, sep, val = (s.strip() for s in item.partition("="))
            val = val[1:-1] if len(val) >= 2 and val[0] == val[-1] == '"' else val
            if not _TOKEN.fullmatch(key) or (sep and not _TOKEN.fullmatch(val)):
                raise ValueError(f"malformed parameter {item[:40]!r} of {name}")
            if key in params:
                raise ValueError(f"{name} has {key} twice")
            params[key] = val if sep else None
        out.append((name, params))
    return out


def _bits(name: str, value: str | None, limit: int | None) -> int:
    if value is None or not value.isdigit() or int(value) not in _BITS:
        raise ValueError(f"{name} must be 8-15, got {value!r}")
    if limit is not None and int(value) > limit:
        raise ValueError(f"{name}={value} is over the {limit} offered")
    return int(value)


def negotiate(settings: DeflateSettings, values: list[str]) -> DeflateParams | None:
    """The client's check of the server's ``Sec-WebSocket-Extensions`` answers.

    Args:
        settings: what was offered.
        values: every Sec-WebSocket-Extensions header value of the 101 (empty ones ignored).

    Returns:
        The agreed parameters, or None when the server declined (no extension selected).

    Raises:
        ProtocolViolation: (``handshake_invalid``) an extension or parameter that was not
            offered or that the server may not choose, a malformed header, a bad value.
    """
    joined = ", ".join(v for v in values if v.strip())
    if not joined:
        return None
    try:
        elements = _elements(joined)
        if len(elements) != 1 or elements[0][0].lower() != NAME:
            names = ", ".join(name for name, _ in elements)
            raise ValueError(f"server selected {names[:60]!r}; only {NAME} was offered")
        params = elements[0][1]
        unknown = set(params) - {
            "client_max_window_bits",
            "server_max_window_bits",
            "client_no_context_takeover",
            "server_no_context_takeover",
        }
        if unknown:
            raise ValueError(f"{NAME} with parameter {sorted(unknown)[0]!r}, which was not offered")
        for flag in ("client_no_context_takeover", "server_no_context_takeover"):
            if flag in params and params[flag] is not None:
                raise ValueError(f"{flag} takes no value")
        client = settings.client_max_window_bits
        if "client_max_window_bits" in params:
            client = _bits("client_max_window_bits", params["client_max_window_bits"], client)
        server = settings.server_max_window_bits
        if "server_max_window_bits" in params:
            server = _bits("server_max_window_bits", params["server_max_window_bits"], server)
        elif server is not None:
            raise ValueError("server_max_window_bits was offered and not confirmed")
        if settings.server_no_context_takeover and "server_no_context_takeover" not in params:
            raise ValueError("server_no_context_takeover was offered and not confirmed")
    except ValueError as exc:
        raise ProtocolViolation(f"Sec-WebSocket-Extensions: {exc}", _INVALID) from None
    return DeflateParams(
        client_max_window_bits=15 if client is None else client,
        server_max_window_bits=15 if server is None else server,
        client_no_context_takeover=settings.client_no_context_takeover
        or "client_no_context_takeover" in params,
        server_no_context_takeover="server_no_context_takeover" in params,
    )


def accept_offer(value: str) -> tuple[DeflateParams, str] | None:
    """The built-in server's answer to a ``Sec-WebSocket-Extensions`` request value.

    Takes the first permessage-deflate offer whose parameters are valid (RFC 7692 §5: a
    server declines offers it cannot accept, it does not fail them), honouring every limit
    it asks for. Returns the parameters and the response header value, or None to decline.
    """
    try:
        elements = _elements(value)
    except ValueError:
        return None
    for name, params in elements:
        if name.lower() != NAME:
            continue
        offered_server = "server_max_window_bits" in params
        offered_client = "client_max_window_bits" in params
        try:
            client, server = 15, 15
            if offered_server:
                server = _bits("server_max_window_bits", params.pop("server_max_window_bits"), None)
            if offered_client and params["client_max_window_bits"] is not None:
                client = _bits("client_max_window_bits", params["client_max_window_bits"], None)
            params.pop("client_max_window_bits", None)
        except ValueError:
            continue
        flags = {"client_no_context_takeover", "server_no_context_takeover"}
        if set(params) - flags or any(v is not None for v in params.values()):
            continue
        agreed = DeflateParams(
            client_max_window_bits=client,
            server_max_window_bits=server,
            client_no_context_takeover="client_no_context_takeover" in params,
            server_no_context_takeover="server_no_context_takeover" in params,
        )
        return agreed, agreed.response(client_bits=offered_client, server_bits=offered_server)
    return None


def _compressor(bits: int, mem_level: int = 8, history: bytes = b"") -> zlib._Compress:
    if bits == 8:  # zlib's raw deflate has no 8-bit window: stored blocks fit any window
        return zlib.compressobj(0, zlib.DEFLATED, -9)
    if history:
        return zlib.compressobj(-1, zlib.DEFLATED, -bits, mem_level, zdict=history)
    return zlib.compressobj(-1, zlib.DEFLATED, -bits, mem_level)


def _flushed(compressor: zlib._Compress, data: bytes) -> bytes:
    """RFC 7692 §7.2.1: the message ends with a sync flush, its ``00 00 ff ff`` cut."""
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(_TAIL) else out


class PerMessageDeflate(Extension):
    """One connection's compressor and bounded decompressor (a wsproto extension).

    Each zlib context is made on first use: the inflater at the first compressed message,
    kept with the peer's context takeover and freed after each message without it. The
    server's compressor is what a server typically runs (zlib's defaults within the agreed
    window, kept with context takeover). The client's is made per message and freed at
    once; with context takeover only :data:`CLIENT_HISTORY` bytes stay (see the module's
    docstring), so a held client connection costs its inflater and nothing else.

    Args:
        params: the agreed parameters.
        client: this end is the client (chooses which window and takeover applies to which
            direction, and the client's lean compressor).
        max_message_size: the most bytes one incoming message may inflate to.
        threshold: outgoing messages shorter than this go uncompressed.
    """

    name = NAME

    def __init__(
        self, params: DeflateParams, *, client: bool, max_message_size: int, threshold: int = 0
    ) -> None:
        self._keep = 0  # bytes of history the client keeps (0: none)
        if client:
            bits = params.client_max_window_bits
            self._out_bits = bits if bits == 8 else min(bits, CLIENT_WINDOW_BITS)
            self._in_bits = params.server_max_window_bits
            self._out_reset = params.client_no_context_takeover
            self._in_reset = params.server_no_context_takeover
            if not self._out_reset and self._out_bits > 8:  # no more than the window can reach
                self._keep = min(CLIENT_HISTORY, 1 << self._out_bits)
        else:
            self._out_bits, self._in_bits = (
                params.server_max_window_bits,
                params.client_max_window_bits,
            )
            self._out_reset = params.server_no_context_takeover
            self._in_reset = params.client_no_context_takeover
        self.limit = max_message_size
        self.threshold = threshold
        self.compressed_received = 0
        """Messages that arrived compressed (RSV1 set): the evidence that deflate was used."""
        self._history = b""  # the client's last compressed bytes sent (context takeover)
        self._compress: zlib._Compress | None = None
        self._decompress: zlib._Decompress | None = None
        self._deflating = False  # the current outgoing message is compressed
        self._inflating = False  # the current incoming message is compressed
        self._data_frame = False  # the current incoming frame belongs to a data message
        self._size = 0  # bytes inflated so far for the current message

    # -- sending ------------------------------------------------------------------------------

    def encode(self, payload: bytes) -> tuple[bytes, bool]:
        """The client's encoder (``ClientProtocol.encoder``): one whole outgoing message as
        ``(payload on the wire, RSV1)``: compressed, or plain under the threshold (RSV1 clear
        is always allowed, and such a message never enters the server's inflater window)."""
        if len(payload) < self.threshold:
            return payload, False
        history = self._history
        out = _flushed(_compressor(self._out_bits, CLIENT_MEM_LEVEL, history), payload)
        keep = self._keep
        if keep:
            self._history = (payload if len(payload) >= keep else history + payload)[-keep:]
        return out, True

    def _deflate(self, data: bytes, fin: bool) -> bytes:
        compressor = self._compress
        if compressor is None:
            compressor = self._compress = _compressor(self._out_bits)
        if not fin:
            return compressor.compress(data)
        if self._out_reset:
            self._compress = None
        return _flushed(compressor, data)

    def frame_outbound(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        """wsproto's hook for the server's sends: a message is one deflate stream over its
        frames, RSV1 on the first one only (a fragmented message is judged by its first part
        against the threshold)."""
        if opcode.iscontrol():
            return rsv, data
        first = opcode is not Opcode.CONTINUATION
        if first:
            self._deflating = len(data) >= self.threshold
        if not self._deflating:
            return rsv, data
        return RsvBits(first, rsv.rsv2, rsv.rsv3), self._deflate(data, fin)

    # -- receiving ----------------------------------------------------------------------------

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool | str:  # wsproto's negotiation is not used: see negotiate()
        return NAME

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        if opcode.iscontrol():
            self._data_frame = False
            return CloseReason.PROTOCOL_ERROR if rsv.rsv1 else RsvBits(False, False, False)
        self._data_frame = True
        if opcode is Opcode.CONTINUATION:
            if rsv.rsv1:  # only a message's first frame carries the flag
                return CloseReason.PROTOCOL_ERROR
        else:
            self._inflating, self._size = rsv.rsv1, 0
            if rsv.rsv1:
                self.compressed_received += 1
        return RsvBits(True, False, False)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if not (self._data_frame and self._inflating):
            return data
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if not (self._data_frame and self._inflating and fin):
            return None
        out = self._inflate(_TAIL)
        self._inflating = False
        if self._in_reset:
            self._decompress = None
        return out

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        """At most ``limit + 1`` bytes of output per message: one over means too big."""
        decompressor = self._decompress
        if decompressor is None:
            decompressor = self._decompress = zlib.decompressobj(-self._in_bits)
        budget = self.limit - self._size
        try:
            out = decompressor.decompress(data, budget + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        if len(out) > budget:
            return CloseReason.MESSAGE_TOO_BIG
        self._size += len(out)
        return out
