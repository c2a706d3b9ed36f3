"""A plain-TCP ``trio.abc.HalfCloseableStream`` straight on a non-blocking stdlib socket.

Why not ``trio.SocketStream``: building one per connection (the ``trio.socket`` wrapper, the
conflict detector, two ``setsockopt`` calls) costs about as much CPU as the whole sans-IO
upgrade, and wsload makes thousands of short connections per second. The driver's hot path
(``wsload.engine.link``) reads and writes the socket directly anyway; this class is what the
rest of the code (fallback writes, closing, tests) sees as the connection's stream. It keeps
the ``Stream`` contract: every operation is a checkpoint, errors are translated the way
``SocketStream`` translates them (``BrokenResourceError`` with the ``OSError`` as cause,
``ClosedResourceError`` after our own close).
"""

from __future__ import annotations

import _socket
import errno
import math
import operator
import os
import socket as _stdlib_socket
import struct

import trio

from wsload.engine.poller import Poller, Waitable

__all__ = [
    "EAGER_READS",
    "RECEIVE_SIZE",
    "TCP_INQ",
    "RawIO",
    "RawSocketStream",
    "stream_error",
]

RECEIVE_SIZE = 16384
"""Bytes per read: also the most a flooding peer gets processed before the task yields."""
EAGER_READS = 8
"""Reads in a row that found data without waiting before the task yields anyway (fairness)."""

_CLOSED_ERRNOS = frozenset((errno.EBADF, errno.ENOTSOCK))
_ANCILLARY = 64
"""Bytes of ancillary buffer for a stamped read: ``SCM_TIMESTAMPNS`` is 32, ``TCP_CM_INQ`` 24."""
TCP_INQ = 36
"""Linux ``TCP_INQ`` (also its ancillary message type, ``TCP_CM_INQ``); Python does not name it."""
_SOL_TCP = _stdlib_socket.IPPROTO_TCP
_TIMESPEC = struct.Struct("@qq")
"""``struct timespec`` on 64-bit Linux: seconds, nanoseconds."""
_LAST_DATA_RECV = struct.Struct("@52xI")
"""``struct tcp_info`` up to ``tcpi_last_data_recv`` (ms): 8 bytes, then the 12th ``__u32``."""
_ONE = struct.pack("@i", 1)
"""``TCP_CM_INQ``'s value when all data was read and the FIN has arrived."""


def stream_error(exc: OSError) -> trio.BrokenResourceError:
    """What ``trio.SocketStream`` turns a socket error into.

    Raises:
        trio.ClosedResourceError: EBADF/ENOTSOCK: the socket was closed by us.
    """
    if exc.errno in _CLOSED_ERRNOS:
        raise trio.ClosedResourceError("this socket was already closed") from None
    broken = trio.BrokenResourceError(f"socket connection broken: {exc}")
    broken.__cause__ = exc
    return broken


