"""One upgraded connection: the stream, its protocol object, and the only reads and writes.

Why one object and no reader task: the hot path must stay at one Trio task per connection.
Every phase (session, hold, close behaviours) drives the connection the same way: ask the
protocol object what to send, write it, then :meth:`Link.pump` once with a deadline (one read
inside a cancel scope), then look at what the protocol object recorded (a match arrived, a
pong, the server's Close, EOF, a protocol failure). Every protocol decision is in
:class:`~wsload.core.protocol.ClientProtocol`; the link only moves bytes (through the one raw
fast path, :class:`~wsload.engine.rawstream.RawIO`, on plain TCP), reads the clock, and tells
the protocol object what the socket did (data, EOF, a failed write).

:class:`Alarm` is how a run-wide event (graceful stop, storm release) reaches connections parked
in a pump without giving each its own waiting task: links register while they may be woken, and
one system task per event cancels their pump's scope when the event is set.
"""

from __future__ import annotations

import _socket
import contextlib
import math
import socket as _stdlib_socket
import ssl
import struct
from collections.abc import Callable

import trio

from wsload.core.closing import CloseState
from wsload.core.frames import close_frame, invalid_close
from wsload.core.kinds import CloseKind
from wsload.core.protocol import ClientProtocol
from wsload.engine.rawstream import RECEIVE_SIZE, RawIO, RawSocketStream, stream_error
from wsload.engine.wireclock import ACK_GUARD, JIFFY_MAX, WireClock
from wsload.process import raised_priority
from wsload.scenario.model import CloseSpec

__all__ = [
    "CLOSE_WRITE_GRACE",
    "WAKE_BATCH",
    "Alarm",
    "Link",
    "close_stream_now",
    "receive_some",
    "release_storm",
    "send_all",
    "socket_of",
]

WAKE_BATCH = 32
"""Tasks a storm's release wakes per loop turn once its pass has started their closes: woken
all at once, 16,000 of them held a worker's loop for one Trio batch of ≈ 0.5 s (each only goes
on to wait for the server's answer, whose arrival would wake it anyway)."""
CLOSE_WRITE_GRACE = 0.005
"""Seconds a Close frame write may take even when its close deadline has already passed."""
_LINGER_ZERO = struct.pack("ii", 1, 0)
_SHUT_WR = _stdlib_socket.SHUT_WR
_WAITING = (CloseKind.AWAIT_SERVER_CLOSE, CloseKind.IGNORE_SERVER_CLOSE)
"""Kinds whose first close action is to start waiting for the server's Close."""
_WRITES = (CloseKind.CLEAN, CloseKind.CLOSE_NO_WAIT)
"""Kinds whose first close action is our Close frame (and ``invalid_close``'s own)."""
_NOTHING, _WAITED, _WROTE, _FIN, _WROTE_FIN, _RST = range(6)
"""What the release pass did for a link (:meth:`Link._release_wire`); from ``_FIN`` on, the
socket is closed by the release."""
_NO_BURST = contextlib.nullcontext()
"""A release pass at the process's own priority."""
_LOOP_CLOCK = WireClock()
"""The wire clock of a link made without one (tests): its reads are not stamped, so every
arrival is the loop's reading and nothing is ever recorded in it."""


def socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The OS socket under ``stream`` (plain or TLS over TCP), or None (e.g. memory streams)."""
    if isinstance(stream, trio.SocketStream):
        return stream.socket
    if isinstance(stream, trio.SSLStream) and isinstance(
        stream.transport_stream, trio.SocketStream
    ):
        return stream.transport_stream.socket
    return None


async def close_stream_now(stream: trio.abc.Stream, *, rst: bool = False) -> None:
    """Close ``stream`` at once: no TLS close_notify, no waiting; RST via SO_LINGER 0 if asked.

    Safe to call while cancelled (the Cancelled path of the driver relies on it). Called by
    the task that owns the stream, never while another task waits on it.
    """
    sock = stream.sock if isinstance(stream, RawSocketStream) else socket_of(stream)
    if sock is None:
        await trio.aclose_forcefully(stream)
        return
    if rst:
        _linger_zero(sock)
    if isinstance(stream, RawSocketStream):
        stream.close_unwatched()  # only the connection's own task ever uses its stream
    else:
        sock.close()


def _shutdown(stream: trio.abc.Stream) -> None:
    """Send our FIN now (the socket is closed after the release pass)."""
    assert isinstance(stream, RawSocketStream)
    try:  # noqa: SIM105 - in the release pass: suppress() would add a context manager
        stream.sock.shutdown(_SHUT_WR)
    except OSError:  # already reset: the close after the pass is all
        pass


def _linger_zero(sock: _socket.socket | trio.socket.SocketType) -> None:
    """Make the socket's close an RST (SO_LINGER 0)."""
    with contextlib.suppress(OSError):  # already dead: closing is all that is left
        sock.setsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_LINGER, _LINGER_ZERO)


