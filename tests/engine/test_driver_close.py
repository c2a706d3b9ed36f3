"""Every close behaviour over memory streams with the autojump clock: outcomes and exact times."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import trio
import trio.testing
from peers import RawPeer, memory_opener, run_scripted, server_frame

from wsload.core.frames import invalid_close
from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.driver import run_connection
from wsload.scenario.model import CloseSpec, Delay, SessionConfig, TargetConfig

QUIET = SessionConfig(messages=0)
CLOSE_1000 = (0x8, struct.pack("!H", 1000))


def approx(value: object) -> Any:
    return pytest.approx(value, abs=1e-9)


def spec(kind: str, **kwargs: Any) -> CloseSpec:
    return CloseSpec(kind=kind, label=kind, **kwargs)  # type: ignore[arg-type]


async def connect(
    nursery: trio.Nursery,
    script: Any,
    close: CloseSpec,
    *,
    session: SessionConfig = QUIET,
    **kwargs: Any,
) -> ConnectionRecord:
    return await run_scripted(nursery, script, close, session=session, **kwargs)


class Server:
    """Records what a scripted server saw: frames with their arrival times, and the EOF."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []
        self.times: list[float] = []
        self.eof_at: float | None = None

    async def next(self, peer: RawPeer) -> tuple[int, bytes] | None:
        frame = await peer.frame()
        if frame is not None:
            self.frames.append(frame)
            self.times.append(trio.current_time())
        return frame

    async def until_eof(self, peer: RawPeer) -> None:
        while await self.next(peer) is not None:
            pass
        self.eof_at = trio.current_time()


# --- clean ------------------------------------------------------------------------------------


