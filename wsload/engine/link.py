"""One upgraded connection: the stream, the frame reader, the close tracker, and the only reads.

Why one object and no reader task: the hot path must stay at one Trio task per connection.
Every phase (session, hold, close behaviours) drives the connection the same way: decide what to
send, then :meth:`Link.pump` once with a deadline (one ``receive_some`` inside a cancel scope),
then look at what the protocol object recorded (a match arrived, pong, the server's Close, EOF,
a protocol failure). The protocol decisions are all in
:class:`~wsload.core.protocol.ClientProtocol`; the link only moves bytes and reads the clock,
and writes the replies (pongs, reflected messages) the protocol returns.

:class:`Alarm` is how a run-wide event (graceful stop, storm release) reaches connections parked
in a pump without giving each its own waiting task: links register while they may be woken, and
one system task per event cancels their pump's scope when the event is set.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket as _stdlib_socket
import ssl
import struct
import sys
from collections.abc import Callable

import trio

from wsload.core.closing import CloseState
from wsload.core.frames import OP_CLOSE, close_payload, encode_frame
from wsload.core.outcomes import Outcome
from wsload.core.protocol import ClientProtocol
from wsload.engine.rawstream import RawSocketStream, stream_error

__all__ = [
    "CLOSE_WRITE_GRACE",
    "RECEIVE_SIZE",
    "Alarm",
    "Link",
    "close_stream_now",
    "receive_some",
    "send_all",
    "socket_of",
]

RECEIVE_SIZE = 16384
"""Bytes per read: also the most a flooding server gets processed before the task yields."""
_SIOCOUTQ: int | None = 0x5411 if sys.platform == "linux" else None
"""Linux ``ioctl``: bytes in a TCP socket's send queue (not yet acknowledged)."""
_INT = bytes(4)
CLOSE_WRITE_GRACE = 0.005
"""Seconds a Close frame write may take even when its close deadline has already passed."""
_LINGER_ZERO = struct.pack("ii", 1, 0)
_EAGER_READS = 8
"""Reads in a row that found data without waiting before the task yields anyway (fairness)."""


def _recv_now(raw: _stdlib_socket.socket) -> bytes | OSError | None:
    """One non-blocking ``recv``: the bytes, None when there are none yet (EAGAIN), or the error.

    A plain function so that the EAGAIN exception's traceback holds only this short-lived
    frame: raised inside the ``Link`` coroutine, it would make CPython materialise a frame
    object for that coroutine (≈ 240 B) that lives as long as the connection waits, e.g. every
    connection held in a storm.
    """
    try:
        return raw.recv(RECEIVE_SIZE)
    except BlockingIOError:
        return None
    except OSError as exc:
        return exc


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
        with contextlib.suppress(OSError):  # already dead: closing is all that is left
            sock.setsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_LINGER, _LINGER_ZERO)
    if isinstance(stream, RawSocketStream):
        stream.close_unwatched()  # only the connection's own task ever uses its stream
    else:
        sock.close()


