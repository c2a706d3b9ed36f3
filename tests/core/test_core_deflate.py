"""permessage-deflate without I/O: the offer, strict negotiation, the server's acceptance, and
the codec through wsproto's frame decoders (both directions, every window and takeover, the
threshold, fragmentation, and bombs that must stop at the size limit)."""

from __future__ import annotations

import random
import tracemalloc
import zlib

import pytest
from hostile import bomb
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameDecoder, FrameProtocol

from wsload.core.deflate import (
    DeflateParams,
    DeflateSettings,
    PerMessageDeflate,
    accept_offer,
    negotiate,
)
from wsload.core.faults import ProtocolViolation
from wsload.core.frames import FrameError, FrameReader
from wsload.core.handshake import RequestTemplate, ResponseParser, accept_key
from wsload.core.protocol import ClientProtocol

pytestmark = pytest.mark.usefixtures("bounded_sync")

LIMIT = 1 << 20
BROWSER = DeflateSettings()


# --- the offer and the answer --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "offer"),
    [
        (BROWSER, "permessage-deflate; client_max_window_bits"),  # what browsers send
        (
            DeflateSettings(
                client_max_window_bits=10,
                server_max_window_bits=12,
                client_no_context_takeover=True,
                server_no_context_takeover=True,
            ),
            "permessage-deflate; client_max_window_bits=10; server_max_window_bits=12; "
            "client_no_context_takeover; server_no_context_takeover",
        ),
    ],
)
def test_offer(settings: DeflateSettings, offer: str) -> None:
    assert settings.offer() == offer
    request = RequestTemplate.build(host="h", resource="/", extensions=settings.offer())
    assert f"\r\nSec-WebSocket-Extensions: {offer}\r\n".encode() in request.render(b"k", 1)


@pytest.mark.parametrize(
    ("settings", "values", "params"),
    [
        (BROWSER, [], None),  # declined
        (BROWSER, [""], None),
        (BROWSER, ["permessage-deflate"], DeflateParams()),
        (BROWSER, ["Permessage-Deflate"], DeflateParams()),
        (
            BROWSER,  # websockets' default answer
            ["permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"],
            DeflateParams(client_max_window_bits=12, server_max_window_bits=12),
        ),
        (
            BROWSER,
            ['permessage-deflate; client_max_window_bits="9"; client_no_context_takeover'],
            DeflateParams(client_max_window_bits=9, client_no_context_takeover=True),
        ),
        (
            BROWSER,
            ["permessage-deflate;server_no_context_takeover"],
            DeflateParams(server_no_context_takeover=True),
        ),
        (
            DeflateSettings(client_max_window_bits=10, server_max_window_bits=11),
            ["permessage-deflate; server_max_window_bits=9"],
            DeflateParams(client_max_window_bits=10, server_max_window_bits=9),
        ),
        (
            DeflateSettings(client_no_context_takeover=True, server_no_context_takeover=True),
            ["permessage-deflate; server_no_context_takeover"],
            DeflateParams(client_no_context_takeover=True, server_no_context_takeover=True),
        ),
    ],
)
def test_accepted_answers(
    settings: DeflateSettings, values: list[str], params: DeflateParams | None
) -> None:
    assert negotiate(settings, values) == params


@pytest.mark.parametrize(
    ("settings", "values", "message"),
    [
        (BROWSER, ["x-webkit-deflate-frame"], "only permessage-deflate was offered"),
        (BROWSER, ["permessage-deflate", "permessage-deflate"], "only permessage-deflate"),
        (BROWSER, ["permessage-deflate, x-foo"], "only permessage-deflate"),
        (BROWSER, ["permessage-deflate; mystery=1"], "'mystery', which was not offered"),
        (BROWSER, ["permessage-deflate; server_max_window_bits=16"], "must be 8-15"),
        (BROWSER, ["permessage-deflate; server_max_window_bits=7"], "must be 8-15"),
        (BROWSER, ["permessage-deflate; server_max_window_bits"], "must be 8-15, got None"),
        (BROWSER, ["permessage-deflate; client_max_window_bits=x"], "must be 8-15"),
        (BROWSER, ["permessage-deflate; server_no_context_takeover=1"], "takes no value"),
        (
            BROWSER,
            ["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
            "twice",
        ),
        (BROWSER, ["permessage-deflate; ="], "malformed parameter"),
        (BROWSER, ["perm essage"], "malformed extension"),
        (
            DeflateSettings(client_max_window_bits=10),
            ["permessage-deflate; client_max_window_bits=12"],
            "over the 10 offered",
        ),
        (
            DeflateSettings(server_max_window_bits=10),
            ["permessage-deflate"],
            "server_max_window_bits was offered and not confirmed",
        ),
        (
            DeflateSettings(server_no_context_takeover=True),
            ["permessage-deflate"],
            "server_no_context_takeover was offered and not confirmed",
        ),
    ],
)
def test_answers_not_offered_break_the_handshake(
    settings: DeflateSettings, values: list[str], message: str
) -> None:
    with pytest.raises(ProtocolViolation) as info:
        negotiate(settings, values)
    assert info.value.outcome == "handshake_invalid"
    assert message in str(info.value), str(info.value)


def _response(*headers: str) -> bytes:
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(b'key').decode()}",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_the_response_parser_negotiates_only_when_it_offered() -> None:
    answer = _response("Sec-WebSocket-Extensions: permessage-deflate")
    response = ResponseParser(b"key", deflate=BROWSER).feed(answer)
    assert response is not None and response.deflate == DeflateParams()
    declined = ResponseParser(b"key", deflate=BROWSER).feed(_response())
    assert declined is not None and declined.deflate is None
    with pytest.raises(ProtocolViolation, match="none was offered"):
        ResponseParser(b"key").feed(answer)


