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

from wsload.engine.rawstream import RawIO
from wsload.engine.wireclock import SO_TIMESTAMPNS, WireClock

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


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback pair: (our non-blocking client, the peer)."""
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.socket() as client:
        client.setblocking(False)
        client.connect_ex(listener.getsockname())
        peer, _ = listener.accept()
        with peer:
            yield client, peer


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
