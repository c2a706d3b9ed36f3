"""The run's poller (``wsload.engine.poller``): parked reads on real loopback sockets.

A park ends when the socket becomes readable, when its deadline passes (never before it, on the
run's clock: exact under the autojump clock), when it is woken, or when it is cancelled; a
report that comes while the task is not parked is kept, so no bytes are waited past; and the
deadline heap does not grow with the parks that ended early. A fiber (a coroutine the poller
steps, without a Trio task) parks the same way, becomes a task for one of Trio's own waits and
a fiber again at its next park, takes its nursery's cancellation, and ends the run with its
error. The same connections give the same records whether they run as fibers or tasks, and
whether their reads park in the poller or wait in Trio within a cancel scope.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import fields

import pytest
import trio
import trio.testing
from peers import WebsocketsPeer

from wsload.core.record import ConnectionRecord
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.driver import run_connection
from wsload.engine.poller import Poller
from wsload.engine.rawstream import RECEIVE_SIZE, RawIO
from wsload.report.records import STAMPS
from wsload.scenario.model import CloseSpec, SessionConfig, TargetConfig


def _poller() -> Poller:
    return Poller(trio.lowlevel.current_clock().current_time)


async def test_a_parked_read_returns_the_bytes_that_arrive(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, peer = tcp_pair
    io = RawIO(client.fileno(), poller=_poller())
    got: list[bytes | OSError | None] = []

    async def reader() -> None:
        got.append(await io.read(trio.current_time() + 30))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            assert io.waiting and not got
            peer.sendall(b"reply")
    assert got == [b"reply"] and not io.waiting


async def test_a_deadline_ends_the_park_on_the_run_clock_and_not_before(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, _ = tcp_pair
    io = RawIO(client.fileno(), poller=_poller())
    with trio.fail_after(30):
        deadline = trio.current_time() + 0.05
        assert await io.read(deadline) is None
    assert trio.current_time() >= deadline


async def test_the_autojump_clock_ends_each_park_exactly_at_its_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pairs = [socket.socketpair() for _ in range(3)]
    poller = _poller()
    ended: dict[int, float] = {}
    start = trio.current_time()
    deadlines = {0: start + 7.0, 1: start + 2.5, 2: start + 2.5}

    async def reader(i: int) -> None:
        ours = pairs[i][0]
        ours.setblocking(False)
        assert await RawIO(ours.fileno(), poller=poller).read(deadlines[i]) is None
        ended[i] = trio.current_time()

    try:
        async with trio.open_nursery() as nursery:
            for i in deadlines:
                nursery.start_soon(reader, i)
    finally:
        for a, b in pairs:
            a.close()
            b.close()
    assert ended == deadlines


async def test_a_wake_and_a_cancel_end_the_park(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, _ = tcp_pair
    poller = _poller()
    io = RawIO(client.fileno(), poller=poller)
    got: list[bytes | OSError | None] = []

    async def reader() -> None:
        got.append(await io.read(math.inf))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            io.wake()
        assert got == [None]
        with trio.CancelScope() as scope:
            scope.deadline = trio.current_time() + 0.01
            await io.read(trio.current_time() + 60)  # aborted by the outer scope
        assert scope.cancelled_caught and not io.waiting
    assert poller._live == 0


async def test_bytes_reported_while_the_task_was_busy_are_not_waited_past(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    """Edge-triggered: the report of bytes that came while the task was not parked (right
    after its own write) is kept; its read does not park past them."""
    client, peer = tcp_pair
    io = RawIO(client.fileno(), poller=_poller())
    with trio.fail_after(30):
        io.write(b"hello")
        peer.sendall(b"first")
        # right after a write it parks first (registering the socket, whose bytes the epoll
        # then reports at once)
        assert await io.read(trio.current_time() + 30) == b"first"
        io.write(b"question")
        peer.sendall(b"answer")
        await trio.testing.wait_all_tasks_blocked()  # the poller reports it: nobody parked
        assert io.ready and not io.waiting
        assert await io.read(trio.current_time() + 30) == b"answer"


async def test_bytes_left_unread_by_a_full_read_are_read_after_a_write(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    """A write does not make the next read park when the last read left bytes unread: the
    edge-triggered epoll would never report them again (a ping flood: its pongs)."""
    client, peer = tcp_pair
    io = RawIO(client.fileno(), poller=_poller())
    with trio.fail_after(30):
        io.write(b"hello")
        peer.sendall(bytes(3 * RECEIVE_SIZE))  # then silence: no new bytes, no new report
        got = 0
        while got < 3 * RECEIVE_SIZE:
            data = await io.read(trio.current_time() + 30)
            assert isinstance(data, bytes) and data
            got += len(data)
            io.write(b"pong")  # as a pong after each read


async def test_the_heap_keeps_only_the_live_deadlines(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, peer = tcp_pair
    poller = _poller()
    io = RawIO(client.fileno(), poller=poller)
    with trio.fail_after(60):
        for _ in range(3000):  # each park ends early, leaving its deadline behind
            io.write(b"ping")
            peer.sendall(b"x")
            assert await io.read(trio.current_time() + 600) == b"x"
    assert len(poller._heap) <= 1024 + 2
    assert poller._live == 0


def _epolls() -> int:
    return sum(
        os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventpoll]"
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    )


def test_the_epoll_opens_at_the_first_park_and_closes_with_the_run() -> None:
    before = _epolls()
    seen: list[int] = []

    async def main() -> None:
        poller = _poller()
        seen.append(_epolls())  # none yet: a run that never parks opens nothing
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            assert await RawIO(a.fileno(), poller=poller).read(trio.current_time() + 0.01) is None
            seen.append(_epolls())

    trio.run(main)
    assert seen == [before + 1, before + 2]  # Trio's own, then the poller's
    assert _epolls() == before


# --- fibers ------------------------------------------------------------------------------------


async def _with_fibers(poller: Poller, *coros: Callable[[], Awaitable[None]]) -> None:
    """Run each of ``coros`` as a fiber of ``poller`` until all have returned."""
    left = [len(coros)]
    done = trio.Event()

    async def fiber(coro: Callable[[], Awaitable[None]]) -> None:
        await coro()
        left[0] -= 1
        if not left[0]:
            done.set()

    async with trio.open_nursery() as nursery:
        poller.drive_in(nursery)
        for coro in coros:
            poller.start(fiber(coro))
        await done.wait()
        nursery.cancel_scope.cancel()


async def test_a_fiber_parks_without_a_task_and_is_stepped_by_the_poller(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, peer = tcp_pair
    poller = _poller()
    io = RawIO(client.fileno(), poller=poller)
    got: list[object] = []

    async def reads() -> None:
        got.append(poller.stepping is not None)
        for _ in range(3):  # each read parks: the reply comes after it
            got.append(await io.read(trio.current_time() + 30))
        got.append(await io.read(trio.current_time() + 0.05))  # nothing comes: the deadline

    async def replies() -> None:
        for reply in (b"one", b"two", b"three"):
            await trio.testing.wait_all_tasks_blocked()
            assert io.waiting
            peer.sendall(reply)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(replies)
            await _with_fibers(poller, reads)
    assert got == [True, b"one", b"two", b"three", None]
    assert not io.waiting and poller._live == 0 and not poller._fibers


async def test_readable_sockets_are_taken_while_deadlines_keep_falling_due(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A loaded run: stepping the parks whose deadline passed takes longer than the gap to the
    next deadline, so the loop's scope is past its deadline whenever it is entered. The reply
    that arrives meanwhile is still read in the next pass, not only once the deadlines stop
    (the 100,000-client deploy against Node: every 101 and echo of the herd sat unread in its
    socket until its own timeout, and the replies came 32 at a time, seconds apart)."""
    timers = [socket.socketpair() for _ in range(60)]
    ours, theirs = socket.socketpair()
    poller = _poller()
    start = trio.current_time()
    expired = [0]
    read_after: list[int] = []

    def parked(sock: socket.socket) -> RawIO:
        sock.setblocking(False)
        return RawIO(sock.fileno(), poller=poller)

    def timer(i: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            assert await parked(timers[i][0]).read(start + 0.001 * (i + 1)) is None
            expired[0] += 1
            autojump_clock.jump(0.002)  # its work: the next deadline has passed when it ends
            if i == 4:
                theirs.sendall(b"reply")

        return run

    async def reader() -> None:
        assert await parked(ours).read(start + 60) == b"reply"
        read_after.append(expired[0])

    try:
        await _with_fibers(poller, reader, *(timer(i) for i in range(len(timers))))
    finally:
        for a, b in [*timers, (ours, theirs)]:
            a.close()
            b.close()
    assert expired == [len(timers)]
    assert read_after and read_after[0] < 15, read_after  # not after all 60


async def test_a_promoted_fiber_waits_in_a_task_and_parks_as_a_fiber_again(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, peer = tcp_pair
    poller = _poller()
    io = RawIO(client.fileno(), poller=poller)
    seen: list[object] = []

    async def promoted() -> None:
        seen.append(poller.stepping is not None)
        await poller.promote()
        seen.append(poller.stepping is not None)
        await trio.sleep(0.01)  # Trio's own wait: only a task may do it
        peer.sendall(b"late")
        seen.append(await io.read(trio.current_time() + 30))  # the reply was there: no park
        seen.append(await io.read(trio.current_time() + 0.05))  # parks: a fiber again
        seen.append(poller.stepping is not None)

    with trio.fail_after(30):
        await _with_fibers(poller, promoted)
    assert seen == [True, False, b"late", None, True]
    assert not poller._carried and not poller._fibers


async def test_a_wake_from_a_task_reaches_a_parked_fiber(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, _ = tcp_pair
    poller = _poller()
    io = RawIO(client.fileno(), poller=poller)
    got: list[object] = []

    async def parked() -> None:
        got.append(await io.read(math.inf))

    async def waker() -> None:
        await trio.testing.wait_all_tasks_blocked()
        assert io.waiting and not got
        io.wake()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waker)
            await _with_fibers(poller, parked)
    assert got == [None]


async def test_the_nurserys_cancellation_reaches_every_parked_fiber() -> None:
    pairs = [socket.socketpair() for _ in range(3)]
    poller = _poller()
    ended: list[str] = []

    async def parked(ours: socket.socket) -> None:
        ours.setblocking(False)
        try:
            await RawIO(ours.fileno(), poller=poller).read(trio.current_time() + 600)
        except trio.Cancelled:
            ended.append("cancelled")
            raise

    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                poller.drive_in(nursery)
                for ours, _ in pairs:
                    poller.start(parked(ours))
                await trio.testing.wait_all_tasks_blocked()
                assert len(poller._fibers) == 3 and poller._live == 3
                nursery.cancel_scope.cancel()
    finally:
        for a, b in pairs:
            a.close()
            b.close()
    assert ended == ["cancelled"] * 3
    assert not poller._fibers and poller._live == 0


async def test_a_fibers_error_ends_its_nursery_as_a_tasks_would(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, peer = tcp_pair
    poller = _poller()
    io = RawIO(client.fileno(), poller=poller)

    async def broken() -> None:
        await io.read(trio.current_time() + 30)
        raise ValueError("a bug in a connection's code")

    with trio.fail_after(30), pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="a bug")):
        async with trio.open_nursery() as nursery:
            poller.drive_in(nursery)
            poller.start(broken())
            await trio.testing.wait_all_tasks_blocked()
            peer.sendall(b"x")
            await trio.sleep_forever()


# --- the same connections with and without the poller, as fibers and tasks -----------------

_CASES = [
    ("/echo", CloseSpec(kind="clean", label="clean", code=4000, reason="bye", timeout=5.0)),
    ("/echo", CloseSpec(kind="terminate", label="terminate", rst=True)),
    ("/echo", CloseSpec(kind="close_no_wait", label="close_no_wait", code=1001)),
    ("/close?after=50&code=4001", CloseSpec(kind="await_server_close", label="a", timeout=5.0)),
    ("/echo", CloseSpec(kind="await_server_close", label="never", timeout=0.2)),
    ("/close?after=50&code=1001", CloseSpec(kind="ignore_server_close", label="i", timeout=8.0)),
    ("/echo", CloseSpec(kind="invalid_close", label="bad", variant="code_1005", timeout=3.0)),
    ("/sink", CloseSpec(kind="clean", label="sink")),
]


def _shape(record: ConnectionRecord) -> dict[str, object]:
    """A record with each instant replaced by whether it is there, each duration by how many
    there are, and the instants' order: what does not depend on when things ran."""
    shape: dict[str, object] = {}
    for f in fields(ConnectionRecord):
        value = getattr(record, f.name)
        if f.name in STAMPS:
            shape[f.name] = value is not None
        elif f.name in ("message_rtts", "ping_rtts", "push_intervals"):
            shape[f.name] = len(value)
        elif f.name in ("step_latencies", "censored"):
            shape[f.name] = [name for name, _ in value]
        else:
            shape[f.name] = value
    stamps = [(getattr(record, n), n) for n in STAMPS if getattr(record, n) is not None]
    shape["order"] = [n for _, n in sorted(stamps)]
    return shape


@pytest.fixture(scope="module")
def websockets_peer() -> Iterator[WebsocketsPeer]:
    with WebsocketsPeer(close_timeout=0.5) as peer:
        yield peer


@pytest.mark.parametrize(("path", "close"), _CASES, ids=[c.label for _, c in _CASES])
async def test_parked_and_scoped_reads_give_the_same_records(
    websockets_peer: WebsocketsPeer, path: str, close: CloseSpec
) -> None:
    url = f"ws://127.0.0.1:{websockets_peer.port}{path}"
    # what does not depend on the machine's speed: the server that closes after 50 ms gets no
    # messages (whether an echo beats its Close is a race), an echo never times out except
    # where nothing answers (the sink)
    closing = path.startswith("/close")
    session = SessionConfig(
        messages=0 if closing else 2, message_timeout=0.2 if path == "/sink" else 5.0
    )
    shapes = []
    for fiber, parking in ((True, True), (False, True), (False, False)):
        ctx = DriverContext.create(TargetConfig(), session, url)
        ctx.parking = parking
        plan = ConnectionPlan(1, trio.current_time(), close)
        records: list[ConnectionRecord] = []
        with trio.fail_after(20):
            if fiber:
                ctx.bind_clock()
                poller = ctx.poller
                assert poller is not None

                async def connection() -> None:
                    records.append(await run_connection(plan, ctx))  # noqa: B023 - awaited here
                    assert poller.stepping is not None  # noqa: B023 - a fiber to its end

                await _with_fibers(poller, connection)
            else:
                records.append(await run_connection(plan, ctx))
        assert (ctx.poller is not None) is parking
        shapes.append(_shape(records[0]))
    assert shapes[0] == shapes[1] == shapes[2]