@pytest.mark.parametrize(
    ("offer", "response", "params"),
    [
        ("permessage-deflate; client_max_window_bits", "permessage-deflate", DeflateParams()),
        (
            "permessage-deflate; client_max_window_bits=10; server_max_window_bits=9; "
            "client_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=9; client_max_window_bits=10",
            DeflateParams(10, 9, True, True),
        ),
        (
            "permessage-deflate; server_max_window_bits=15",
            "permessage-deflate; server_max_window_bits=15",  # an offered one is confirmed
            DeflateParams(),
        ),
        (
            "x-foo, permessage-deflate; mystery, permessage-deflate; server_max_window_bits=20, "
            "permessage-deflate; client_no_context_takeover",  # the first acceptable offer wins
            "permessage-deflate; client_no_context_takeover",
            DeflateParams(client_no_context_takeover=True),
        ),
    ],
)
def test_the_server_accepts_the_first_acceptable_offer(
    offer: str, response: str, params: DeflateParams
) -> None:
    assert accept_offer(offer) == (params, response)


@pytest.mark.parametrize(
    "offer",
    ["x-foo", "permessage-deflate; x=1", "permessage-deflate; client_max_window_bits=7", ";"],
)
def test_the_server_declines_what_it_cannot_accept(offer: str) -> None:
    assert accept_offer(offer) is None


@settings(max_examples=200, deadline=None)
@given(st.builds(
    DeflateSettings,
    client_max_window_bits=st.none() | st.integers(8, 15),
    server_max_window_bits=st.none() | st.integers(8, 15),
    client_no_context_takeover=st.booleans(),
    server_no_context_takeover=st.booleans(),
))  # fmt: skip
def test_our_server_answers_every_offer_of_our_client_acceptably(offer: DeflateSettings) -> None:
    accepted = accept_offer(offer.offer())
    assert accepted is not None
    params, header = accepted
    assert negotiate(offer, [header]) == params


# --- the codec -----------------------------------------------------------------------------------


def _pair(params: DeflateParams, limit: int = LIMIT) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    return (
        PerMessageDeflate(params, client=True, max_message_size=limit),
        PerMessageDeflate(params, client=False, max_message_size=limit),
    )


def _send(client: PerMessageDeflate, payload: bytes, *, binary: bool = True) -> bytes:
    """One client message frame as the engine makes it: ``ClientProtocol`` with the codec as
    its encoder."""
    proto = ClientProtocol(FrameReader(LIMIT, (client,)), encoder=client.encode)
    return proto.message(payload, binary=binary)


def _server_reads(server: PerMessageDeflate, frames: bytes) -> list[bytes]:
    decoder = FrameDecoder(client=False, extensions=[server])
    decoder.receive_bytes(frames)
    out = []
    while (frame := decoder.process_buffer()) is not None:
        out.append(bytes(frame.payload) if isinstance(frame.payload, bytes | bytearray) else b"")
    return out


def _client_reads(reader: FrameReader, data: bytes) -> list[bytes | str]:
    reader.feed(data)
    out: list[bytes | str] = []
    while (item := reader.next()) is not None:
        assert isinstance(item, tuple)
        out.append(item[1])
    return out