async def test_clean_close_exact_timestamps(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    seen = Server()

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        frame = await seen.next(peer)
        assert frame is not None
        await trio.sleep(0.05)
        await peer.send(server_frame(*frame))  # echo
        await seen.next(peer)  # the Close
        await trio.sleep(0.2)
        await peer.send_close(1000, "ok")
        await trio.sleep(0.1)
        await peer.aclose()

    t0 = trio.current_time()
    r = await connect(
        nursery,
        script,
        spec("clean", reason="bye", timeout=5.0),
        session=SessionConfig(messages=1, message_size=16),
    )
    assert r.outcome is Outcome.CLEAN and r.detail == ""
    assert r.scheduled == r.connect_start == r.connect_end == r.request_sent == r.upgraded == t0
    assert r.message_rtts == approx((0.05,))
    assert r.close_initiated == r.close_sent == approx(t0 + 0.05)
    assert r.close_received == approx(t0 + 0.25)
    assert r.eof == r.socket_closed == approx(t0 + 0.35)
    assert (r.code_sent, r.reason_sent, r.code_received, r.reason_received) == (
        1000,
        "bye",
        1000,
        "ok",
    )
    assert r.close_initiator is Side.CLIENT and r.tcp_closed_first is Side.SERVER
    assert seen.frames[1] == (0x8, b"\x03\xe8bye")


async def test_unanswered_close_times_out_exactly_at_the_timeout(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    seen = Server()

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await seen.until_eof(peer)  # reads, never answers

    t0 = trio.current_time()
    r = await connect(nursery, script, spec("clean", timeout=3.0))
    assert r.outcome is Outcome.CLOSE_TIMEOUT
    assert r.detail == "server did not answer our Close in time"
    assert r.close_initiated == r.close_sent == t0
    assert r.socket_closed == t0 + 3.0
    assert r.close_received is None and r.eof is None
    assert r.tcp_closed_first is Side.CLIENT
    assert seen.frames == [CLOSE_1000]
    assert seen.eof_at == t0 + 3.0


async def test_answered_close_without_tcp_close_times_out(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await peer.frame()
        await trio.sleep(0.5)
        await peer.send_close(1000)
        await peer.frames_until_eof()  # keeps TCP open

    t0 = trio.current_time()
    r = await connect(nursery, script, spec("clean", timeout=2.0))
    assert r.outcome is Outcome.CLOSE_TIMEOUT
    assert "did not close TCP" in r.detail
    assert r.close_received == approx(t0 + 0.5)
    assert r.socket_closed == t0 + 2.0


async def test_zero_timeout_is_the_hard_shutdown(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    seen = Server()

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await seen.until_eof(peer)

    t0 = trio.current_time()
    r = await connect(nursery, script, spec("clean", timeout=0.0))
    assert r.outcome is Outcome.CLOSE_TIMEOUT
    assert r.socket_closed == t0
    assert seen.frames == [CLOSE_1000]


async def test_clean_close_answered_by_eof_alone_is_abnormal(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await peer.frame()
        await trio.sleep(0.3)
        await peer.aclose()

    r = await connect(nursery, script, spec("clean"))
    assert r.outcome is Outcome.ABNORMAL
    assert r.detail == "server closed TCP without answering our Close"
    assert r.close_sent is not None and r.eof == approx(r.close_sent + 0.3)


# --- terminate / close_no_wait ------------------------------------------------------------------


async def test_terminate_sends_no_close_frame(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    seen = Server()

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await seen.until_eof(peer)

    t0 = trio.current_time()
    r = await connect(nursery, script, spec("terminate"))
    assert r.outcome is Outcome.TERMINATED
    assert seen.frames == [] and seen.eof_at == t0
    assert r.close_initiated == r.socket_closed == t0
    assert r.close_sent is None and r.code_sent is None
    assert r.tcp_closed_first is Side.CLIENT and r.close_initiator is None


async def test_close_no_wait_sends_close_and_drops_at_once(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    seen = Server()

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await seen.until_eof(peer)

    t0 = trio.current_time()
    r = await connect(nursery, script, spec("close_no_wait", code=4000, reason="x"))
    assert r.outcome is Outcome.CLOSE_NO_WAIT
    assert seen.frames == [(0x8, struct.pack("!H", 4000) + b"x")]
    assert r.close_sent == r.socket_closed == t0
    assert r.close_received is None


# --- await_server_close -----------------------------------------------------------------------


async def test_await_server_close_answers_and_keeps_sending(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    seen = Server()

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        with trio.move_on_after(2.0):
            while await seen.next(peer) is not None:
                pass
        await peer.send_close(4001, "bye")
        await seen.next(peer)
        await trio.sleep(0.1)
        await peer.aclose()

    t0 = trio.current_time()
    r = await connect(nursery, script, spec("await_server_close", timeout=10.0, send_interval=0.6))
    assert r.outcome is Outcome.SERVER_CLOSED
    assert r.close_initiated == t0
    assert r.close_received == r.close_sent == approx(t0 + 2.0)
    assert (r.code_received, r.code_sent) == (4001, 4001)
    assert r.eof == approx(t0 + 2.1)
    assert [op for op, _ in seen.frames] == [0x1, 0x1, 0x1, 0x8]
    assert seen.times[:3] == [approx(t0 + 0.6), approx(t0 + 1.2), approx(t0 + 1.8)]
    assert r.close_initiator is Side.SERVER


@pytest.mark.parametrize("on_timeout", ["clean", "terminate"])
async def test_await_server_close_timeout_runs_on_timeout(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, on_timeout: str
) -> None:
    seen = Server()

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        frame = await seen.next(peer)
        if frame is None:
            seen.eof_at = trio.current_time()
            return
        await peer.send_close(1000)
        await peer.aclose()

    t0 = trio.current_time()
    close = spec("await_server_close", timeout=4.0, on_timeout=on_timeout, code=1001)
    r = await connect(nursery, script, close)
    assert r.outcome is Outcome.NO_SERVER_CLOSE
    if on_timeout == "clean":
        assert seen.frames == [(0x8, struct.pack("!H", 1001))]
        assert r.close_sent == r.close_received == r.eof == t0 + 4.0
        assert r.detail == "no Close from the server; our fallback Close completed"
    else:
        assert seen.frames == [] and seen.eof_at == t0 + 4.0
        assert r.close_sent is None and r.socket_closed == t0 + 4.0
        assert r.detail == "no Close from the server; terminated"
    assert r.close_initiated == t0


# --- ignore_server_close ----------------------------------------------------------------------


async def test_ignore_server_close_measures_the_servers_close_timeout(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    seen = Server()

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await trio.sleep(1.0)
        await peer.send_close(1001, "shutdown")
        with trio.move_on_after(2.5):  # the server's own close timeout
            await seen.next(peer)
        await peer.aclose()

    t0 = trio.current_time()
    r = await connect(nursery, script, spec("ignore_server_close", timeout=10.0))
    assert r.outcome is Outcome.SERVER_DROPPED
    assert r.close_received == approx(t0 + 1.0)
    assert r.eof == r.socket_closed == approx(t0 + 3.5)
    assert r.code_received == 1001 and r.code_sent is None and r.close_sent is None
    assert seen.frames == []  # never answered
    assert r.tcp_closed_first is Side.SERVER


async def test_ignore_server_close_when_the_server_never_drops(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await trio.sleep(1.0)
        await peer.send_close(1000)
        await peer.frames_until_eof()

    t0 = trio.current_time()
    r = await connect(nursery, script, spec("ignore_server_close", timeout=5.0))
    assert r.outcome is Outcome.CLOSE_TIMEOUT
    assert r.socket_closed == approx(t0 + 6.0)  # timeout counted from the server's Close


async def test_ignore_server_close_when_the_server_never_closes(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await peer.frames_until_eof()

    t0 = trio.current_time()
    r = await connect(nursery, script, spec("ignore_server_close", timeout=5.0))
    assert r.outcome is Outcome.NO_SERVER_CLOSE
    assert r.socket_closed == t0 + 5.0 and r.close_sent is None


async def test_ignore_server_close_applies_to_a_close_during_the_session(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    seen = Server()

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await trio.sleep(0.5)
        await peer.send_close(1000)
        with trio.move_on_after(2.0):
            await seen.next(peer)
        await peer.aclose()

    session = SessionConfig(messages=0, hold=Delay(30, 30))
    t0 = trio.current_time()
    r = await connect(nursery, script, spec("ignore_server_close", timeout=10.0), session=session)
    assert r.outcome is Outcome.SERVER_DROPPED
    assert r.close_initiated == r.close_received == approx(t0 + 0.5)
    assert r.eof == approx(t0 + 2.5)
    assert seen.frames == []


# --- invalid_close ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "code_1005",
        "code_1006",
        "code_1015",
        "code_out_of_range",
        "reason_too_long",
        "invalid_utf8",
        "one_byte",
    ],
)
async def test_invalid_close_sends_the_variant_and_reads_a_1002_as_rejected(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, variant: str
) -> None:
    raw: list[bytes] = []

    async def script(peer: RawPeer) -> None:
        await peer.accept()
        while len(peer.buffer) < 2:
            await peer._more()
        raw.append(peer.buffer)
        await peer.send_close(1002, "bad close")
        await peer.aclose()

    r = await connect(nursery, script, spec("invalid_close", variant=variant))
    assert r.outcome is Outcome.INVALID_REJECTED
    assert r.code_received == 1002
    expected, code, _ = invalid_close(variant)
    assert len(raw[0]) == len(expected) and raw[0][:2] == expected[:2]
    assert r.code_sent == code


@pytest.mark.parametrize(
    ("answer", "outcome", "detail"),
    [
        (1007, Outcome.INVALID_REJECTED, "server answered 1007 (Invalid Frame Payload Data)"),
        (1000, Outcome.INVALID_ACCEPTED, "server answered 1000 (Normal Closure)"),
        (None, Outcome.INVALID_ACCEPTED, "server answered an empty Close"),
        (1005, Outcome.INVALID_ACCEPTED, "server answered 1005 (No Status Received)"),
        ("drop", Outcome.INVALID_REJECTED, "server dropped TCP without a Close"),
        ("ignore", Outcome.CLOSE_TIMEOUT, "server ignored the invalid Close"),
    ],
)
async def test_invalid_close_classifies_the_answer(
    autojump_clock: trio.testing.MockClock,
    nursery: trio.Nursery,
    answer: int | str | None,
    outcome: Outcome,
    detail: str,
) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.accept()
        await peer.frame()
        await trio.sleep(0.2)
        if answer == "ignore":
            await peer.frames_until_eof()
            return
        if answer != "drop":
            assert not isinstance(answer, str)
            await peer.send_close(answer)
        await peer.aclose()

    t0 = trio.current_time()
    r = await connect(nursery, script, spec("invalid_close", variant="code_1005", timeout=3.0))
    assert (r.outcome, r.detail) == (outcome, detail)
    assert r.code_sent == 1005
    if answer == "ignore":
        assert r.socket_closed == t0 + 3.0
    else:
        assert r.socket_closed == approx(t0 + 0.2)


# --- wsload's own events: storm release, graceful stop ------------------------------------------


async def test_storm_release_holds_until_set_and_counts_ready(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.accept()
        while (frame := await peer.frame()) is not None:
            if frame[0] == 0x8:
                await peer.send(server_frame(*frame))
                await peer.aclose()

    release = trio.Event()
    ctx = DriverContext.create(
        TargetConfig(),
        QUIET,
        "ws://test.invalid/",
        opener=memory_opener(nursery, script),
        release=release,
    )
    t0 = trio.current_time()
    records: list[ConnectionRecord] = []

    async def one(seq: int) -> None:
        records.append(await run_connection(ConnectionPlan(seq, t0, spec("clean")), ctx))

    with trio.fail_after(600):
        async with trio.open_nursery() as inner:
            for seq in (1, 2, 3):
                inner.start_soon(one, seq)
            await trio.sleep(5.0)
            assert ctx.ready_count == 3
            release.set()
    assert ctx.ready_count == 0
    assert [r.outcome for r in records] == [Outcome.CLEAN] * 3
    assert all(r.close_initiated == t0 + 5.0 for r in records)


async def test_graceful_stop_cuts_the_hold_short(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.accept()
        while (frame := await peer.frame()) is not None:
            if frame[0] == 0x8:
                await peer.send(server_frame(*frame))
                await peer.aclose()

    stop = trio.Event()
    ctx = DriverContext.create(
        TargetConfig(),
        SessionConfig(messages=0, hold=Delay(100, 100)),
        "ws://test.invalid/",
        opener=memory_opener(nursery, script),
        stop=stop,
    )
    t0 = trio.current_time()
    records: list[ConnectionRecord] = []

    async def one(close: CloseSpec) -> None:
        records.append(await run_connection(ConnectionPlan(1, t0, close), ctx))

    with trio.fail_after(600):
        async with trio.open_nursery() as inner:
            inner.start_soon(one, spec("clean"))
            inner.start_soon(one, spec("await_server_close", timeout=50.0))
            await trio.sleep(1.5)
            stop.set()
    by_kind = {r.kind: r for r in records}
    assert by_kind["clean"].outcome is Outcome.CLEAN
    assert by_kind["clean"].close_initiated == t0 + 1.5
    interrupted = by_kind["await_server_close"]
    assert interrupted.outcome is Outcome.INTERRUPTED
    assert interrupted.close_initiated == t0 + 1.5  # the hold was cut, then the wait
    assert interrupted.close_sent == t0 + 1.5  # on_timeout = clean ran at once