class Link:
    """An upgraded WebSocket connection as the driver sees it: the stream and its protocol.

    Attributes:
        proto: the sans-IO protocol state (close tracker, failure, matches, counters).
        tracker: ``proto.tracker``, the close handshake record.
        write_broken: a write did not complete; nothing more may be written.
        message_rtts / ping_rtts: measured round trips, seconds.
        step_latencies: ``(metric, seconds)`` of named expect steps.
        release_close: ``(code, reason)`` of the Close a storm's release writes for this link
            while it is ``parked`` in the session's hold (:meth:`Alarm.watch`), None: none
            (the close behaviour is not ``clean``, or no storm).
        parked: the session holds this link until the storm's release.
        now: reads the run's clock (``trio.current_time``, or the same clock's bound
            ``current_time``: :meth:`DriverContext.bind_clock`).
    """

    __slots__ = (
        "_eager",
        "_sent",
        "censored",
        "message_rtts",
        "now",
        "parked",
        "ping_rtts",
        "proto",
        "raw",
        "release_close",
        "scope",
        "step_latencies",
        "stream",
        "tracker",
        "write_broken",
        "write_timeout",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        proto: ClientProtocol,
        write_timeout: float,
        raw: _stdlib_socket.socket | None = None,
        now: Callable[[], float] = trio.current_time,
    ) -> None:
        self.stream = stream
        self.now = now
        self.raw = raw
        self._eager = 0
        self._sent = False  # wrote since the last read: the answer cannot be there yet
        self.proto = proto
        self.tracker = proto.tracker
        self.write_timeout = write_timeout
        self.write_broken = False
        self.scope: trio.CancelScope | None = None
        self.release_close: tuple[int | None, str] | None = None
        self.parked = False
        self.message_rtts: list[float] = []
        self.ping_rtts: list[float] = []
        self.step_latencies: list[tuple[str, float]] = []
        self.censored: list[tuple[str, float]] = []  # timed-out measurements: (metric, waited)

    @property
    def failure(self) -> tuple[Outcome, str] | None:
        """``(outcome, detail)`` once the connection failed outside a normal close."""
        return self.proto.failure

    @property
    def fail_code(self) -> int | None:
        """The Close code to fail with after a protocol failure (1002/1007/1009)."""
        return self.proto.fail_code

    @property
    def ended(self) -> bool:
        """Nothing more can be read: failed, or the server's TCP close was seen."""
        return self.proto.failure is not None or self.tracker.eof is not None  # proto.ended

    def wake(self) -> None:
        """Cut the current pump short (it returns as if its deadline had passed)."""
        if self.scope is not None:
            self.scope.cancel()

    def write_release_close(self) -> None:
        """Write :attr:`release_close` now, from the releasing task, if parked and writable.

        Written only when the socket's send queue is empty (``SIOCOUTQ``), so that the frame
        (at most 131 bytes) goes out whole in one ``send()``; otherwise, or on any error, the
        connection's own ``clean`` behaviour sends and judges the Close once woken, exactly as
        without a storm. Stamped as ``send_close`` stamps: when the bytes went out, which is
        also when the close starts. Saves the release a task switch and a cancellation per
        connection before its Close can go out.
        """
        close, raw = self.release_close, self.raw
        if close is None or raw is None or not self.parked or self.write_broken:
            return
        if self.proto.ended or not self.tracker.can_send_close:
            return
        code, reason = close
        frame = encode_frame(OP_CLOSE, close_payload(code, reason))
        now = self.now()
        try:
            if _SIOCOUTQ is None or fcntl.ioctl(raw, _SIOCOUTQ, _INT) != _INT:
                return  # bytes still queued (or no way to know): the task writes its Close
            sent = raw.send(frame)
        except OSError:  # EAGAIN or a reset: the task's own close behaviour finds out
            return
        self._sent = True
        if sent != len(frame):  # not with an empty queue; if ever, the frame is broken
            self.write_broken = True
            return
        self.tracker.send_close(now, code, reason if code is not None else "")

    async def pump(self, deadline: float, now: float | None = None) -> bool:
        """Receive once (until ``deadline``) and process what arrived.

        ``now``: the caller read the clock just before (no await since): the deadline check
        before the read uses it instead of reading again.

        Returns:
            False when the deadline passed (or :meth:`wake` was called) before any bytes came.
        """
        data: bytes | bytearray
        if self.raw is not None:
            received = await self._receive_raw(deadline, now)
            if received is None:
                return False
            if isinstance(received, trio.BrokenResourceError):
                self._broken(received)
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
            self.tracker.receive_eof(now)
            return True
        await self.absorb(data, now)
        return True

    async def _receive_raw(
        self, deadline: float, now: float | None
    ) -> bytes | trio.BrokenResourceError | None:
        """``receive_some`` on the plain TCP socket without the stream layers (the hot path).

        Same semantics as a ``receive_some`` inside a cancel scope with ``deadline`` (None:
        the deadline passed or :meth:`wake` was called first), but a read that finds data
        costs one syscall and no checkpoint; only an actual wait pays for a cancel scope.
        After a full read (more is probably waiting) or :data:`_EAGER_READS` reads in a row
        without a wait the task yields once, so a server that streams without pause cannot
        starve the other connections (tests/engine/test_engine_flood.py).
        """
        raw = self.raw
        assert raw is not None
        if (self.now() if now is None else now) >= deadline:
            await trio.lowlevel.checkpoint_if_cancelled()
            return None
        wait_first, self._sent = self._sent, False
        while True:
            if not wait_first:  # right after a write, a recv() would only say EAGAIN
                data = _recv_now(raw)
                if isinstance(data, OSError):
                    return stream_error(data)
                if data is not None:
                    self._eager += 1
                    if self._eager >= _EAGER_READS or len(data) == RECEIVE_SIZE:
                        self._eager = 0
                        await trio.lowlevel.checkpoint()
                    return data
            wait_first = False
            self._eager = 0
            scope = trio.CancelScope(deadline=deadline)
            self.scope = scope
            try:
                with scope:
                    await trio.lowlevel.wait_readable(raw)
            finally:
                self.scope = None
            if scope.cancelled_caught:
                return None

    async def absorb(self, data: bytes | bytearray, now: float) -> None:
        """Process received bytes (also the bytes that followed the 101) and send replies."""
        out = self.proto.receive_data(data, now)
        if out:
            await self.send(out, now + self.write_timeout, now)

    def _broken(self, exc: trio.BrokenResourceError) -> None:
        """A read or write failed: a reset (ECONNRESET/EPIPE), or a TLS failure."""
        self.write_broken = True
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLEOFError):
            self.proto.fail(Outcome.TLS_ERROR, f"TLS failed after the upgrade: {cause}")
            return
        if self.tracker.eof is None:
            self.tracker.receive_eof(self.now(), reset=True)

    async def send(self, data: bytes, deadline: float, now: float | None = None) -> bool:
        """Write ``data`` by ``deadline``; False (and no more writes) when it could not.

        ``now``: the caller read the clock just before (no await since), e.g. to compute
        ``deadline``: the check before the write uses it instead of reading again.
        """
        if self.write_broken:
            return False
        raw = self.raw
        if raw is not None:  # the hot path: one send() syscall when the socket can take it all
            if (self.now() if now is None else now) >= deadline:
                self.write_broken = True
                return False
            try:
                sent = raw.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self._broken(stream_error(exc))
                return False
            self._sent = True
            if sent == len(data):
                return True
            data = data[sent:]
        try:
            with trio.CancelScope(deadline=deadline) as scope:
                await self.stream.send_all(data)
        except trio.BrokenResourceError as exc:
            self._broken(exc)
            return False
        if scope.cancelled_caught:  # part of a frame may be out: the stream is unusable
            self.write_broken = True
            return False
        return True

    async def send_close(
        self, code: int | None, reason: str, deadline: float, now: float | None = None
    ) -> bool:
        """Write a valid Close frame and record it (``code`` None: an empty Close)."""
        frame = encode_frame(OP_CLOSE, close_payload(code, reason))
        reason = reason if code is not None else ""
        return await self.send_raw_close(frame, code, reason, deadline, now)

    async def send_raw_close(
        self,
        frame: bytes,
        code: int | None,
        reason: str | None,
        deadline: float,
        now: float | None = None,
    ) -> bool:
        """Write a prepared Close frame (maybe malformed on purpose) and record it.

        The write gets at least :data:`CLOSE_WRITE_GRACE` even when ``deadline`` has passed:
        ``timeout = "0s"`` means "Close, then terminate at once", and the Close must still go
        out when the socket can take it without waiting. ``now``: the stamp the caller read
        right before, with no await since (the behaviour's start of the close, which is then
        also this write's instant), instead of reading the clock again.
        """
        if now is None:
            now = self.now()
        if not await self.send(frame, max(deadline, now + CLOSE_WRITE_GRACE), now):
            return False
        # stamped before the write: trio's send_all yields after the syscall, and a busy loop
        # resumes this task late, which would shorten every close_handshake by that lateness
        self.tracker.send_close(now, code, reason)
        return True

    async def close(self, *, rst: bool = False) -> None:
        """Close our socket (FIN, or RST when ``rst``) and stamp the connection's end."""
        if self.tracker.state is CloseState.CLOSED:
            return
        await close_stream_now(self.stream, rst=rst)
        self.tracker.close_socket(self.now())