_params = st.builds(
    DeflateParams,
    client_max_window_bits=st.integers(8, 15),
    server_max_window_bits=st.integers(8, 15),
    client_no_context_takeover=st.booleans(),
    server_no_context_takeover=st.booleans(),
)
_messages = st.lists(
    st.binary(max_size=3000) | st.sampled_from([b"a" * 5000, bytes(range(256)) * 8, b""]),
    min_size=1,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(_params, _messages)
def test_client_to_server_round_trip(params: DeflateParams, messages: list[bytes]) -> None:
    client, server = _pair(params)
    frames = b"".join(_send(client, m) for m in messages)
    assert frames[0] & 0x40  # RSV1
    assert _server_reads(server, frames) == messages
    assert server.compressed_received == len(messages)


@settings(max_examples=150, deadline=None)
@given(_params, _messages, st.integers(1, 4))
def test_server_to_client_round_trip_also_fragmented(
    params: DeflateParams, messages: list[bytes], parts: int
) -> None:
    client, server = _pair(params)
    protocol = FrameProtocol(client=False, extensions=[server])
    wire = b""
    for message in messages:
        step = max(1, len(message) // parts)
        chunks = [message[i : i + step] for i in range(0, len(message), step)] or [b""]
        for i, chunk in enumerate(chunks):
            wire += protocol.send_data(chunk, fin=i == len(chunks) - 1)
    reader = FrameReader(LIMIT, (client,))
    got = _client_reads(reader, wire)
    joined: list[bytes] = []
    buffer = b""
    for piece in got:  # fragments come out as they inflate; join them back per message
        assert isinstance(piece, bytes)
        buffer += piece
    for message in messages:
        joined.append(buffer[: len(message)])
        buffer = buffer[len(message) :]
    assert joined == messages and buffer == b""
    assert client.compressed_received == len(messages)


def test_text_is_inflated_then_checked_as_utf8() -> None:
    client, server = _pair(DeflateParams())
    protocol = FrameProtocol(client=False, extensions=[server])
    reader = FrameReader(LIMIT, (client,))
    assert _client_reads(reader, protocol.send_data("héllo " * 100, fin=True)) == ["héllo " * 100]
    bad = server._deflate(b"bye \xff\xfe", True)
    with pytest.raises(FrameError) as info:
        _client_reads(reader, bytes((0xC1, len(bad))) + bad)
    assert info.value.code == 1007


def test_messages_under_the_threshold_go_plain() -> None:
    client = PerMessageDeflate(DeflateParams(), client=True, max_message_size=LIMIT, threshold=64)
    assert not _send(client, b"x" * 63, binary=False)[0] & 0x40
    assert _send(client, b"x" * 64, binary=False)[0] & 0x40
    _, server = _pair(DeflateParams())
    assert _server_reads(server, _send(client, b"x" * 63, binary=False)) == [b"x" * 63]


def test_context_takeover_makes_repeats_smaller_and_no_takeover_does_not() -> None:
    message = bytes(range(256)) * 4
    keep, _ = _pair(DeflateParams())
    reset, _ = _pair(DeflateParams(client_no_context_takeover=True))
    assert len(_send(keep, message)) > len(_send(keep, message))
    assert len(_send(reset, message)) == len(_send(reset, message))


def test_an_8_bit_window_is_honoured_with_stored_blocks() -> None:
    client, server = _pair(DeflateParams(client_max_window_bits=8))
    message = b"abc" * 1000
    frame = _send(client, message)
    strict = zlib.decompressobj(-8)  # a peer with a 256-byte window reads it
    body = frame[2 + 2 + 4 :]  # 16-bit length, mask
    key = frame[4:8]
    unmasked = bytes(b ^ key[i % 4] for i, b in enumerate(body))
    assert strict.decompress(unmasked + b"\x00\x00\xff\xff") == message
    assert _server_reads(server, frame) == [message]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (bytes((0xC9, 0)), 1002),  # RSV1 on a Ping
        (bytes((0x42, 1, 0x00)) + bytes((0xC0, 0)), 1002),  # RSV1 on a continuation
        (bytes((0xC2, 3)) + b"\xff\xff\xff", 1007),  # not deflate data
    ],
)
def test_bad_compressed_frames(frame: bytes, code: int) -> None:
    client, _ = _pair(DeflateParams())
    with pytest.raises(FrameError) as info:
        _client_reads(FrameReader(LIMIT, (client,)), frame)
    assert info.value.code == code


def _frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0xC2, n)) + payload
    if n < 65536:
        return bytes((0xC2, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0xC2, 127)) + n.to_bytes(8, "big") + payload


