"""Fuzzing the client engine with what a broken or hostile server could send.

test_core_frames.py and test_core_handshake.py already feed *random* bytes to the frame reader
and the upgrade parser. Random bytes rarely get past the first check, so here hypothesis also
*mutates valid streams* (flip, insert, delete, truncate bytes of a real 101 + frames), walks
the close state machine through arbitrary event orders, and drives the whole driver over
``trio.testing.memory_stream_pair`` with a fake server that sends all of that in arbitrary
pieces and then goes silent, closes or resets. Whatever arrives: a classified Outcome, no
exception, and (under Trio's autojump clock) every connection ends within its timeouts.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from peers import RawPeer, server_frame

from wsload.core.closing import (
    TRANSITIONS,
    CloseTracker,
    HandshakeEvent,
    IllegalTransition,
    classify,
)
from wsload.core.faults import ProtocolViolation
from wsload.core.frames import FrameError, FrameReader, ReceivedClose
from wsload.core.handshake import ResponseParser, accept_key
from wsload.core.kinds import CloseKind
from wsload.core.outcomes import Outcome
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.driver import run_connection
from wsload.scenario.model import CLOSE_KINDS, CloseSpec, SessionConfig, TargetConfig

pytestmark = pytest.mark.usefixtures("bounded_sync")

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def _response(key: bytes) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
    )


VALID_FRAMES = [
    server_frame(0x1, b"hello"),
    server_frame(0x2, bytes(200)),
    server_frame(0x9, b"ping"),
    server_frame(0xA, b"pong"),
    server_frame(0x1, b"par", fin=False) + server_frame(0x0, b"t"),
    server_frame(0x8, struct.pack("!H", 1000) + b"bye"),
]

# --- mutations of valid streams ---------------------------------------------------------------

_mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "set"]),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=0, max_value=255),
)


def _mutate(data: bytes, mutations: list[tuple[str, int, int]], cut: int | None) -> bytes:
    buf = bytearray(data)
    for op, where, value in mutations:
        if not buf:
            break
        i = where % len(buf)
        if op == "flip":
            buf[i] ^= 1 << (value % 8)
        elif op == "insert":
            buf.insert(i, value)
        elif op == "delete":
            del buf[i]
        else:
            buf[i] = value
    return bytes(buf if cut is None else buf[: cut % (len(buf) + 1)])


def _pieces(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut into pieces of the given sizes (cycled), so every split point gets tried."""
    out, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)] if sizes else len(data)
        out.append(data[i : i + n])
        i, k = i + n, k + 1
    return out


_stream = st.lists(st.sampled_from(VALID_FRAMES), max_size=6).map(b"".join)
_sizes = st.lists(st.integers(min_value=1, max_value=64), max_size=5)


@settings(max_examples=300, deadline=None)
@given(_stream, st.lists(_mutation, max_size=4), st.none() | st.integers(0), _sizes)
def test_mutated_frame_streams_are_frames_or_a_frame_error(
    stream: bytes, mutations: list[tuple[str, int, int]], cut: int | None, sizes: list[int]
) -> None:
    reader = FrameReader(1000)
    try:
        for piece in _pieces(_mutate(stream, mutations, cut), sizes):
            reader.feed(piece)
            while (item := reader.next()) is not None:
                if isinstance(item, ReceivedClose):
                    assert item.error or item.code is None or 1000 <= item.code < 5000
    except FrameError as exc:
        assert exc.code in (1002, 1007, 1009)


@settings(max_examples=300, deadline=None)
@given(st.lists(_mutation, min_size=1, max_size=4), st.none() | st.integers(0), _sizes)
def test_mutated_upgrade_responses_parse_or_are_invalid(
    mutations: list[tuple[str, int, int]], cut: int | None, sizes: list[int]
) -> None:
    data = _mutate(_response(KEY) + VALID_FRAMES[0], mutations, cut)
    parser = ResponseParser(KEY)
    try:
        for piece in _pieces(data, sizes):
            response = parser.feed(piece)
            if response is not None:
                assert 100 <= response.status <= 999
                if response.accepted:  # a 101 that passed validation kept the right key
                    assert dict(response.headers)["sec-websocket-accept"] == accept_key(KEY).decode(
                        "ascii"
                    )
                break
    except ProtocolViolation as exc:
        assert exc.outcome == "handshake_invalid"


# --- the close state machine ------------------------------------------------------------------

_events = st.lists(
    st.tuples(
        st.sampled_from(list(HandshakeEvent)), st.booleans(), st.none() | st.integers(0, 5000)
    ),
    max_size=8,
)


