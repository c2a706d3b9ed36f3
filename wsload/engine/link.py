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

import contextlib
import fcntl
import math
import socket as _stdlib_socket
import ssl
import struct
import sys
from collections.abc import Callable

import trio

from wsload.core.closing import CloseState
from wsload.core.kinds import CloseKind
from wsload.core.protocol import ClientProtocol
from wsload.engine.rawstream import RECEIVE_SIZE, RawIO, RawSocketStream, stream_error
from wsload.engine.wireclock import ACK_GUARD, JIFFY_MAX, WireClock
from wsload.scenario.model import CloseSpec

__all__ = [
    "CLOSE_WRITE_GRACE",
    "Alarm",
    "Link",
    "close_stream_now",
    "receive_some",
    "send_all",
    "socket_of",
]

_SIOCOUTQ: int | None = 0x5411 if sys.platform == "linux" else None
"""Linux ``ioctl``: bytes in a TCP socket's send queue (not yet acknowledged)."""
_INT = bytes(4)
CLOSE_WRITE_GRACE = 0.005
"""Seconds a Close frame write may take even when its close deadline has already passed."""
_LINGER_ZERO = struct.pack("ii", 1, 0)
_WAITING = (CloseKind.AWAIT_SERVER_CLOSE, CloseKind.IGNORE_SERVER_CLOSE)
"""Kinds whose first close action is to start waiting for the server's Close."""
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


def _linger_zero(sock: _stdlib_socket.socket | trio.socket.SocketType) -> None:
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
            (:meth:`release_now`), None: no storm.
        parked: the session holds this link until the storm's release.
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
        "proto",
        "release",
        "scope",
        "step_latencies",
        "stream",
        "tracker",
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

    def release_now(self) -> bool:
        """A storm's release: do this parked link's first close action now, whatever its kind.

        Called from the releasing task for every parked link in one pass, before any
        connection task runs, so that every kind starts its close at the same instant: the
        Close frame (``clean``, ``close_no_wait``, ``invalid_close``), the TCP drop
        (``terminate``; ``close_no_wait`` after its Close), or the start of the wait for the
        server's Close (``await_server_close``, ``ignore_server_close``). The connection's own
        behaviour then goes on from there once woken (a Close already recorded is not sent
        again, a closed socket not closed again). Only on the raw fast path and only when the
        whole action can be done without waiting: a Close frame is written only when the
        socket's send queue is empty (``SIOCOUTQ``), so that it (at most 131 bytes) goes out
        whole in one write; otherwise, or on any error, or when the task is not waiting in its
        read (a write of its own is under way: a drop would make it fail), the connection's own
        behaviour does the action once woken, exactly as without a storm.

        Returns:
            True when a FIN went out and the socket is to be closed after the pass
            (:meth:`close_released`): the wire event now, Trio's bookkeeping after every
            link's start, so that a ``terminate`` costs the pass no more than a Close does.
        """
        spec, io, proto = self.release, self.io, self.proto
        if spec is None or io is None or not self.parked or proto.close_expected():
            return False
        if io.scope is None:  # the task is not in its read: it is writing (a ping), its turn
            return False
        kind = spec.kind
        now = self.now()
        if kind in _WAITING:
            proto.start_close(now)
            return False
        if kind is CloseKind.TERMINATE:
            proto.start_close(now)
            return self._drop(now, rst=spec.rst)
        try:
            if _SIOCOUTQ is None or fcntl.ioctl(io.fd, _SIOCOUTQ, _INT) != _INT:
                return False  # bytes still queued (or no way to know): the task writes it
        except OSError:
            return False
        if kind is CloseKind.INVALID_CLOSE:
            frame = proto.send_invalid_close(spec.variant, now)
        else:
            frame = proto.send_close(spec.code, spec.reason, now)
        try:
            sent = io.write(frame)
        except OSError:  # a reset: the task's own close behaviour finds out
            sent = 0
        if sent != len(frame):
            proto.close_unwritten()
            if sent:  # not with an empty queue; if ever, the frame is broken
                proto.write_failed()
            return False
        return kind is CloseKind.CLOSE_NO_WAIT and self._drop(now, rst=False)

    def _drop(self, now: float, *, rst: bool) -> bool:
        """Drop TCP from the release pass (the link's task waits in :meth:`pump`).

        An RST needs the close itself, done now; a FIN goes out now (``shutdown``) and the
        socket is closed after the pass. Either way the connection's end is stamped now.
        """
        stream, io = self.stream, self.io
        assert isinstance(stream, RawSocketStream) and io is not None
        self.proto.socket_closed(now)
        io.detach()
        if rst:
            _linger_zero(stream.sock)
            stream.close_now()  # tells Trio first: the parked wait ends
            return False
        with contextlib.suppress(OSError):  # already reset: the close after the pass is all
            stream.sock.shutdown(_stdlib_socket.SHUT_WR)
        return True

    def close_released(self) -> None:
        """Close the socket whose FIN :meth:`release_now` sent (the parked wait ends)."""
        stream = self.stream
        assert isinstance(stream, RawSocketStream)
        stream.close_now()  # tells Trio first

    async def pump(self, deadline: float, now: float | None = None) -> bool:
        """Receive once (until ``deadline``) and hand what arrived to the protocol object.

        The one read path of every wait (session, hold, each close behaviour). ``now``: the
        caller read the clock just before (no await since): the deadline check before the
        read uses it instead of reading again.

        Returns:
            False when the deadline passed (or :meth:`wake` was called) before any bytes came.
        """
        data: bytes | bytearray
        io = self.io
        if io is not None:
            if (self.now() if now is None else now) >= deadline:
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
        if awaited and io is not None and io.fin_read and t.close_received is not None:
            self._fin_with_close(io, arrived)
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
        try:
            with trio.CancelScope(deadline=deadline) as scope:
                await self.stream.send_all(data)
        except trio.BrokenResourceError as exc:
            return exc
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

    async def close(self, *, rst: bool = False) -> None:
        """Close our socket (FIN, or RST when ``rst``) and stamp the connection's end."""
        if self.proto.tracker.state is CloseState.CLOSED:
            return
        await close_stream_now(self.stream, rst=rst)
        self.proto.socket_closed(self.now())