class Link:
    """An upgraded WebSocket connection as the driver sees it: the stream and its protocol.

    Attributes:
        proto: the sans-IO protocol (close tracker, failure, matches, pings, counters).
        tracker: ``proto.tracker``, the close handshake record (read here, written by proto).
        io: the raw fast path on plain TCP (None: TLS or another stream; the stream is used).
        message_rtts: measured echo round trips, seconds.
        step_latencies: ``(metric, seconds)`` of named expect steps.
        release: the close a storm's release starts for this link while it is ``parked``
            (:func:`release_storm`), None: no storm.
        parked: the session holds this link until the storm's release (:meth:`park`).
        prepared: while parked, the Close frame the release writes, with the code and reason
            it records (None: the release writes none).
        released_at: when the release did this link's first close action.
        unsent: the rest of a Close the release could write only in part (the kernel took
            part of it: a closed window with data queued ahead); the task writes it before
            its next read (:meth:`pump`) or its socket's close (b"": none).
        now: reads the run's clock (``trio.current_time``, or the same clock's bound
            ``current_time``: :meth:`DriverContext.bind_clock`).
        wire: maps the kernel's arrival stamps of ``io``'s reads onto the run clock (and
            counts the loop's notice lag): received frames are stamped when they arrived.
        ack_delayed: when our Close went out with the kernel's ACK delayed
            (:meth:`RawIO.delay_ack`; None: not done), which keeps the server's FIN from
            taking over its reply's stamp for :data:`ACK_GUARD`.
    """

    __slots__ = (
        "ack_delayed",
        "censored",
        "io",
        "message_rtts",
        "now",
        "parked",
        "prepared",
        "proto",
        "release",
        "released_at",
        "scope",
        "step_latencies",
        "stream",
        "tracker",
        "unsent",
        "wire",
        "write_timeout",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        proto: ClientProtocol,
        write_timeout: float,
        io: RawIO | None = None,
        now: Callable[[], float] = trio.current_time,
        wire: WireClock = _LOOP_CLOCK,
    ) -> None:
        self.stream = stream
        self.now = now
        self.wire = wire
        self.io = io
        if io is not None:
            io.wakeable = True  # the alarm may wake any pump of the link
        self.proto = proto
        self.tracker = proto.tracker
        self.write_timeout = write_timeout
        self.scope: trio.CancelScope | None = None
        self.release: CloseSpec | None = None
        self.parked = False
        self.prepared: tuple[bytes, int | None, str | None] | None = None
        self.released_at = 0.0
        self.unsent = b""
        self.message_rtts: list[float] = []
        self.step_latencies: list[tuple[str, float]] = []
        self.censored: list[tuple[str, float]] = []  # timed-out measurements: (metric, waited)
        self.ack_delayed: float | None = None

    @property
    def ended(self) -> bool:
        """Nothing more can be read: failed, or the server's TCP close was seen."""
        return self.proto.failure is not None or self.tracker.eof is not None  # proto.ended

    def wake(self) -> None:
        """Cut the current pump short (it returns as if its deadline had passed)."""
        if self.io is not None:
            self.io.wake()
        if self.scope is not None:
            self.scope.cancel()

    def park(self) -> None:
        """Hold the link for the storm's release, which may start its close from now on.

        A Close the release will write (``clean``, ``close_no_wait``, ``invalid_close``) is
        built here, while the connection waits, with its own mask: the release pass then only
        writes it (:func:`release_storm`).
        """
        self.parked = True
        spec = self.release
        if spec is None or self.io is None:
            return
        if spec.kind is CloseKind.INVALID_CLOSE:
            self.prepared = invalid_close(spec.variant)
        elif spec.kind in _WRITES:
            self.prepared = close_frame(spec.code, spec.reason)

    def unpark(self) -> None:
        """The hold is over (released, or the connection ended while held)."""
        self.parked = False
        self.prepared = None

    def _release_wire(self) -> int:
        """This parked link's part of the release pass: its first close action on the wire,
        stamped; the protocol's record waits for :meth:`_release_record` after the pass.

        Only on the raw fast path and only when the action can start without waiting: a Close
        the socket buffer does not take at all, any error, or a task not waiting in its read
        (a write of its own is under way: a drop would make it fail) leave the action to the
        connection's own behaviour once woken, exactly as without a storm. A Close the kernel
        takes only in part (possible only with data queued ahead behind a closed window) is
        recorded as written, like the task's own write of it, and the task writes the rest
        (:attr:`unsent`). No look at the send queue first (``SIOCOUTQ``): that ioctl cost a
        fifth of the pass (2.3 µs of a 15 µs write, docs/scale-out.md), and the task's own
        Close does not look either.

        Returns:
            What was done (``_NOTHING``: left to the task).
        """
        spec, io = self.release, self.io
        if spec is None or io is None or not self.parked or not io.waiting:
            return _NOTHING  # not waiting: the task is not in its read (it is writing)
        if self.proto.close_expected():
            return _NOTHING
        prepared = self.prepared
        if prepared is not None:
            frame = prepared[0]
            self.released_at = self.now()
            try:
                sent = io.write(frame)
            except OSError:  # a reset: the task's own close behaviour finds out
                return _NOTHING
            if not sent:
                return _NOTHING  # the socket buffer is full: the task writes, and waits
            if sent != len(frame):
                self.unsent = frame[sent:]
            if spec.kind is not CloseKind.CLOSE_NO_WAIT or self.unsent:
                return _WROTE  # (close_no_wait with a rest: its task writes it, then closes)
            _shutdown(self.stream)
            return _WROTE_FIN
        kind = spec.kind
        if kind in _WAITING:
            self.released_at = self.now()
            return _WAITED
        if kind is not CloseKind.TERMINATE:
            return _NOTHING  # a Close of its own: not built ahead (no raw path at park)
        self.released_at = self.now()
        if not spec.rst:
            _shutdown(self.stream)
            return _FIN
        stream = self.stream
        assert isinstance(stream, RawSocketStream)
        io.detach()  # the close below tells Trio, which wakes the task: it must not read
        _linger_zero(stream.sock)
        stream.close_now()
        return _RST

    def _release_record(self, done: int) -> None:
        """Record what :meth:`_release_wire` did, at its stamp; close a FIN'd socket."""
        proto, at = self.proto, self.released_at
        if done in (_WROTE, _WROTE_FIN):
            prepared = self.prepared
            assert prepared is not None
            proto.close_written(at, prepared[1], prepared[2])
        proto.start_close(at)
        if done in (_WAITED, _WROTE):
            return
        proto.socket_closed(at)
        if done != _RST:
            assert self.io is not None and isinstance(self.stream, RawSocketStream)
            self.io.detach()
            self.stream.close_now()  # tells Trio first: the parked wait ends

    async def pump(self, deadline: float, now: float | None = None) -> bool:
        """Receive once (until ``deadline``) and hand what arrived to the protocol object.

        The one read path of every wait (session, hold, each close behaviour). ``now``: the
        caller read the clock just before (no await since): the deadline check before the
        read uses it instead of reading again.

        Returns:
            False when the deadline passed (or :meth:`wake` was called) before any bytes came.
        """
        if self.unsent:
            await self._write_unsent(deadline)
        data: bytes | bytearray
        io = self.io
        if io is not None:
            if (self.now() if now is None else now) >= deadline:
                if not io.on_fiber:  # a fiber's cancellation comes from its hub
                    await trio.lowlevel.checkpoint_if_cancelled()
                return False
            received = await io.read(deadline)
            if received is None:
                return False
            if isinstance(received, OSError):
                self._broken(stream_error(received))
                return True
            data = received
        else:
            scope = trio.CancelScope(deadline=deadline)
            self.scope = scope
            try:
                with scope:
                    data = await self.stream.receive_some(RECEIVE_SIZE)
            except trio.BrokenResourceError as exc:
                self._broken(exc)
                return True
            finally:
                self.scope = None
            if scope.cancelled_caught:
                return False
        now = self.now()
        if not data:
            self.proto.receive_eof(now)  # a FIN carries no kernel stamp
            return True
        t = self.tracker
        awaited = t.close_received is None
        arrived = self.wire.arrival(io, now)
        await self.absorb(data, arrived, now)
        if io is not None and io.fin_read:
            if awaited and t.close_received is not None:
                self._fin_with_close(io, arrived)
            if t.close_sent is not None:
                # the read took the FIN too (TCP_INQ): the next one could only return b"";
                # noticed now, at this read's reading, without that read (nothing more is
                # written after our Close, so nothing else can differ)
                self.proto.receive_eof(now)
        return True

    def _fin_with_close(self, io: RawIO, arrived: float) -> None:
        """The read that brought the server's Close took its FIN too: the kernel may have
        merged the FIN into the unread Close, whose stamp is then the FIN's arrival. Counted
        in ``late_stamps`` unless our delayed ACK ruled the merge out, or the Close was
        already counted (bytes followed it).

        With our ACK delayed the FIN can merge only if it came at least :data:`ACK_GUARD`
        after the Close: ruled out when the stamp is within that of our Close, or when the
        kernel's last data arrival (``TCP_INFO``, jiffies) is that close to the stamp (a
        server that was just slow to answer)."""
        delayed = self.ack_delayed
        if self.proto.reader.more:
            return
        if delayed is not None and arrived >= delayed:
            if arrived - delayed < ACK_GUARD:
                return
            age = io.last_data_age()
            if age is not None and arrived - (self.now() - age) < ACK_GUARD - JIFFY_MAX:
                return
        self.proto.late_stamps += 1

    def _delay_ack(self, now: float) -> None:
        """Before our Close goes out: keep the server's FIN off its reply's stamp.

        Not in a storm's release pass (:meth:`release_now`), whose one pass over every
        parked connection a syscall each would lengthen: there a merged FIN is counted."""
        io = self.io
        if io is not None and self.ack_delayed is None and io.delay_ack():
            self.ack_delayed = now

    async def absorb(
        self, data: bytes | bytearray, arrived: float, now: float | None = None
    ) -> None:
        """Process received bytes (also the bytes that followed the 101) and send replies.

        ``arrived``: when the bytes arrived (the kernel's stamp where there is one), which
        stamps every phase they end; ``now``: the loop's reading after the read (default
        ``arrived``), from which the replies' write deadline counts.
        """
        t = self.tracker
        closed = t.close_sent is not None
        out = self.proto.receive_data(data, arrived)
        if not out:
            return
        if now is None:
            now = arrived
        if closed or t.close_sent is None:
            await self.send(out, now + self.write_timeout, now)
        else:  # the replies end with the Close that fails the connection (a protocol error)
            await self._write_close(out, now + self.write_timeout, now)

    def _broken(self, exc: trio.BrokenResourceError) -> None:
        """A read or write failed: a reset (ECONNRESET/EPIPE), or a TLS failure."""
        cause = exc.__cause__
        tls = isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLEOFError)
        self.proto.connection_lost(self.now(), str(cause) if tls else None)

    async def send(self, data: bytes, deadline: float, now: float | None = None) -> bool:
        """Write ``data`` by ``deadline``; False (and no more writes) when it could not.

        ``now``: the caller read the clock just before (no await since), e.g. to compute
        ``deadline``: the check before the write uses it instead of reading again.
        """
        failed = await self._write(data, deadline, now)
        if failed is None:
            return True
        self._failed(failed)
        return False

    async def _write(
        self, data: bytes, deadline: float, now: float | None
    ) -> trio.BrokenResourceError | bool | None:
        """Write ``data`` by ``deadline``: None when written; else the reset, or False (the
        deadline came first, maybe with part of the frame out: the stream is unusable)."""
        if self.proto.write_broken:
            return False
        io = self.io
        if io is not None:  # the hot path: one write() when the socket can take it all
            if (self.now() if now is None else now) >= deadline:
                return False
            try:
                sent = io.write(data)
            except OSError as exc:
                return stream_error(exc)
            if sent == len(data):
                return None
            data = data[sent:]
            await io.promote()  # the socket buffer is full: Trio's wait, in a task
        try:
            with trio.CancelScope(deadline=deadline) as scope:
                await self.stream.send_all(data)
        except trio.BrokenResourceError as broken:
            return broken
        return False if scope.cancelled_caught else None

    def _failed(self, failed: trio.BrokenResourceError | bool) -> None:
        if isinstance(failed, trio.BrokenResourceError):
            self._broken(failed)
        else:
            self.proto.write_failed()

    async def send_close(
        self, code: int | None, reason: str, deadline: float, now: float | None = None
    ) -> bool:
        """Write our Close (``code`` None: an empty Close); see :meth:`_write_close`."""
        if now is None:
            now = self.now()
        self._delay_ack(now)
        return await self._write_close(self.proto.send_close(code, reason, now), deadline, now)

    async def send_invalid_close(self, variant: str, deadline: float, now: float) -> bool:
        """Write the malformed Close of ``variant``; see :meth:`_write_close`."""
        self._delay_ack(now)
        return await self._write_close(self.proto.send_invalid_close(variant, now), deadline, now)

    async def answer_close(self, deadline: float) -> None:
        """Answer the server's Close with its own code, if a Close may still go out."""
        now = self.now()
        frame = self.proto.answer_close(now)
        if frame is not None:
            await self._write_close(frame, deadline, now)

    async def _write_close(self, frame: bytes, deadline: float, now: float) -> bool:
        """Write a Close the protocol object just recorded as sent at ``now``.

        The write gets at least :data:`CLOSE_WRITE_GRACE` even when ``deadline`` has passed:
        ``timeout = "0s"`` means "Close, then terminate at once", and the Close must still go
        out when the socket can take it without waiting. A write that fails takes the record
        back (it is stamped before the write: trio's send_all yields after the syscall, and a
        busy loop resumes this task late, which would shorten every close_handshake).
        """
        failed = await self._write(frame, max(deadline, now + CLOSE_WRITE_GRACE), now)
        if failed is None:
            return True
        self.proto.close_unwritten()
        self._failed(failed)
        return False

    async def _write_unsent(self, deadline: float) -> None:
        """Write the rest of a Close the release wrote in part (:attr:`unsent`) by
        ``deadline`` (at least :data:`CLOSE_WRITE_GRACE`); a failure takes the record back, as
        :meth:`_write_close` does."""
        data, self.unsent = self.unsent, b""
        failed = await self._write(data, max(deadline, self.now() + CLOSE_WRITE_GRACE), None)
        if failed is not None:
            self.proto.close_unwritten()
            self._failed(failed)

    async def close(self, *, rst: bool = False, deadline: float = 0.0) -> None:
        """Close our socket (FIN, or RST when ``rst``) and stamp the connection's end; a Close
        the release wrote in part gets its rest written first, by ``deadline``."""
        if self.proto.tracker.state is CloseState.CLOSED:
            return
        if self.unsent:  # close_no_wait's Close (any other's: written in a pump)
            if rst:
                self.unsent = b""  # an RST drops what is queued anyway
            else:
                await self._write_unsent(deadline)
        await close_stream_now(self.stream, rst=rst)
        self.proto.socket_closed(self.now())


