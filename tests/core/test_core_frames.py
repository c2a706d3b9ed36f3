"""Client frames (masked encoder, invalid Close variants) and the strict server-frame reader."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol

from wsload.core.faults import ProtocolViolation
from wsload.core.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    FrameReader,
    ReceivedClose,
    close_payload,
    encode_frame,
    invalid_close,
    mask,
)


def unmask_client_frame(data: bytes) -> tuple[int, bool, bytes, bytes]:
    """Decode one client frame by hand (independent of the code under test).

    Returns (opcode, fin, payload, rest); asserts the mask bit is set.
    """
    first, second = data[0], data[1]
    assert second & 0x80, "client frames must be masked"
    n = second & 0x7F
    offset = 2
    if n == 126:
        (n,) = struct.unpack("!H", data[2:4])
        offset = 4
    elif n == 127:
        (n,) = struct.unpack("!Q", data[2:10])
        offset = 10
    key = data[offset : offset + 4]
    body = data[offset + 4 : offset + 4 + n]
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(body))
    return first & 0x0F, bool(first & 0x80), payload, data[offset + 4 + n :]


def server_frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 65535, 65536, 70001])
def test_encode_frame_lengths_and_masking(size: int) -> None:
    payload = bytes(range(256)) * (size // 256 + 1)
    payload = payload[:size]
    frame = encode_frame(OP_BINARY, payload)
    opcode, fin, decoded, rest = unmask_client_frame(frame)
    assert (opcode, fin, decoded, rest) == (OP_BINARY, True, payload, b"")


def test_encoded_frames_decode_with_wsproto_server_side() -> None:
    server = FrameProtocol(client=False, extensions=[])
    server.receive_bytes(
        encode_frame(OP_TEXT, "héllo".encode())
        + encode_frame(OP_PING, b"p")
        + encode_frame(OP_CLOSE, close_payload(4001, "bye"))
    )
    frames = list(server.received_frames())
    assert [f.payload for f in frames] == ["héllo", b"p", (4001, "bye")]


def test_masks_are_fresh_per_frame() -> None:
    keys = {encode_frame(OP_TEXT, b"x")[2:6] for _ in range(64)}
    assert len(keys) > 60


def test_mask_is_an_involution() -> None:
    data = bytes(range(251))
    assert mask(mask(data, b"\x01\x02\x03\x04"), b"\x01\x02\x03\x04") == data
    assert mask(b"", b"abcd") == b""


def test_close_payload_cuts_reason_on_a_character_boundary() -> None:
    assert close_payload(None) == b""
    payload = close_payload(1000, "é" * 100)  # 200 bytes of UTF-8
    assert len(payload) == 2 + 122
    assert payload[2:].decode("utf-8") == "é" * 61


@pytest.mark.parametrize(
    ("variant", "code", "payload_len"),
    [
        ("code_1005", 1005, 2),
        ("code_1006", 1006, 2),
        ("code_1015", 1015, 2),
        ("code_out_of_range", 999, 2),
        ("reason_too_long", 1000, 126),
        ("invalid_utf8", 1000, 8),
        ("one_byte", None, 1),
    ],
)
def test_invalid_close_variants(variant: str, code: int | None, payload_len: int) -> None:
    frame, code_sent, reason = invalid_close(variant)
    opcode, fin, payload, rest = unmask_client_frame(frame)
    assert (opcode, fin, rest) == (OP_CLOSE, True, b"")
    assert len(payload) == payload_len
    assert code_sent == code
    if code is not None:
        assert struct.unpack("!H", payload[:2])[0] == code
    if variant == "invalid_utf8":
        assert reason == "bye \\xff\\xfe"
        with pytest.raises(UnicodeDecodeError):
            payload[2:].decode("utf-8")
    with pytest.raises(ValueError):
        invalid_close("nope")


def test_reader_yields_data_control_and_close() -> None:
    reader = FrameReader(1 << 20)
    reader.feed(
        server_frame(OP_TEXT, b"hi")
        + server_frame(OP_BINARY, b"\x00\x01")
        + server_frame(OP_PING, b"p")
        + server_frame(OP_PONG, b"q")
        + server_frame(OP_CLOSE, struct.pack("!H", 4000) + b"done")
        + server_frame(OP_TEXT, b"after close: ignored")
    )
    items = []
    while (item := reader.next()) is not None:
        items.append(item)
    assert items == [
        (OP_TEXT, "hi", True),
        (OP_BINARY, b"\x00\x01", True),
        (OP_PING, b"p", True),
        (OP_PONG, b"q", True),
        ReceivedClose(4000, "done"),
    ]
    reader.feed(server_frame(OP_TEXT, b"more"))
    assert reader.next() is None


def test_reader_fragmented_message_and_partial_bytes() -> None:
    reader = FrameReader(100)
    data = server_frame(OP_TEXT, "é".encode()[:1], fin=False) + server_frame(
        OP_CONTINUATION, "é".encode()[1:] + b"!"
    )
    out: list[tuple[int, bytes | str, bool]] = []
    for byte in data:
        reader.feed(bytes([byte]))
        while (item := reader.next()) is not None:
            assert not isinstance(item, ReceivedClose)
            out.append(item)
    assert "".join(str(p) for _, p, _ in out) == "é!"
    assert out[-1][2] is True


@pytest.mark.parametrize(
    ("payload", "code", "reason", "error", "fail_code"),
    [
        (b"", None, "", "", 1002),
        (b"\x03\xe8", 1000, "", "", 1002),
        (b"\x03", None, "", "1-byte", 1002),
        (struct.pack("!H", 1005), 1005, "", "may not be sent", 1002),
        (struct.pack("!H", 999), 999, "", "may not be sent", 1002),
        (struct.pack("!H", 5000), 5000, "", "may not be sent", 1002),
        (struct.pack("!H", 1000) + b"\xff", 1000, "\\xff", "UTF-8", 1007),
    ],
)
def test_reader_close_frames_keep_what_the_server_sent(
    payload: bytes, code: int | None, reason: str, error: str, fail_code: int
) -> None:
    reader = FrameReader(100)
    reader.feed(server_frame(OP_CLOSE, payload))
    item = reader.next()
    assert isinstance(item, ReceivedClose)
    assert (item.code, item.reason) == (code, reason)
    assert error in item.error and bool(error) == bool(item.error)
    if error:
        assert item.fail_code == fail_code


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (bytes((0x81, 0x82)) + b"abcd" + b"xx", 1002),  # masked server frame
        (bytes((0xC1, 0x01)) + b"x", 1002),  # RSV1 without an extension
        (bytes((0x83, 0x00)), 1002),  # reserved opcode
        (bytes((0x09, 0x00)), 1002),  # fragmented control frame
        (bytes((0x89, 0x7E, 0x00, 0x7E)) + b"x" * 126, 1002),  # control frame > 125
        (bytes((0x82, 0x7E, 0x00, 0x05)) + b"x" * 5, 1002),  # non-minimal length
        (server_frame(OP_CONTINUATION, b"x"), 1002),  # continuation without a start
        (server_frame(OP_TEXT, b"\xff"), 1007),  # invalid UTF-8 text
        (server_frame(OP_BINARY, b"x" * 11), 1009),  # over the 10-byte limit
        (
            server_frame(OP_TEXT, b"x" * 6, fin=False) + server_frame(OP_CONTINUATION, b"x" * 6),
            1009,
        ),
    ],
)
def test_reader_rejects_broken_framing(data: bytes, code: int) -> None:
    reader = FrameReader(10)
    reader.feed(data)
    with pytest.raises(FrameError) as info:
        while reader.next() is not None:
            pass
    assert info.value.code == code
    assert info.value.outcome == "protocol_error"


def test_message_size_limit_counts_utf8_bytes() -> None:
    reader = FrameReader(4)
    reader.feed(server_frame(OP_TEXT, "éé".encode()))  # 2 characters, 4 bytes: fits
    assert reader.next() == (OP_TEXT, "éé", True)
    reader.feed(server_frame(OP_TEXT, "ééé".encode()))  # 6 bytes: too big
    with pytest.raises(FrameError):
        reader.next()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=10))
def test_arbitrary_server_bytes_never_crash_the_reader(chunks: list[bytes]) -> None:
    reader = FrameReader(1000)
    try:
        for chunk in chunks:
            reader.feed(chunk)
            while True:
                item = reader.next()
                if item is None:
                    break
                if isinstance(item, ReceivedClose):
                    assert item.code is None or 0 <= item.code < 65536
    except ProtocolViolation as exc:
        assert isinstance(exc, FrameError)
        assert exc.code in (1002, 1007, 1009)


def _read_all(reader: FrameReader, chunks: list[bytes]) -> tuple[list[object], int | None]:
    """Messages (fragments joined), control frames and Close, plus the error code if any."""
    out: list[object] = []
    parts: list[bytes | str] = []
    try:
        for chunk in chunks:
            reader.feed(chunk)
            while (item := reader.next()) is not None:
                if isinstance(item, ReceivedClose):
                    out.append(item)
                    continue
                opcode, payload, finished = item
                if opcode in (OP_PING, OP_PONG):
                    out.append((opcode, payload))
                    continue
                parts.append(payload)
                if finished:
                    joined = "".join(p for p in parts if isinstance(p, str)) or b"".join(
                        p for p in parts if isinstance(p, bytes)
                    )
                    out.append((opcode, joined))
                    parts = []
    except FrameError as exc:
        return out, exc.code
    return out, None


_frames = st.one_of(
    st.builds(server_frame, st.sampled_from([OP_TEXT, OP_BINARY]), st.binary(max_size=140)),
    st.builds(
        server_frame, st.just(OP_TEXT), st.text(max_size=60).map(lambda t: t.encode("utf-8"))
    ),
    st.builds(server_frame, st.sampled_from([OP_PING, OP_PONG]), st.binary(max_size=125)),
    st.builds(server_frame, st.just(OP_CLOSE), st.binary(max_size=20)),
    st.builds(
        server_frame,
        st.sampled_from([OP_TEXT, OP_BINARY, OP_CONTINUATION]),
        st.binary(max_size=30),
        st.booleans(),
    ),
    st.binary(min_size=1, max_size=8),  # garbage
)


@settings(max_examples=600, deadline=None)
@given(
    st.lists(_frames, max_size=8), st.lists(st.integers(1, 300), max_size=6), st.integers(1, 200)
)
def test_fast_path_reads_exactly_what_wsproto_reads(
    frames: list[bytes], cuts: list[int], limit: int
) -> None:
    """Any byte stream, cut anywhere: the same messages, control frames, Close and error."""
    data = b"".join(frames)
    chunks, start = [], 0
    for cut in sorted(cuts):
        chunks.append(data[start:cut])
        start = max(start, cut)
    chunks.append(data[start:])
    assert _read_all(FrameReader(limit), chunks) == _read_all(
        FrameReader(limit, fast=False), chunks
    )