async def send_all(stream: trio.abc.Stream, io: RawIO | None, data: bytes) -> None:
    """``stream.send_all(data)``; with ``io`` (the plain TCP socket under it) one ``write()``
    and no checkpoint when the socket takes it all, the stream for the rest.

    Raises what ``stream.send_all`` raises (``BrokenResourceError`` on a reset).
    """
    if io is not None:
        try:
            sent = io.write(data)
        except OSError as exc:
            raise stream_error(exc) from exc
        if sent == len(data):
            return
        data = data[sent:]
    await stream.send_all(data)


async def receive_some(stream: trio.abc.Stream, io: RawIO | None) -> bytes:
    """``stream.receive_some(RECEIVE_SIZE)``; with ``io``, its read (the one read path).
    Callers bound it with their own cancel scope, as they would the stream's.

    Raises what ``stream.receive_some`` raises (``BrokenResourceError`` on a reset).
    """
    if io is None:
        return bytes(await stream.receive_some(RECEIVE_SIZE))
    data = await io.read(math.inf)
    if isinstance(data, OSError):
        raise stream_error(data) from data
    if data is None:  # nobody wakes a connection before its upgrade: the socket was closed
        raise trio.ClosedResourceError("the socket was closed")
    return data


class Alarm:
    """Wakes registered links when a watched run-wide :class:`trio.Event` is set.

    One system task per watched event (not per connection): it waits for the event, then calls
    :meth:`Link.wake` on every registered link. Links re-check the events themselves before
    every pump, so a wake-up that finds a link between two pumps is never lost. For a storm's
    release it first does every parked link's first close action itself, whatever the kind
    (:meth:`Link.release_now`), in one pass, before any connection task runs: a release of
    10,000 connections does not wait for 10,000 cancellations and task switches before its
    last close starts, and no kind waits for its task while another is written at once.
    """

    __slots__ = ("_links", "_watched")

    def __init__(self) -> None:
        self._links: set[Link] = set()
        self._watched: dict[int, trio.Event] = {}

    def watch(self, event: trio.Event | None, *, release: bool = False) -> None:
        """Start ringing for ``event`` (once per event and Trio run); ``release``: a storm's."""
        if event is None or event.is_set() or id(event) in self._watched:
            return
        self._watched[id(event)] = event
        trio.lowlevel.spawn_system_task(self._ring, event, release, name="wsload.engine.alarm")

    async def _ring(self, event: trio.Event, release: bool) -> None:
        try:
            await event.wait()
        finally:
            self._watched.pop(id(event), None)
        links = list(self._links)
        if release:
            dropped = [link for link in links if link.release_now()]
            for link in dropped:
                link.close_released()
        for link in links:
            link.wake()

    def add(self, link: Link) -> None:
        """Make ``link`` wakeable."""
        self._links.add(link)

    def discard(self, link: Link) -> None:
        """``link`` no longer wants waking."""
        self._links.discard(link)
