"""One upgraded connection: the stream, the frame reader, the close tracker, and the only reads.

Why one object and no reader task: the hot path must stay at one Trio task per connection.
Every phase (session, hold, close behaviours) drives the connection the same way: decide what to
send, then :meth:`Link.pump` once with a deadline (one ``receive_some`` inside a cancel scope),
then look at what the pump recorded (echo arrived, pong, the server's Close, EOF, a protocol
failure). Control replies (pong, reflected messages) are written by the pump itself.

:class:`Alarm` is how a run-wide event (graceful stop, storm release) reaches connections parked
in a pump without giving each its own waiting task: links register while they may be woken, and
one system task per event cancels their pump's scope when the event is set.
"""

from __future__ import annotations

import contextlib
import socket as _stdlib_socket
import ssl
import struct

import trio

from wsload.core.closing import CloseState, CloseTracker
from wsload.core.frames import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    FrameReader,
    ReceivedClose,
    close_payload,
    encode_frame,
)
from wsload.core.outcomes import Outcome

__all__ = ["CLOSE_WRITE_GRACE", "RECEIVE_SIZE", "Alarm", "Link", "close_stream_now", "socket_of"]

RECEIVE_SIZE = 65536
CLOSE_WRITE_GRACE = 0.005
"""Seconds a Close frame write may take even when its close deadline has already passed."""
_LINGER_ZERO = struct.pack("ii", 1, 0)


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

    Safe to call while cancelled (the Cancelled path of the driver relies on it).
    """
    sock = socket_of(stream)
    if sock is None:
        await trio.aclose_forcefully(stream)
        return
    if rst:
        with contextlib.suppress(OSError):  # already dead: closing is all that is left
            sock.setsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_LINGER, _LINGER_ZERO)
    sock.close()


class Link:
    """An upgraded WebSocket connection as the driver sees it.

    Attributes:
        tracker: the close handshake record (state, stamps, codes).
        failure: ``(outcome, detail)`` once the connection failed outside a normal close.
        fail_code: the Close code to fail with after a protocol failure (1002/1007/1009).
        write_broken: a write did not complete; nothing more may be written.
        expect_echo: the next complete data message is the echo of ours (not reflected).
        echo_at: when that echo arrived.
        reflect: send every other complete data message back (session ``reflect``).
        pongs: ``(payload, arrival time)`` of pongs not yet matched by the session.
        message_rtts / ping_rtts: measured round trips, seconds.
    """

    __slots__ = (
        "_parts",
        "echo_at",
        "expect_echo",
        "fail_code",
        "failure",
        "message_rtts",
        "ping_rtts",
        "pongs",
        "reader",
        "reflect",
        "scope",
        "stream",
        "tracker",
        "write_broken",
        "write_timeout",
    )

    def __init__(self, stream: trio.abc.Stream, reader: FrameReader, write_timeout: float) -> None:
        self.stream = stream
        self.reader = reader
        self.tracker = CloseTracker()
        self.write_timeout = write_timeout
        self.failure: tuple[Outcome, str] | None = None
        self.fail_code: int | None = None
        self.write_broken = False
        self.scope: trio.CancelScope | None = None
        self.expect_echo = False
        self.echo_at: float | None = None
        self.reflect = False
        self.pongs: list[tuple[bytes, float]] = []
        self.message_rtts: list[float] = []
        self.ping_rtts: list[float] = []
        self._parts: list[bytes | str] = []

    @property
    def ended(self) -> bool:
        """Nothing more can be read: failed, or the server's TCP close was seen."""
        return self.failure is not None or self.tracker.eof is not None

    def wake(self) -> None:
        """Cut the current pump short (it returns as if its deadline had passed)."""
        if self.scope is not None:
            self.scope.cancel()

    async def pump(self, deadline: float) -> bool:
        """Receive once (until ``deadline``) and process what arrived.

        Returns:
            False when the deadline passed (or :meth:`wake` was called) before any bytes came.
        """
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
        now = trio.current_time()
        if not data:
            self.tracker.receive_eof(now)
            return True
        await self.absorb(data, now)
        return True

    async def absorb(self, data: bytes | bytearray, now: float) -> None:
        """Process received bytes (also the bytes that followed the 101) and send replies."""
        out = self._process(data, now)
        if out:
            await self.send(out, now + self.write_timeout)

    def _process(self, data: bytes | bytearray, now: float) -> bytes:
        """Feed the frame reader; record what arrived; return control replies to write."""
        reader = self.reader
        reader.feed(data)
        out = b""
        while True:
            try:
                item = reader.next()
            except FrameError as exc:
                self.fail_protocol(exc.code, str(exc))
                return out
            if item is None:
                return out
            if isinstance(item, ReceivedClose):
                self.tracker.receive_close(now, item.code, item.reason)
                if item.error:
                    self.fail_protocol(
                        item.fail_code, f"invalid Close from the server: {item.error}"
                    )
                return out
            opcode, payload, finished = item
            if opcode == OP_PING:
                if self.tracker.state is CloseState.OPEN:
                    assert isinstance(payload, bytes)
                    out += encode_frame(OP_PONG, payload)
            elif opcode == OP_PONG:
                assert isinstance(payload, bytes)
                self.pongs.append((payload, now))
            elif not finished:
                if self.reflect:
                    self._parts.append(payload)
            elif self.expect_echo:
                self.expect_echo = False
                self.echo_at = now
                self._parts.clear()
            elif self.reflect and self.tracker.state is CloseState.OPEN:
                out += self._reflection(opcode, payload)

    def _reflection(self, opcode: int, last: bytes | str) -> bytes:
        parts, self._parts = [*self._parts, last], []
        if opcode == OP_TEXT:
            text = "".join(p for p in parts if isinstance(p, str))
            return encode_frame(OP_TEXT, text.encode("utf-8"))
        return encode_frame(opcode, b"".join(p for p in parts if isinstance(p, bytes)))

    def fail_protocol(self, code: int, detail: str) -> None:
        """The server broke the protocol: fail with Close ``code`` (sent when the link ends)."""
        if self.failure is None:
            self.failure = (Outcome.PROTOCOL_ERROR, detail)
            self.fail_code = code

    def _broken(self, exc: trio.BrokenResourceError) -> None:
        """A read or write failed: a reset (ECONNRESET/EPIPE), or a TLS failure."""
        self.write_broken = True
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLEOFError):
            if self.failure is None:
                self.failure = (Outcome.TLS_ERROR, f"TLS failed after the upgrade: {cause}")
            return
        if self.tracker.eof is None:
            self.tracker.receive_eof(trio.current_time(), reset=True)

    async def send(self, data: bytes, deadline: float) -> bool:
        """Write ``data`` by ``deadline``; False (and no more writes) when it could not."""
        if self.write_broken:
            return False
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

    async def send_close(self, code: int | None, reason: str, deadline: float) -> bool:
        """Write a valid Close frame and record it (``code`` None: an empty Close)."""
        frame = encode_frame(OP_CLOSE, close_payload(code, reason))
        return await self.send_raw_close(frame, code, reason if code is not None else "", deadline)

    async def send_raw_close(
        self, frame: bytes, code: int | None, reason: str | None, deadline: float
    ) -> bool:
        """Write a prepared Close frame (maybe malformed on purpose) and record it.

        The write gets at least :data:`CLOSE_WRITE_GRACE` even when ``deadline`` has passed:
        ``timeout = "0s"`` means "Close, then terminate at once", and the Close must still go
        out when the socket can take it without waiting.
        """
        now = trio.current_time()
        if not await self.send(frame, max(deadline, now + CLOSE_WRITE_GRACE)):
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
        self.tracker.close_socket(trio.current_time())


class Alarm:
    """Wakes registered links when a watched run-wide :class:`trio.Event` is set.

    One system task per watched event (not per connection): it waits for the event, then calls
    :meth:`Link.wake` on every registered link. Links re-check the events themselves before
    every pump, so a wake-up that finds a link between two pumps is never lost.
    """

    __slots__ = ("_links", "_watched")

    def __init__(self) -> None:
        self._links: set[Link] = set()
        self._watched: dict[int, trio.Event] = {}

    def watch(self, event: trio.Event | None) -> None:
        """Start ringing for ``event`` (once per event and Trio run)."""
        if event is None or event.is_set() or id(event) in self._watched:
            return
        self._watched[id(event)] = event
        trio.lowlevel.spawn_system_task(self._ring, event, name="wsload.engine.alarm")

    async def _ring(self, event: trio.Event) -> None:
        try:
            await event.wait()
        finally:
            self._watched.pop(id(event), None)
        for link in list(self._links):
            link.wake()

    def add(self, link: Link) -> None:
        """Make ``link`` wakeable."""
        self._links.add(link)

    def discard(self, link: Link) -> None:
        """``link`` no longer wants waking."""
        self._links.discard(link)