@pytest.mark.parametrize(
    ("inflated", "limit"), [(LIMIT + 1, LIMIT), (3 * LIMIT // 2, LIMIT), (100 * LIMIT, LIMIT)]
)
def test_a_bomb_is_1009_and_never_inflated_past_the_limit(inflated: int, limit: int) -> None:
    payload = bomb(inflated)
    client, _ = _pair(DeflateParams(), limit)
    reader = FrameReader(limit, (client,))
    tracemalloc.start()
    try:
        with pytest.raises(FrameError) as info:
            _client_reads(reader, _frame(payload))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.code == 1009
    assert peak < len(payload) * 2 + 3 * limit  # the output stops at the limit + 1 byte


def test_a_message_exactly_at_the_limit_passes() -> None:
    client, _ = _pair(DeflateParams(), 4096)
    got = _client_reads(FrameReader(4096, (client,)), _frame(bomb(4096)))
    assert b"".join(p for p in got if isinstance(p, bytes)) == bytes(4096)


# --- the client's lean compressor and what a held connection keeps ----------------------------


def _payload(frame: bytes) -> bytes:
    """The unmasked payload of one client frame (7- or 16-bit length)."""
    length = frame[1] & 0x7F
    start = 2 if length < 126 else 4
    key, body = frame[start : start + 4], frame[start + 4 :]
    return bytes(b ^ key[i % 4] for i, b in enumerate(body))


_TEXT = b"".join(
    b'{"op":"msg","seq":%d,"room":"lobby","text":"%s"}' % (n, b"hello world " * (n % 7))
    for n in range(400)
)


@pytest.mark.parametrize("takeover", [True, False], ids=["takeover", "no_takeover"])
@pytest.mark.parametrize("agreed", [9, 10, 12, 15])
def test_the_client_output_inflates_with_the_agreed_window_and_with_15_bits(
    agreed: int, takeover: bool
) -> None:
    params = DeflateParams(client_max_window_bits=agreed, client_no_context_takeover=not takeover)
    client = PerMessageDeflate(params, client=True, max_message_size=LIMIT)
    messages = [_TEXT[i * 2000 : i * 2000 + size] for i, size in enumerate([40, 700] * 5)]
    messages += [_TEXT[:20_000], _TEXT[:20_000]]  # a repeat: found through the kept history
    strict, wide = zlib.decompressobj(-agreed), zlib.decompressobj(-15)  # a server's streams
    sent = 0
    for message in messages:
        data = _payload(_send(client, message)) + b"\x00\x00\xff\xff"
        sent += len(data) - 4
        assert strict.decompress(data) == message  # never a reference beyond the agreed window
        assert wide.decompress(data) == message
        if not takeover:
            strict, wide = zlib.decompressobj(-agreed), zlib.decompressobj(-15)
    assert sent < sum(map(len, messages)) / 3  # it compresses, with a 4 KiB window at most
    noise = random.Random(7).randbytes(200)  # within reach of even a 9-bit window
    first = _payload(_send(client, noise))
    again = _payload(_send(client, noise))  # with takeover: references into the history
    assert len(first) > 200 and (len(again) < 20) is takeover


def _kept(params: DeflateParams, *, messages: int = 1, n: int = 100) -> float:
    """Bytes that ``n`` client codecs still hold (tracemalloc sees zlib's allocations) after
    ``messages`` messages each way: what a held connection pays for deflate."""
    _, server = _pair(params)
    protocol = FrameProtocol(client=False, extensions=[server])
    sent = [_TEXT[m * 3000 : (m + 1) * 3000] for m in range(messages)]
    wire = [protocol.send_data(message, fin=True) for message in sent]  # the server's stream
    tracemalloc.start()
    try:
        clients = [PerMessageDeflate(params, client=True, max_message_size=LIMIT) for _ in range(n)]
        baseline = tracemalloc.get_traced_memory()[0]
        for client in clients:
            reader = FrameReader(LIMIT, (client,))
            for message, frame in zip(sent, wire, strict=True):
                _send(client, message)
                assert _client_reads(reader, frame) == [message]
        return (tracemalloc.get_traced_memory()[0] - baseline) / n
    finally:
        tracemalloc.stop()


def test_a_held_client_connection_keeps_only_its_inflater_and_1_kib_of_history() -> None:
    assert _kept(DeflateParams(), messages=0) < 100  # nothing before the first message
    browser = _kept(DeflateParams(), messages=3)  # a 15-bit inflater: 32 KiB window + state
    assert 32 * 1024 < browser < 32 * 1024 + 8 * 1024 + 1024 + 256
    lean = _kept(DeflateParams(9, 9), messages=3)  # the lean offer's: 512-byte window, history
    assert lean < 512 + 8 * 1024 + 512 + 256
    reset = DeflateParams(client_no_context_takeover=True, server_no_context_takeover=True)
    assert _kept(reset, messages=3) < 256  # no takeover either way: nothing kept at all