class RawSocketStream(trio.abc.HalfCloseableStream):
    """The stream of one connected, non-blocking TCP socket (TCP_NODELAY set here)."""

    __slots__ = ("_eof_sent", "_sending", "sock")

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self._eof_sent = False
        self._sending = False  # a send-side call is in progress (trio's conflict rule)
        try:  # noqa: SIM105 - per connection: suppress() would add a context manager
            sock.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)
        except OSError:  # not TCP (tests: socketpair), or already reset: reads will say so
            pass

    def _check_open(self) -> _socket.socket:
        sock = self.sock
        if sock.fileno() < 0:
            raise trio.ClosedResourceError("this socket was already closed")
        return sock

    def _start_sending(self) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is currently sending on this stream")
        self._sending = True

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._start_sending()
        try:
            await self._send_all(data)
        finally:
            self._sending = False

    async def _send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        sock = self._check_open()
        if self._eof_sent:
            raise trio.ClosedResourceError("can't send data after sending EOF")
        with memoryview(data) as whole:
            view = whole
            waited = False
            while view:
                try:  # the count in a name of its own: mypyc evaluates a memoryview
                    sent = sock.send(view)  # slice's bound twice (two sends)
                    view = view[sent:]
                    continue
                except BlockingIOError:
                    pass
                except OSError as exc:
                    raise stream_error(exc) from exc
                waited = True
                await trio.lowlevel.wait_writable(sock)
            view.release()
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        self._start_sending()
        try:
            await trio.lowlevel.wait_writable(self._check_open())
        finally:
            self._sending = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        size = 65536 if max_bytes is None else operator.index(max_bytes)
        if size < 1:
            raise ValueError("max_bytes must be >= 1")
        await trio.lowlevel.checkpoint_if_cancelled()
        sock = self._check_open()
        while True:
            try:
                data = sock.recv(size)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)
                sock = self._check_open()
                continue
            except OSError as exc:
                raise stream_error(exc) from exc
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data

    async def send_eof(self) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is currently sending on this stream")
        await trio.lowlevel.checkpoint()
        sock = self._check_open()
        if self._eof_sent:
            return
        self._eof_sent = True
        try:
            sock.shutdown(_stdlib_socket.SHUT_WR)
        except OSError as exc:
            raise stream_error(exc) from exc

    def close_now(self) -> None:
        """Close the socket without waiting (tells Trio first, as ``trio.socket`` does)."""
        sock = self.sock
        if sock.fileno() >= 0:
            trio.lowlevel.notify_closing(sock)
            sock.close()

    def close_unwatched(self) -> None:
        """:meth:`close_now` for the socket's only user, which is not waiting on it.

        ``notify_closing`` exists to wake *other* tasks blocked on the socket; the driver's
        connection task is its socket's only user and is running, so there are none, and
        skipping it saves an exception object and an ``epoll_ctl`` per connection (the kernel
        drops a closed socket from the epoll set by itself).
        """
        self.sock.close()

    async def aclose(self) -> None:
        self.close_now()
        await trio.lowlevel.checkpoint()