async def send_all(
    stream: trio.abc.Stream, io: RawIO | None, data: bytes, deadline: float = math.inf
) -> bool:
    """``stream.send_all(data)`` by ``deadline``; False when the deadline came first. With
    ``io`` (the plain TCP socket under it) one ``write()`` and no checkpoint when the socket
    takes it all, the stream for the rest.

    Raises what ``stream.send_all`` raises (``BrokenResourceError`` on a reset).
    """
    if io is not None:
        try:
            sent = io.write(data)
        except OSError as exc:
            raise stream_error(exc) from exc
        if sent == len(data):
            return True
        data = data[sent:]
        await io.promote()  # the socket buffer is full: Trio's wait, in a task
    with trio.move_on_at(deadline):
        await stream.send_all(data)
        return True
    return False


async def receive_some(
    stream: trio.abc.Stream, io: RawIO | None, deadline: float = math.inf
) -> bytes | None:
    """``stream.receive_some(RECEIVE_SIZE)``; with ``io``, its read (the one read path), by
    ``deadline``: None when it came first. The stream's read is bounded by the caller's
    cancel scope, as is a read of ``io`` with no deadline that does not park.

    Raises what ``stream.receive_some`` raises (``BrokenResourceError`` on a reset).
    """
    if io is None:
        return bytes(await stream.receive_some(RECEIVE_SIZE))
    data = await io.read(deadline)
    if isinstance(data, OSError):
        raise stream_error(data) from data
    return data  # None: nobody wakes or closes a connection before its upgrade: the deadline