async def send_all(stream: trio.abc.Stream, raw: _stdlib_socket.socket | None, data: bytes) -> None:
    """``stream.send_all(data)``; with ``raw`` (the plain TCP socket under it) one ``send()``
    syscall and no checkpoint when the socket takes it all, the stream for the rest.

    Raises what ``stream.send_all`` raises (``BrokenResourceError`` on a reset).
    """
    if raw is not None:
        try:
            sent = raw.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise stream_error(exc) from exc
        if sent == len(data):
            return
        data = data[sent:]
    await stream.send_all(data)


async def receive_some(
    stream: trio.abc.Stream, raw: _stdlib_socket.socket | None, *, wait_first: bool = False
) -> bytes:
    """``stream.receive_some(RECEIVE_SIZE)``; with ``raw``, straight on the socket (one
    ``recv()`` when data is there, else ``wait_readable`` and retry; ``wait_first``: we just
    wrote the request, so skip the ``recv()`` that could only say EAGAIN). Callers bound it
    with their own cancel scope, as they would the stream's.
    """
    if raw is None:
        return bytes(await stream.receive_some(RECEIVE_SIZE))
    if wait_first:
        await trio.lowlevel.wait_readable(raw)
    while True:
        try:
            return raw.recv(RECEIVE_SIZE)
        except BlockingIOError:
            pass
        except OSError as exc:
            raise stream_error(exc) from exc
        await trio.lowlevel.wait_readable(raw)


class Alarm:
    """Wakes registered links when a watched run-wide :class:`trio.Event` is set.

    One system task per watched event (not per connection): it waits for the event, then calls
    :meth:`Link.wake` on every registered link. Links re-check the events themselves before
    every pump, so a wake-up that finds a link between two pumps is never lost. For a storm's
    release it first writes every parked link's Close itself (:meth:`Link.write_release_close`),
    in one pass, before any connection task runs: a release of 10,000 connections no longer
    waits for 10,000 cancellations and task switches before its last Close goes out.
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
            for link in links:
                link.write_release_close()
        for link in links:
            link.wake()

    def add(self, link: Link) -> None:
        """Make ``link`` wakeable."""
        self._links.add(link)

    def discard(self, link: Link) -> None:
        """``link`` no longer wants waking."""
        self._links.discard(link)
