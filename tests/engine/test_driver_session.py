"""The driver over memory streams with the autojump clock: connect, upgrade, session, exact times.

Each test scripts the server end byte by byte (``peers.RawPeer``); timestamps are asserted to the
nanosecond because the mock clock only moves when every task waits.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from peers import RawPeer, memory_opener, server_frame

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.driver import run_connection
from wsload.scenario.model import CloseSpec, Delay, SessionConfig, TargetConfig

Script = Callable[[RawPeer], Awaitable[None]]
CLEAN = CloseSpec(kind="clean", label="clean", timeout=5.0)
QUIET = SessionConfig(messages=0)
DEFAULT_TARGET = TargetConfig()


def approx(value: object) -> Any:
    return pytest.approx(value, abs=1e-9)


def make_ctx(
    nursery: trio.Nursery,
    script: Script,
    *,
    session: SessionConfig = QUIET,
    target: TargetConfig = DEFAULT_TARGET,
    url: str = "ws://test.invalid/path",
    **kwargs: Any,
) -> DriverContext:
    return DriverContext.create(
        target, session, url, opener=memory_opener(nursery, script), **kwargs
    )


async def connect(ctx: DriverContext, spec: CloseSpec = CLEAN, seq: int = 1) -> ConnectionRecord:
    with trio.fail_after(600):  # virtual seconds: the autojump clock makes this instant
        record = await run_connection(ConnectionPlan(seq, trio.current_time(), spec), ctx)
        await trio.testing.wait_all_tasks_blocked()  # let the server script see the end
    assert_monotonic(record)
    return record


def assert_monotonic(r: ConnectionRecord) -> None:
    """connect_start <= connect_end <= request_sent <= upgraded <= close_initiated <= ... end."""
    chain = [r.connect_start, r.connect_end, r.request_sent, r.upgraded, r.close_initiated]
    stamps = [s for s in chain if s is not None]
    assert stamps == sorted(stamps), r
    assert r.socket_closed is not None and r.socket_closed >= stamps[-1], r
    for stamp in (r.close_sent, r.close_received, r.eof):
        if stamp is not None:
            assert stamps[-1] <= stamp <= r.socket_closed or r.close_initiated is None, r


async def accept_and_close_on_close(peer: RawPeer) -> None:
    """A polite server: echo data, answer Close with the same code, then close TCP."""
    await peer.accept()
    while (frame := await peer.frame()) is not None:
        opcode, payload = frame
        if opcode == 0x8:
            await peer.send(server_frame(0x8, payload[:2]))
            await peer.aclose()
            return
        if opcode in (0x1, 0x2):
            await peer.send(server_frame(opcode, payload))


# --- connect ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), Outcome.REFUSED),
        (OSError(errno.EMFILE, "Too many open files"), Outcome.LOCAL_RESOURCE),
        (OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"), Outcome.LOCAL_RESOURCE),
        (OSError(errno.ENOBUFS, "No buffer space"), Outcome.LOCAL_RESOURCE),
        (OSError(errno.EHOSTUNREACH, "No route to host"), Outcome.CONNECT_ERROR),
    ],
)
async def test_connect_errors_map_to_outcomes(
    autojump_clock: trio.testing.MockClock, exc: OSError, outcome: Outcome
) -> None:
    async def opener(plan: object, endpoint: object) -> trio.abc.Stream:
        await trio.sleep(0.25)
        raise exc

    ctx = DriverContext.create(TargetConfig(), QUIET, "ws://test.invalid/", opener=opener)
    t0 = trio.current_time()
    r = await connect(ctx)
    assert r.outcome is outcome
    assert r.connect_start == t0
    assert r.connect_end is None and r.upgraded is None
    assert r.socket_closed == approx(t0 + 0.25)
    assert exc.strerror is not None and exc.strerror in r.detail


async def test_connect_timeout_is_exact(autojump_clock: trio.testing.MockClock) -> None:
    async def opener(plan: object, endpoint: object) -> trio.abc.Stream:
        await trio.sleep_forever()
        raise AssertionError

    target = TargetConfig(connect_timeout=1.5)
    ctx = DriverContext.create(target, QUIET, "ws://test.invalid/", opener=opener)
    t0 = trio.current_time()
    r = await connect(ctx)
    assert r.outcome is Outcome.CONNECT_TIMEOUT
    assert r.socket_closed == t0 + 1.5


# --- upgrade ----------------------------------------------------------------------------------


async def test_request_carries_seq_headers_and_key(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    requests: list[str] = []

    async def script(peer: RawPeer) -> None:
        await accept_and_close_on_close(peer)
        requests.append(peer.request)

    target = TargetConfig(
        origin="https://o.example", subprotocols=("chat",), headers=(("X-Run", "7"),)
    )
    ctx = make_ctx(nursery, script, target=target, url="ws://test.invalid:8080/room/{seq}?a=1")
    r = await connect(ctx, seq=42)
    assert r.outcome is Outcome.CLEAN
    lines = requests[0].split("\r\n")
    assert lines[0] == "GET /room/42?a=1 HTTP/1.1"
    assert "Host: test.invalid:8080" in lines
    assert {"Origin: https://o.example", "Sec-WebSocket-Protocol: chat", "X-Run: 7"} <= set(lines)


async def test_handshake_rejected_records_the_status(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
        await peer.frames_until_eof()

    r = await connect(make_ctx(nursery, script))
    assert r.outcome is Outcome.HANDSHAKE_REJECTED
    assert r.http_status == 503
    assert r.detail == "HTTP 503 Service Unavailable"
    assert r.tcp_closed_first is Side.CLIENT
    assert r.upgraded is None


async def test_handshake_invalid_accept_key(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.read_request()
        await peer.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: bm9wZQ==\r\n\r\n"
        )
        await peer.frames_until_eof()

    r = await connect(make_ctx(nursery, script))
    assert r.outcome is Outcome.HANDSHAKE_INVALID
    assert "Sec-WebSocket-Accept" in r.detail


async def test_handshake_timeout_is_exact(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.read_request()
        await peer.frames_until_eof()  # never answers

    target = TargetConfig(handshake_timeout=2.5)
    r = await connect(make_ctx(nursery, script, target=target))
    assert r.outcome is Outcome.HANDSHAKE_TIMEOUT
    assert r.request_sent is not None
    assert r.socket_closed == approx(r.request_sent + 2.5)


async def test_eof_mid_handshake(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.read_request()
        await trio.sleep(0.1)
        await peer.send(b"HTTP/1.1 101 Swi")
        await peer.aclose()

    r = await connect(make_ctx(nursery, script))
    assert r.outcome is Outcome.HANDSHAKE_INVALID
    assert "after 16 response bytes" in r.detail
    assert r.tcp_closed_first is Side.SERVER
    assert r.connect_start is not None and r.eof == approx(r.connect_start + 0.1)


async def test_server_close_right_behind_the_101(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    frames: list[tuple[int, bytes]] = []

    async def script(peer: RawPeer) -> None:
        await peer.accept(then=server_frame(0x8, struct.pack("!H", 1001) + b"bye"))
        frames.extend(await _frames_then_close(peer, 1))

    r = await connect(make_ctx(nursery, script, session=SessionConfig(messages=3)))
    assert r.outcome is Outcome.SERVER_CLOSED
    assert r.close_received == r.upgraded == r.close_initiated
    assert (r.code_received, r.reason_received, r.code_sent) == (1001, "bye", 1001)
    assert frames == [(0x8, struct.pack("!H", 1001))]  # no data frame after its Close


async def _frames_then_close(peer: RawPeer, count: int) -> list[tuple[int, bytes]]:
    frames = []
    for _ in range(count):
        frame = await peer.frame()
        assert frame is not None
        frames.append(frame)
    await peer.aclose()
    return frames


# --- session ----------------------------------------------------------------------------------


async def test_messages_echo_rtts_and_interval(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    arrivals: list[float] = []

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        for delay in (0.01, 0.02, 0.03):
            frame = await peer.frame()
            assert frame is not None and frame[0] == 0x2 and len(frame[1]) == 100
            arrivals.append(trio.current_time())
            await trio.sleep(delay)
            await peer.send(server_frame(*frame))
        await accept_rest(peer)

    session = SessionConfig(messages=3, message_size=100, binary=True, message_interval=0.5)
    ctx = make_ctx(nursery, script, session=session)
    t0 = trio.current_time()
    r = await connect(ctx)
    assert r.outcome is Outcome.CLEAN
    assert r.message_rtts == approx((0.01, 0.02, 0.03))
    assert arrivals == [approx(t0), approx(t0 + 0.5), approx(t0 + 1.0)]
    assert r.close_initiated == approx(t0 + 1.03)


async def accept_rest(peer: RawPeer) -> None:
    """After the scripted part: answer the client's Close and close TCP."""
    while (frame := await peer.frame()) is not None:
        if frame[0] == 0x8:
            await peer.send(server_frame(0x8, frame[1][:2]))
            await peer.aclose()
            return