def release_storm(
    links: list[Link], burst: contextlib.AbstractContextManager[object] = _NO_BURST
) -> tuple[list[Link], list[Link]]:
    """A storm's release: every parked link's first close action, whatever its kind, in one
    pass, before any connection task runs; then the protocol records.

    The pass does only what is on the wire, each stamped when done: the Close built while the
    link was held (``clean``, ``close_no_wait``, ``invalid_close``: one ``write``), the FIN
    (``terminate``; ``close_no_wait`` after its Close: one ``shutdown``), the RST (the close
    itself), the start of the wait for the server's Close (``await_server_close``,
    ``ignore_server_close``). So every kind starts at the same instant, and the pass costs
    per link little more than its syscall; the records (at the same stamps) and the closes of
    the FIN'd sockets follow, once every close has started. A connection's own behaviour then
    goes on from there (a Close already recorded is not sent again, a closed socket not closed
    again). The wire pass runs inside ``burst`` (a raised priority), left before the records:
    they wait behind the other processes' passes, not the other way round.

    Returns:
        The tasks to wake: first those whose first close action the pass left to them (their
        close has not started), then those whose close it started (their task only goes on
        to wait for the answer: :meth:`Alarm._ring` wakes them a batch per loop turn). A
        closed socket's wait was ended by Trio already.
    """
    with burst:
        done = [link._release_wire() for link in links]
    for link, action in zip(links, done, strict=True):
        if action != _NOTHING:
            link._release_record(action)
    left = [link for link, action in zip(links, done, strict=True) if action == _NOTHING]
    started = [link for link, action in zip(links, done, strict=True) if _NOTHING < action < _FIN]
    return left, started


