"""Kernel receive stamps on real loopback TCP: a reply is stamped when it arrived, not when the
loop read it, and the gap is the notice lag.

Only lower bounds on real time and orderings (a busy machine makes every wait longer, never
shorter): the stamp lies between the clock readings around the peer's send, however late the
read comes.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import trio
import trio.testing

from wsload.core.frames import FrameReader
from wsload.core.protocol import ClientProtocol
from wsload.engine.link import Link
from wsload.engine.rawstream import RawIO, RawSocketStream
from wsload.engine.wireclock import ACK_GUARD, SO_TIMESTAMPNS, WireClock

needs_stamps = pytest.mark.skipif(SO_TIMESTAMPNS is None, reason="no SO_TIMESTAMPNS here")
_OFFSET_SLACK = 0.0002  # the offset is read between two clock readings a few µs apart


@pytest.fixture(scope="module", autouse=True)
def _stamping_switched_on() -> Iterator[None]:
    """Linux switches receive timestamping on from a work queue, a moment after the first
    socket asks for it (wsload's process keeps one asking: ``wireclock._keep_timestamping``):
    wait for it once, holding a socket that asks, so the first test's packets are stamped."""
    if SO_TIMESTAMPNS is None:
        yield
        return
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        probe.connect(listener.getsockname())
        peer, _ = listener.accept()
        with peer:
            deadline = time.monotonic() + 10
            while True:
                peer.sendall(b"x")
                _, ancillary, _, _ = probe.recvmsg(16, 64)
                if ancillary or time.monotonic() > deadline:
                    break
                time.sleep(0.001)
            yield


@needs_stamps
async def test_a_late_read_is_stamped_with_the_arrival(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, peer = tcp_pair
    wire = WireClock.for_clock(trio.lowlevel.current_clock())
    io = wire.raw_io(client)
    assert (wire.kernel, wire.loop) == (1, 0)
    before = trio.current_time()
    peer.sendall(b"reply")
    after = trio.current_time()
    await trio.sleep(0.05)  # the loop is busy elsewhere: it notices 50 ms late (or later)
    with trio.fail_after(10):
        assert await io.read(trio.current_time() + 5) == b"reply"
    now = trio.current_time()
    assert io.arrived is not None
    assert before - _OFFSET_SLACK <= io.arrived <= after + _OFFSET_SLACK
    assert wire.arrival(io, now) == io.arrived
    assert wire.notice_lag.get_total_count() == 1
    assert wire.notice_lag.get_max_value() >= 50_000 * 0.999  # 3 significant digits
    peer.shutdown(socket.SHUT_WR)
    with trio.fail_after(10):
        assert await io.read(trio.current_time() + 5) == b""
    assert io.arrived is None  # a FIN carries no stamp: the loop's reading stands
    assert wire.arrival(io, now) == now
    assert wire.notice_lag.get_total_count() == 1


@needs_stamps
async def test_a_stamp_is_never_later_than_the_loop_reading(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, peer = tcp_pair
    wire = WireClock.for_clock(trio.lowlevel.current_clock())
    io = wire.raw_io(client)
    peer.sendall(b"x")
    with trio.fail_after(10):
        await io.read(trio.current_time() + 5)
    assert io.arrived is not None
    early = io.arrived - 1.0  # a reading before the arrival (a stepped wall clock)
    assert wire.arrival(io, early) == early
    assert wire.notice_lag.get_min_value() == 0


async def test_a_mock_clock_keeps_the_loop_stamps(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    """The autojump clock does not follow real time: no kernel stamp can map onto it."""
    client, peer = tcp_pair
    wire = WireClock.for_clock(trio.testing.MockClock(autojump_threshold=0))
    assert wire.offset_ns is None
    io = wire.raw_io(client)
    assert (wire.kernel, wire.loop) == (0, 1)
    peer.sendall(b"x")
    with trio.fail_after(10):
        assert await io.read(trio.current_time() + 5) == b"x"
    assert io.arrived is None and wire.arrival(io, 12.5) == 12.5


async def test_the_server_side_read_is_not_stamped(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    """The built-in server reads through the same RawIO, without a stamped socket."""
    client, peer = tcp_pair
    io = RawIO(client.fileno())
    peer.sendall(b"x")
    with trio.fail_after(10):
        assert await io.read(trio.current_time() + 5) == b"x"
    assert io.arrived is None


_CLOSE_1000 = b"\x88\x02\x03\xe8"  # the server's Close (unmasked), code 1000
_FIN_GAP = 0.005  # the server's FIN a moment after its Close, as Node ws sends it
_ATTEMPTS = 5  # a machine that stalls a step past ACK_GUARD gets another try


async def _close_then_fin(
    *, ours: bool, answer_after: float = 0.0, fin_gap: float = _FIN_GAP
) -> tuple[Link, float, float]:
    """One connection's end read late: (our Close if ``ours``, then ``answer_after`` s later)
    the server's Close, its FIN ``fin_gap`` later, and the loop reading both only 60 ms after.

    Returns the link after the read, and the run-clock readings just before the server sent
    its Close and just before its FIN.
    """
    wire = WireClock.for_clock(trio.lowlevel.current_clock())
    with socket.create_server(("127.0.0.1", 0)) as listener:
        raw = socket.socket()
        raw.setblocking(False)
        raw.connect_ex(listener.getsockname())
        peer, _ = listener.accept()
    with peer:
        io = wire.raw_io(raw)
        link = Link(RawSocketStream(raw), ClientProtocol(FrameReader(1 << 16)), 5.0, io, wire=wire)
        if ours:
            assert await link.send_close(1000, "", trio.current_time() + 5)
            assert link.ack_delayed is not None
            peer.recv(64)
            time.sleep(answer_after)
        sent = trio.current_time()
        peer.sendall(_CLOSE_1000)
        time.sleep(fin_gap)
        fin = trio.current_time()
        peer.shutdown(socket.SHUT_WR)
        await trio.sleep(0.06)  # the loop is busy elsewhere: both are queued when it reads
        with trio.fail_after(10):
            assert await link.pump(trio.current_time() + 5)
        raw.close()
    return link, sent, fin


@needs_stamps
async def test_our_delayed_ack_keeps_the_servers_fin_off_its_close_stamp() -> None:
    """Linux merges a FIN into the unread segment before it once that one was acknowledged,
    and the merged segment carries the FIN's arrival; our Close goes out with the ACK of the
    reply delayed, so the reply keeps its own stamp and is not counted as late."""
    for _ in range(_ATTEMPTS):
        link, sent, fin = await _close_then_fin(ours=True)
        t = link.tracker
        assert t.close_received is not None and link.io is not None and link.io.fin_read
        assert link.ack_delayed is not None
        if fin - link.ack_delayed < ACK_GUARD:
            break  # else the machine stalled a step past the guard: try again
    else:
        pytest.skip(f"the machine stalled past {ACK_GUARD}s in each of {_ATTEMPTS} tries")
    assert sent - _OFFSET_SLACK <= t.close_received <= fin  # the Close's arrival, not the FIN's
    assert link.proto.late_stamps == 0


@needs_stamps
async def test_a_slow_answer_read_with_its_fin_is_told_from_a_merged_fin() -> None:
    """Past the guard the kernel's last data arrival (TCP_INFO, in jiffies) decides: a server
    that answered 50 ms after our Close and closed at once keeps an exact stamp; a FIN 100 ms
    after the Close (our delayed ACK long gone out) merged into it and is counted."""
    for _ in range(_ATTEMPTS):
        slow, sent, fin = await _close_then_fin(ours=True, answer_after=0.05)
        if fin - sent < ACK_GUARD:
            break  # else the machine stalled between the Close and the FIN: try again
    else:
        pytest.skip(f"the machine stalled past {ACK_GUARD}s in each of {_ATTEMPTS} tries")
    assert slow.ack_delayed is not None and slow.tracker.close_received is not None
    assert slow.tracker.close_received - slow.ack_delayed >= ACK_GUARD
    assert slow.tracker.close_received >= sent - _OFFSET_SLACK
    assert slow.proto.late_stamps == 0
    merged, sent, fin = await _close_then_fin(ours=True, fin_gap=0.1)
    assert merged.tracker.close_received is not None and merged.tracker.close_received >= fin
    assert merged.proto.late_stamps == 1


@needs_stamps
async def test_a_close_read_together_with_an_unguarded_fin_counts_as_a_late_stamp() -> None:
    """The server closes first: no Close of ours delayed the ACK, so the FIN read with the
    server's Close may have merged into it, and its stamp is counted as possibly late."""
    link, sent, _ = await _close_then_fin(ours=False)
    assert link.tracker.close_received is not None and link.tracker.close_received >= sent
    assert link.io is not None and link.io.fin_read and link.ack_delayed is None
    assert link.proto.late_stamps == 1


@needs_stamps
async def test_a_read_without_the_fin_is_not_flagged(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, peer = tcp_pair
    io = WireClock.for_clock(trio.lowlevel.current_clock()).raw_io(client)
    peer.sendall(_CLOSE_1000)
    with trio.fail_after(10):
        assert await io.read(trio.current_time() + 5) == _CLOSE_1000
    assert not io.fin_read
    peer.shutdown(socket.SHUT_WR)
    with trio.fail_after(10):
        assert await io.read(trio.current_time() + 5) == b""