class RawIO(Waitable):
    """One connection's non-blocking socket read and written straight, without stream layers.

    The one fast path of the client's link and the built-in server's connections: a write is
    one ``write()`` syscall and no checkpoint when the socket buffer takes it all (callers hand
    the rest to their stream under their own deadline); a read that finds data is one
    ``read()`` and no checkpoint, and only an actual wait costs more: with ``poller`` (the
    client's sockets: the run's :class:`~wsload.engine.poller.Poller`) it parks the task
    there, bounded by its own deadline, without a cancel scope or Trio's per-wait epoll
    registration; without (the built-in server) it is Trio's ``wait_readable`` in a cancel
    scope. After a
    full read (more is probably waiting) or :data:`EAGER_READS` reads in a row without a wait
    the task yields once, so a peer that streams without pause cannot starve the other
    connections (tests/engine/test_engine_flood.py). Only the connection's own task reads or
    writes; another task may :meth:`wake` it.

    With ``stamped`` (the client's socket, ``SO_TIMESTAMPNS`` set: ``wsload.engine.wireclock``)
    a read is one ``recvmsg()`` instead of one ``read()``, and :attr:`arrived` is when the
    kernel received the bytes it returned, on the run's clock (``offset_ns``: the kernel's
    CLOCK_REALTIME minus the run clock, in ns). The built-in server does not stamp.

    A read's stamp is the arrival of the *last* segment it returned (and Linux merges a
    segment into an unread one before it, keeping the later stamp): exact for the read's last
    bytes, only an upper bound for bytes before them. So a stamped socket also asks for
    ``TCP_INQ``, whose hint says when the read took the peer's FIN as well (:attr:`fin_read`):
    a FIN merged into the unread bytes before it gives them its own, later, arrival.

    Attributes (and :class:`~wsload.engine.poller.Waitable`'s):
        wakeable: without a poller, another task may :meth:`wake` a wait; else a wait
            without a deadline needs no cancel scope (its caller's scope bounds it).
        scope: the cancel scope of the wait in progress, without a poller (None: not waiting).
        arrived: the kernel's arrival time of the last read's bytes (run clock, seconds);
            None when the read was not stamped (no ``stamped`` socket, the FIN: the kernel
            stamps data only).
        fin_read: the last stamped read also took the peer's FIN (``TCP_INQ``'s hint), so its
            stamp may be the FIN's arrival.
    """

    __slots__ = (
        "_drained",
        "_eager",
        "_offset_ns",
        "_poller",
        "_sock",
        "_wrote",
        "arrived",
        "fin_read",
        "scope",
        "wakeable",
    )

    def __init__(
        self,
        fd: int,
        stamped: _socket.socket | None = None,
        offset_ns: int = 0,
        *,
        wakeable: bool = False,
        poller: Poller | None = None,
    ) -> None:
        super().__init__(fd)
        self._poller = poller
        self.wakeable = wakeable
        self.scope: trio.CancelScope | None = None
        self.arrived: float | None = None
        self.fin_read = False
        self._sock = stamped
        self._offset_ns = offset_ns
        self._eager = 0
        self._wrote = False  # wrote since the last read: the answer cannot be there yet...
        self._drained = True  # ...if that read left nothing unread (a short read, or EAGAIN)

    def write(self, data: bytes | bytearray) -> int:
        """Write what the socket buffer takes now; the bytes written (0: it is full).

        Raises:
            OSError: the peer reset the connection (EPIPE, ECONNRESET), or the socket closed.
        """
        self._wrote = True
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0

    async def read(self, deadline: float) -> bytes | OSError | None:
        """Receive up to :data:`RECEIVE_SIZE` bytes by ``deadline`` (``b""``: the peer's FIN).

        Returns:
            The bytes; the ``OSError`` of a failed read (a reset); None when ``deadline``
            passed, :meth:`wake` was called, or the socket was closed under the wait.
        """
        fd, sock, poller = self.fd, self._sock, self._poller
        # right after a write a read would only say EAGAIN, unless the last one left bytes
        # unread (an edge-triggered poller reports only new ones) or the poller said more
        wait_first, self._wrote = self._wrote and self._drained, False
        while True:
            if not wait_first or self.ready:
                self.ready = False
                data = _read_now(fd) if sock is None else self._receive_stamped(sock)
                if data is not None:
                    if isinstance(data, OSError):
                        return data
                    self._drained = len(data) < RECEIVE_SIZE  # a stream read takes all there is
                    self._eager += 1
                    if self._eager >= EAGER_READS or len(data) == RECEIVE_SIZE:
                        self._eager = 0
                        if poller is not None and poller.stepping is not None:
                            await poller.promote()  # a fiber yields by becoming a task
                        else:
                            await trio.lowlevel.checkpoint()
                    return data
            wait_first = False
            self._eager = 0
            self._drained = True
            if poller is not None:  # the run's poller: no cancel scope, no epoll_ctl per wait
                if not await poller.park(self, deadline) or self.fd < 0:
                    return None
                continue
            if deadline == math.inf and not self.wakeable:
                await trio.lowlevel.wait_readable(fd)
                continue
            scope = trio.CancelScope(deadline=deadline)
            self.scope = scope
            try:
                with scope:
                    await trio.lowlevel.wait_readable(fd)
            except trio.ClosedResourceError:  # a storm's release closed the socket (wake)
                return None
            finally:
                self.scope = None
            if scope.cancelled_caught or self.fd < 0:  # fd < 0: closed after the wake-up
                return None

    def wake(self) -> None:
        """Cut the wait in progress short (its read returns None)."""
        if self.scope is not None:
            self.scope.cancel()
        if self._poller is not None:
            self._poller.wake(self)

    @property
    def waiting(self) -> bool:
        """The connection's task is parked in :meth:`read` (not writing, not running)."""
        return self.scope is not None or self.task is not None or self.fiber is not None

    async def promote(self) -> None:
        """Before one of Trio's own waits (a full socket buffer): a fiber becomes a task."""
        if self._poller is not None:
            await self._poller.promote()

    @property
    def on_fiber(self) -> bool:
        """The code running is a fiber's (stepped by the poller), not a Trio task's."""
        return self._poller is not None and self._poller.stepping is not None

    @property
    def parks(self) -> bool:
        """Reads wait in the run's :class:`~wsload.engine.poller.Poller`, bounded by their own
        deadline (no cancel scope needed around them)."""
        return self._poller is not None

    def detach(self) -> None:
        """Another task closes the socket (a storm's release): no read touches it again.

        A task that Trio already woke for data, but which has not run yet, would otherwise go
        on to read the closed descriptor: EBADF, or another connection's socket once the kernel
        reuses the number. Its read returns None instead, as when woken (a read parked in the
        poller is woken here: the close that follows tells only Trio's own waits).
        """
        self.fd = -1
        if self._poller is not None:
            self._poller.wake(self)

    @property
    def stamped(self) -> bool:
        """Reads carry the kernel's arrival stamps."""
        return self._sock is not None

    def delay_ack(self) -> bool:
        """Keep the kernel from merging the peer's FIN into its unread reply (stamped only).

        Linux merges an arriving segment into the unread one before it only when that one's
        data is no longer shared with the sender's retransmission queue, i.e. once it was
        acknowledged (``skb_try_coalesce`` refuses a cloned buffer); on loopback that is when
        our ACK goes out. ``TCP_QUICKACK`` 0 makes the kernel delay the ACK of the next
        segment (at least 40 ms, ``TCP_DELACK_MIN``), so a FIN that follows the reply within
        that time stays a segment of its own and the reply keeps its own stamp.

        Returns:
            True when the delay is set.
        """
        sock = self._sock
        if sock is None:
            return False
        try:
            sock.setsockopt(_SOL_TCP, _stdlib_socket.TCP_QUICKACK, 0)
        except OSError:
            return False
        return True

    def last_data_age(self) -> float | None:
        """Seconds since the kernel last took in data on this socket (``TCP_INFO``'s
        ``tcpi_last_data_recv``: a FIN carries none), stamped socket only; None when unknown.
        In whole jiffies (1-10 ms): a coarse but independent witness of a reply's arrival."""
        sock = self._sock
        if sock is None:
            return None
        try:
            info = sock.getsockopt(_SOL_TCP, _stdlib_socket.TCP_INFO, _LAST_DATA_RECV.size)
        except OSError:
            return None
        if len(info) < _LAST_DATA_RECV.size:
            return None
        return float(_LAST_DATA_RECV.unpack(info)[0]) / 1000

    def _receive_stamped(self, sock: _socket.socket) -> bytes | OSError | None:
        """:func:`_read_now` with the kernel's arrival stamp, set in :attr:`arrived`, and
        whether the read took the FIN too (:attr:`fin_read`)."""
        received = _recvmsg_now(sock)
        if received is None or isinstance(received, OSError):
            return received
        data, ancillary = received
        self.arrived, self.fin_read = None, False
        for level, kind, value in ancillary:
            if level == _SOL_TCP:
                # bytes left unread, or 1 with none left once the FIN arrived: with fewer
                # than a full read's bytes taken, the FIN came with them (or just after)
                self.fin_read = kind == TCP_INQ and value[:4] == _ONE and len(data) < RECEIVE_SIZE
            else:  # SO_TIMESTAMPNS: the timespec
                seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                self.arrived = (seconds * 1_000_000_000 + nanoseconds - self._offset_ns) * 1e-9
        return data


def _read_now(fd: int) -> bytes | OSError | None:
    """One non-blocking ``read``: the bytes, None when there are none yet (EAGAIN), or the error.

    A plain function so that the EAGAIN exception's traceback holds only this short-lived
    frame: raised inside a connection's coroutine, it would make CPython materialise a frame
    object for that coroutine (≈ 240 B) that lives as long as the connection waits, e.g. every
    connection held in a storm.
    """
    try:
        return os.read(fd, RECEIVE_SIZE)
    except BlockingIOError:
        return None
    except OSError as exc:
        return exc


def _recvmsg_now(
    sock: _socket.socket,
) -> tuple[bytes, list[tuple[int, int, bytes]]] | OSError | None:
    """One non-blocking ``recvmsg``: ``(bytes, ancillary messages)``, None (EAGAIN), or the
    error; a plain function for the reason :func:`_read_now` is one."""
    try:
        data, ancillary, _, _ = sock.recvmsg(RECEIVE_SIZE, _ANCILLARY)
    except BlockingIOError:
        return None
    except OSError as exc:
        return exc
    return data, ancillary