class Alarm:
    """Wakes registered links when a watched run-wide :class:`trio.Event` is set.

    One system task per watched event (not per connection): it waits for the event, then calls
    :meth:`Link.wake` on every registered link. Links re-check the events themselves before
    every pump, so a wake-up that finds a link between two pumps is never lost. For a storm's
    release it first does every parked link's first close action itself, whatever the kind
    (:func:`release_storm`), in one pass, before any connection task runs: a release of
    10,000 connections does not wait for 10,000 cancellations and task switches before its
    last close starts, and no kind waits for its task while another is written at once. The
    tasks whose close the pass started are then woken :data:`WAKE_BATCH` per loop turn, so
    that no turn runs thousands of them. The pass runs at a raised priority where the process
    may (``wsload.process.raised_priority``: root), so that the processes it wakes (the
    target's, on one machine) do not take the cores from it before its last Close is written.
    A storm's load does the pass itself at its instant (:meth:`release`), inside the priority
    it raised before the instant; this task then only wakes the links.
    """

    __slots__ = ("_links", "_passed", "_watched")

    def __init__(self) -> None:
        self._links: set[Link] = set()
        self._watched: dict[int, trio.Event] = {}
        self._passed: tuple[list[Link], list[Link]] | None = None  # release()'s links to wake

    def release(self, event: trio.Event, burst: contextlib.ExitStack) -> None:
        """A storm's release, from the load's own task at its instant: the pass of
        :func:`release_storm` over the registered links, its writes inside ``burst`` (the
        priority the load raised before the instant); then ``event`` is set, and
        :meth:`_ring` only wakes the links the pass returned. A release already set (a stop)
        has its pass in :meth:`_ring`: nothing is done here."""
        if event.is_set():
            burst.close()
            return
        self._passed = release_storm(list(self._links), burst)
        event.set()

    def watch(self, event: trio.Event | None, *, release: bool = False) -> None:
        """Start ringing for ``event`` (once per event and Trio run); ``release``: a storm's."""
        if event is None or id(event) in self._watched or event.is_set():
            return  # (is_set last: an interpreted call, and most calls find it watched)
        self._watched[id(event)] = event
        trio.lowlevel.spawn_system_task(self._ring, event, release, name="wsload.engine.alarm")

    async def _ring(self, event: trio.Event, release: bool) -> None:
        try:
            await event.wait()
        finally:
            self._watched.pop(id(event), None)
        links = list(self._links)
        if not release:
            for link in links:
                link.wake()
            return
        passed, self._passed = self._passed, None
        if passed is None:  # set by a stop, not by release(): the pass is this task's
            passed = release_storm(links, raised_priority())  # well under a second
        left, started = passed
        for link in left:
            link.wake()
        for first in range(0, len(started), WAKE_BATCH):
            await trio.lowlevel.checkpoint()
            for link in started[first : first + WAKE_BATCH]:
                if link.parked:  # else its task went on already (the server's answer came)
                    link.wake()

    def add(self, link: Link) -> None:
        """Make ``link`` wakeable."""
        self._links.add(link)

    def discard(self, link: Link) -> None:
        """``link`` no longer wants waking."""
        self._links.discard(link)
