"""The client protocol object without I/O: server bytes in, replies and recorded events out."""

from __future__ import annotations

import struct
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st
from peers import server_frame
from wsproto.extensions import PerMessageDeflate

from wsload.core.closing import CloseState
from wsload.core.frames import OP_BINARY, OP_PONG, OP_TEXT, FrameReader
from wsload.core.matching import Matcher
from wsload.core.outcomes import Outcome
from wsload.core.protocol import ClientProtocol


def _unmask(frame: bytes) -> tuple[int, bytes, int]:
    """``(opcode, payload, first byte)`` of one masked client frame with a 7-bit length."""
    length = frame[1] & 0x7F
    key = frame[2:6]
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(frame[6 : 6 + length]))
    return frame[0] & 0x0F, payload, frame[0]


def _protocol(**kwargs: object) -> ClientProtocol:
    return ClientProtocol(FrameReader(1 << 20), **kwargs)  # type: ignore[arg-type]


def test_ping_is_answered_with_its_payload_while_open() -> None:
    p = _protocol()
    out = p.receive_data(server_frame(0x9, b"abc"), 1.0)
    assert _unmask(out)[:2] == (OP_PONG, b"abc")
    assert p.messages_received == 0


def test_awaited_match_is_recorded_and_other_messages_are_pushes() -> None:
    p = _protocol()
    p.expecting = Matcher.build("json", {"op": "ack"})
    data = server_frame(0x1, b'{"op":"push"}') + server_frame(0x1, b'{"op":"ack","n":1}')
    assert p.receive_data(data, 2.0) == b""
    assert (p.matched_at, p.expecting) == (2.0, None)
    assert (p.messages_received, p.messages_unmatched, p.bytes_received) == (2, 1, 31)
    p.receive_data(server_frame(0x1, b"a"), 2.5)
    p.receive_data(server_frame(0x2, b"bc"), 4.0)
    assert p.push_intervals == [0.5, 1.5]  # the match is not a push


def test_reflection_reassembles_fragments_and_counts_as_sent() -> None:
    p = _protocol(reflect=True)
    data = server_frame(0x1, "hé".encode(), fin=False) + server_frame(0x0, b"llo")
    out = p.receive_data(data, 1.0)
    assert _unmask(out)[:2] == (OP_TEXT, "héllo".encode())
    assert (p.messages_sent, p.bytes_sent, p.bytes_received) == (1, 6, 6)


def test_no_reflection_once_the_server_closed() -> None:
    p = _protocol(reflect=True)
    out = p.receive_data(server_frame(0x8, struct.pack("!H", 4000)) + server_frame(0x1, b"x"), 1.0)
    assert out == b""
    assert p.tracker.state is CloseState.CLOSE_RECEIVED
    assert p.tracker.code_received == 4000


def test_protocol_error_fails_with_its_code_and_first_failure_wins() -> None:
    p = _protocol()
    p.receive_data(bytes((0x81 | 0x40, 1)) + b"x", 1.0)  # RSV1 without an extension
    assert p.failure is not None and p.failure[0] is Outcome.PROTOCOL_ERROR
    assert p.fail_code == 1002
    p.fail(Outcome.MESSAGE_TIMEOUT, "later")
    assert p.failure[0] is Outcome.PROTOCOL_ERROR


def test_encoder_hook_sets_rsv1_and_transforms_the_payload() -> None:
    p = _protocol(encoder=lambda payload: (payload[::-1], True))
    opcode, payload, first = _unmask(p.message(b"abc", binary=True))
    assert (opcode, payload, first & 0x40) == (OP_BINARY, b"cba", 0x40)
    assert (p.messages_sent, p.bytes_sent) == (1, 3)  # counted before the transform


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["any", "json", "regex", "equals"]))
def test_arbitrary_bytes_never_raise(data: bytes, kind: str) -> None:
    p = _protocol(reflect=True)
    value = {"json": {"a": 1}, "regex": "a+", "equals": "x", "any": None}[kind]
    p.expecting = Matcher.build(kind, value)  # type: ignore[arg-type]
    for cut in (len(data) // 3, len(data)):
        p.receive_data(data[:cut], 1.0)
    assert p.messages_received >= p.messages_unmatched


def test_a_negotiated_extension_decompresses_through_the_reader() -> None:
    """The hook permessage-deflate plugs into: wsproto extensions given to the FrameReader see
    every RSV1 frame (the fast path leaves them alone); sizes count the inflated payload."""
    pmd = PerMessageDeflate()
    pmd.finalize("permessage-deflate")
    deflate = zlib.compressobj(wbits=-15)
    body = (deflate.compress(b"hello " * 20) + deflate.flush(zlib.Z_SYNC_FLUSH))[:-4]
    p = ClientProtocol(FrameReader(1 << 20, [pmd]), reflect=True)
    out = p.receive_data(bytes((0x80 | 0x40 | OP_TEXT, len(body))) + body, 1.0)
    assert (p.messages_received, p.bytes_received, p.failure) == (1, 120, None)
    assert len(out) == 2 + 4 + 120 and out[0] & 0x0F == OP_TEXT  # reflected, uncompressed