@settings(max_examples=400, deadline=None)
@given(_events, st.sampled_from(CLOSE_KINDS), st.booleans(), st.booleans())
def test_any_event_order_is_legal_or_refused_and_always_classified(
    events: list[tuple[HandshakeEvent, bool, int | None]], kind: str, timed_out: bool, stopped: bool
) -> None:
    """Events in any order: each is a legal transition or IllegalTransition (state unchanged),
    and whatever state is reached, ``classify`` names exactly one outcome."""
    t = CloseTracker()
    calls: dict[HandshakeEvent, Callable[[float, bool, int | None], None]] = {
        HandshakeEvent.SEND_CLOSE: lambda now, _, code: t.send_close(now, code, ""),
        HandshakeEvent.RECEIVE_CLOSE: lambda now, _, code: t.receive_close(now, code, ""),
        HandshakeEvent.RECEIVE_EOF: lambda now, flag, _: t.receive_eof(now, reset=flag),
        HandshakeEvent.CLOSE_SOCKET: lambda now, _, __: t.close_socket(now),
    }
    for now, (what, flag, code) in enumerate(events):
        before = t.state
        legal = (before, what) in TRANSITIONS
        try:
            calls[what](float(now), flag, code)
        except IllegalTransition:
            assert not legal
            assert t.state is before
        else:
            assert legal
            assert t.state is TRANSITIONS[before, what]
        outcome, detail = classify(CloseKind(kind), t, timed_out=timed_out, stopped=stopped)
        assert outcome in Outcome
        assert isinstance(detail, str)


# --- the whole driver over memory streams -----------------------------------------------------

_ending = st.sampled_from(["eof", "silent", "read", "abort"])
_upgrade = st.sampled_from(["valid", "mutated", "random"])


async def _fake_server(
    peer: RawPeer, upgrade: str, body: bytes, mutations: list[tuple[str, int, int]],
    sizes: list[int], ending: str,
) -> None:  # fmt: skip
    try:
        await peer.read_request()
        head = _response(peer.key)
        if upgrade == "mutated":
            head = _mutate(head, mutations, None)
        elif upgrade == "random":
            head = body[:40]
        for piece in _pieces(head + body, sizes):
            await peer.send(piece)
            await trio.sleep(0.001)
        if ending == "read":
            await peer.frames_until_eof()
        elif ending == "silent":
            await trio.sleep(1000)
    except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError, AssertionError):
        pass  # the client gave up first (AssertionError: RawPeer saw an unmasked frame)
    finally:
        if ending == "abort":
            await trio.aclose_forcefully(peer.stream)
        else:
            await peer.aclose()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    upgrade=_upgrade,
    body=st.one_of(_stream, st.binary(max_size=300), _stream.map(lambda s: s + bytes(50))),
    mutations=st.lists(_mutation, max_size=3),
    sizes=_sizes,
    ending=_ending,
    kind=st.sampled_from(CLOSE_KINDS),
    messages=st.integers(0, 2),
    ping=st.sampled_from([0.0, 0.5]),
)
def test_driver_classifies_whatever_a_fake_server_sends(
    upgrade: str, body: bytes, mutations: list[tuple[str, int, int]], sizes: list[int],
    ending: str, kind: str, messages: int, ping: float,
) -> None:  # fmt: skip
    target = TargetConfig(handshake_timeout=5.0, max_message_size=100)
    session = SessionConfig(messages=messages, message_timeout=5.0, ping_interval=ping)
    spec = CloseSpec(kind=kind, label=kind, timeout=5.0)  # type: ignore[arg-type]

    async def main() -> tuple[Outcome, float]:
        async with trio.open_nursery() as nursery:

            async def opener(plan: object, endpoint: object) -> trio.abc.Stream:
                client, server = trio.testing.memory_stream_pair()
                nursery.start_soon(
                    _fake_server, RawPeer(server), upgrade, body, mutations, sizes, ending
                )
                return client

            ctx = DriverContext.create(target, session, "ws://fuzz.invalid/", opener=opener)
            start = trio.current_time()
            with trio.fail_after(100):
                record = await run_connection(ConnectionPlan(1, start, spec), ctx)
            nursery.cancel_scope.cancel()
        return record.outcome, trio.current_time() - start

    outcome, elapsed = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert outcome in Outcome
    event(f"outcome {outcome}")  # --hypothesis-show-statistics: what the fuzzing reached
    # handshake 5 s + session (messages, pings: 5 s each at most) + close phases 2 x 5 s
    assert elapsed <= 5 + 5 * (messages + 1) + 10 + 1