async def test_messages_without_waiting_for_echo(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    got: list[tuple[int, bytes]] = []

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        for _ in range(4):
            frame = await peer.frame()
            assert frame is not None
            got.append(frame)
        await accept_rest(peer)

    session = SessionConfig(messages=4, message_size=10, await_echo=False)
    r = await connect(make_ctx(nursery, script, session=session))
    assert r.outcome is Outcome.CLEAN
    assert r.message_rtts == ()
    assert got == [(0x1, b"wsload-012")] * 4


async def test_missing_echo_is_message_timeout(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    frames: list[tuple[int, bytes]] = []

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        frames.extend(await peer.frames_until_eof())  # a sink

    session = SessionConfig(messages=1, message_timeout=4.0)
    t0 = trio.current_time()
    r = await connect(make_ctx(nursery, script, session=session))
    assert r.outcome is Outcome.MESSAGE_TIMEOUT
    assert r.detail == "no echo within 4s"
    assert r.socket_closed == approx(t0 + 4.0)
    assert r.close_sent is None and r.tcp_closed_first is Side.CLIENT
    assert [op for op, _ in frames] == [0x1]


async def test_pings_measure_pong_rtt_and_server_pings_get_pongs(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    pongs: list[bytes] = []

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(server_frame(0x9, b"srv"))
        while (frame := await peer.frame()) is not None:
            opcode, payload = frame
            if opcode == 0x9:
                await trio.sleep(0.125)
                await peer.send(server_frame(0xA, payload))
            elif opcode == 0xA:
                pongs.append(payload)
            elif opcode == 0x8:
                await peer.send(server_frame(0x8, payload[:2]))
                await peer.aclose()

    session = SessionConfig(messages=0, ping_interval=1.0, hold=Delay(3.5, 3.5))
    r = await connect(make_ctx(nursery, script, session=session))
    assert r.outcome is Outcome.CLEAN
    assert r.ping_rtts == approx((0.125, 0.125, 0.125))
    assert pongs == [b"srv"]


async def test_unanswered_ping_is_message_timeout(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await peer.frames_until_eof()

    session = SessionConfig(messages=0, ping_interval=1.0, message_timeout=2.0, hold=Delay(9, 9))
    t0 = trio.current_time()
    r = await connect(make_ctx(nursery, script, session=session))
    assert r.outcome is Outcome.MESSAGE_TIMEOUT
    assert r.detail == "no pong within 2s"
    assert r.socket_closed == approx(t0 + 3.0)
    ((metric, waited),) = r.censored  # the ping sent at 1 s: censored, not dropped
    assert metric == "ping_rtt" and waited == approx(2.0)


async def test_reflect_echoes_server_messages_but_not_the_awaited_echo(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    reflected: list[tuple[int, bytes]] = []

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        frame = await peer.frame()
        assert frame is not None
        await peer.send(server_frame(*frame))  # the echo: must not come back
        await peer.send(server_frame(0x1, "hé".encode(), fin=False) + server_frame(0x0, b"llo"))
        await peer.send(server_frame(0x2, b"\x00\xff"))
        while (frame := await peer.frame()) is not None and frame[0] != 0x8:
            reflected.append(frame)
        await peer.aclose()

    session = SessionConfig(messages=1, reflect=True, hold=Delay(1, 1))
    r = await connect(make_ctx(nursery, script, session=session))
    assert reflected == [(0x1, "héllo".encode()), (0x2, b"\x00\xff")]
    assert len(r.message_rtts) == 1


async def test_hold_is_drawn_between_min_and_max_repeatably(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    session = SessionConfig(messages=0, hold=Delay(1.0, 3.0))

    async def holds(seed: int) -> list[float]:
        ctx = make_ctx(nursery, accept_and_close_on_close, session=session, seed=seed)
        out = []
        for seq in range(1, 6):
            r = await connect(ctx, seq=seq)
            assert r.close_initiated is not None and r.upgraded is not None
            out.append(r.close_initiated - r.upgraded)
        return out

    first, again, other = await holds(1), await holds(1), await holds(2)
    assert first == approx(again)
    assert first != approx(other)
    assert all(1.0 <= h <= 3.0 for h in first + other)


async def test_server_close_during_hold_is_answered_with_its_code(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    frames: list[tuple[int, bytes]] = []

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await trio.sleep(1.0)
        await peer.send_close(4002, "maintenance")
        frame = await peer.frame()
        assert frame is not None
        frames.append(frame)
        await trio.sleep(0.25)
        await peer.aclose()

    session = SessionConfig(messages=0, hold=Delay(60, 60))
    t0 = trio.current_time()
    r = await connect(make_ctx(nursery, script, session=session))
    assert r.outcome is Outcome.SERVER_CLOSED
    assert r.close_initiator is Side.SERVER and r.tcp_closed_first is Side.SERVER
    assert r.close_received == r.close_initiated == r.close_sent == approx(t0 + 1.0)
    assert (r.code_received, r.reason_received, r.code_sent) == (4002, "maintenance", 4002)
    assert r.eof == r.socket_closed == approx(t0 + 1.25)
    assert frames == [(0x8, struct.pack("!H", 4002))]


async def test_server_empty_close_is_answered_with_an_empty_close(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    frames: list[tuple[int, bytes]] = []

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send_close(None)
        frames.extend(await _frames_then_close(peer, 1))

    r = await connect(
        make_ctx(nursery, script, session=SessionConfig(messages=0, hold=Delay(5, 5)))
    )
    assert r.outcome is Outcome.SERVER_CLOSED
    assert r.code_received is None and r.code_sent is None
    assert frames == [(0x8, b"")]


async def test_eof_without_close_during_session_is_abnormal(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await trio.sleep(0.75)
        await peer.aclose()

    session = SessionConfig(messages=0, hold=Delay(5, 5))
    t0 = trio.current_time()
    r = await connect(make_ctx(nursery, script, session=session))
    assert r.outcome is Outcome.ABNORMAL
    assert r.eof == r.socket_closed == approx(t0 + 0.75)
    assert r.close_initiated is None and r.tcp_closed_first is Side.SERVER


@pytest.mark.parametrize(
    ("data", "code", "detail"),
    [
        (bytes((0x81, 0x81)) + b"mask" + b"x", 1002, "masked"),
        (server_frame(0x1, b"\xc3"), 1007, "decode"),
        (server_frame(0x2, b"x" * 11), 1009, "max_message_size"),
        (server_frame(0x8, struct.pack("!H", 1006)), 1002, "invalid Close"),
    ],
)
async def test_protocol_errors_fail_with_the_right_close_code(
    autojump_clock: trio.testing.MockClock,
    nursery: trio.Nursery,
    data: bytes,
    code: int,
    detail: str,
) -> None:
    frames: list[tuple[int, bytes]] = []

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(data)
        frames.extend(await peer.frames_until_eof())

    session = SessionConfig(messages=0, hold=Delay(5, 5))
    target = TargetConfig(max_message_size=10)
    t0 = trio.current_time()
    r = await connect(make_ctx(nursery, script, session=session, target=target))
    assert r.outcome is Outcome.PROTOCOL_ERROR
    assert detail in r.detail
    assert r.code_sent == code
    assert frames == [(0x8, struct.pack("!H", code))]
    assert r.socket_closed == approx(t0)  # failed at once, no waiting


async def test_cancelled_connection_closes_its_stream(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    eof_at: list[float] = []

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await peer.frames_until_eof()
        eof_at.append(trio.current_time())

    ctx = make_ctx(nursery, script, session=SessionConfig(messages=0, hold=Delay(60, 60)))
    t0 = trio.current_time()
    with trio.move_on_after(2.0) as scope:
        await run_connection(ConnectionPlan(1, t0, CLEAN), ctx)
    assert scope.cancelled_caught
    await trio.sleep(0.01)
    assert eof_at == [approx(t0 + 2.0)]


# --- property: whatever the server sends, the driver returns a record -------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(st.binary(max_size=64), max_size=5),
    prefix=st.sampled_from([b"", server_frame(0x9, b"p"), server_frame(0x1, b"echo")]),
    then_close=st.booleans(),
    kind=st.sampled_from(["clean", "await_server_close", "ignore_server_close", "invalid_close"]),
)
def test_arbitrary_server_bytes_always_end_in_a_record(
    chunks: list[bytes], prefix: bytes, then_close: bool, kind: str
) -> None:
    async def main() -> ConnectionRecord:
        async def script(peer: RawPeer) -> None:
            await peer.accept(then=prefix)
            try:
                for chunk in chunks:
                    await trio.sleep(0.01)
                    await peer.send(chunk)
                if then_close:
                    await peer.aclose()
                else:
                    await peer.frames_until_eof()
            except trio.BrokenResourceError:
                pass  # the client failed the connection first

        async with trio.open_nursery() as nursery:
            session = SessionConfig(messages=1, message_timeout=1.0, hold=Delay(0.5, 0.5))
            ctx = make_ctx(nursery, script, session=session)
            close = CloseSpec(kind=kind, label=kind, timeout=1.0)  # type: ignore[arg-type]
            record = await connect(ctx, close)
            nursery.cancel_scope.cancel()
        return record

    record = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert record.outcome in set(Outcome)
    assert record.upgraded is not None
