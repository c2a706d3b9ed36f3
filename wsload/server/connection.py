"""One connection of the built-in server, start to end, in one Trio task: the I/O.

Why one task and no helper tasks: the server must stay cheap per connection (thousands open at
once, on a 2-core box shared with the load generator). So the timers of the current phase (its
``close_after``, the delay before a Close reply, the wait for the client's answer, a mute
server's hold) are the deadline of the single read the task is blocked in, and outside
requests (a shutdown storm) wake that read. The bounds that end the connection whatever it is
doing (request timeout, send timeout, a storm's grace) are the deadline of one outer scope.
Only the connection's own task writes to its socket, so frames never interleave.

What the server does about each event (the client's bytes, a timer, a storm) is
``server/policy.py``'s :class:`~wsload.server.policy.ConnectionPolicy`, told the time by this
task; this module reads the upgrade request, moves bytes through the one raw fast path shared
with the client (:class:`~wsload.engine.rawstream.RawIO`), and closes the socket. When the
outer deadline expires (even during a send blocked on a client that stopped reading) the
connection is terminated; which bound it was is told apart afterwards.
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import struct

import trio

from wsload.engine.rawstream import RECEIVE_SIZE, RawIO
from wsload.server.policy import ConnectionPolicy, ServerState
from wsload.server.upgrade import (
    BadUpgrade,
    accept_response,
    error_response,
    parse_request,
    reject_response,
    split_head,
)

__all__ = ["HARD_SEND_LIMIT", "REQUEST_TIMEOUT", "SEND_TIMEOUT", "serve_connection"]

REQUEST_TIMEOUT = 10.0
"""How long a client may take to send its whole upgrade request."""

SEND_TIMEOUT = 30.0
"""How long one send may block on a client that stopped reading before the server drops it."""

HARD_SEND_LIMIT = 1.0
"""A hard storm (grace 0) still writes its Close; this bounds that write on a full buffer."""

_RDHUP = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR
_LINGER_ZERO = struct.pack("ii", 1, 0)


class _Gone(Exception):
    """The client reset or closed the connection under a send or receive."""


class _Conn:
    """The I/O of one connection; only its own task touches the socket."""

    __slots__ = (
        "done",
        "io",
        "policy",
        "scope",
        "state",
        "storm_code",
        "storm_deadline",
        "storm_hard",
        "stream",
        "upgrade_counted",
        "upgraded",
        "wait_scope",
    )

    def __init__(self, state: ServerState, stream: trio.abc.HalfCloseableStream) -> None:
        self.state = state
        self.stream = stream
        # the one raw fast path (shared with the client's link) on a plain TCP socket
        self.io = RawIO(stream.socket.fileno()) if isinstance(stream, trio.SocketStream) else None
        self.scope = trio.CancelScope()
        self.wait_scope: trio.CancelScope | None = None
        self.done = trio.Event()
        self.policy = ConnectionPolicy(state)
        self.upgraded = False
        self.upgrade_counted = False
        self.storm_code: int | None = None
        self.storm_deadline = math.inf
        self.storm_hard = False

    # -- called from other tasks -------------------------------------------------------------

    def request_storm(self, code: int, deadline: float, hard: bool) -> None:
        """Ask this connection to close with ``code`` and be gone by ``deadline``."""
        self.storm_code = code
        self.storm_hard = self.storm_hard or hard
        self.storm_deadline = min(self.storm_deadline, deadline)
        self.scope.deadline = min(self.scope.deadline, deadline)
        if self.io is not None:
            self.io.wake()
        if self.wait_scope is not None:
            self.wait_scope.cancel()

    async def closed(self) -> None:
        """Return once the connection is gone (its socket closed, its counters final)."""
        await self.done.wait()

    # -- the task ------------------------------------------------------------------------------

    async def run(self) -> None:
        """The connection's task.

        The outer scope's deadline is, in turn, the request timeout, a send's timeout and the
        storm's grace (the earliest of those armed): one scope instead of one per wait keeps
        the per-connection cost down. Which one fired is told apart afterwards.
        """
        self.state.stats.connections_accepted += 1
        self.scope.deadline = trio.current_time() + REQUEST_TIMEOUT
        try:
            with self.scope:
                try:
                    rest = await self._upgrade()
                    if rest is not None:
                        await self._session(rest)
                except _Gone:
                    self.policy.peer_closed()
            if self.scope.cancelled_caught:
                self._timed_out()
        finally:
            self._account()
            await self._close_stream()
            self.done.set()

    def _timed_out(self) -> None:
        """The outer deadline fired: a storm's grace, the request timeout or a stalled send."""
        stats = self.state.stats
        if self.storm_deadline <= trio.current_time():
            self.policy.storm_killed = True
        elif not self.upgraded:
            if not self.upgrade_counted:
                self._fail_upgrade("timeout")
        else:
            stats.send_timeouts += 1

    def _fail_upgrade(self, reason: str) -> None:
        self.upgrade_counted = True
        self.state.stats.upgrades_failed += 1
        self.state.stats.upgrade_failures[reason] += 1

    async def _send(self, data: bytes | bytearray) -> None:
        """Send all of ``data`` within :data:`SEND_TIMEOUT` (or the storm's grace).

        Fast path (:class:`~wsload.engine.rawstream.RawIO`): a frame or a 101 nearly always
        fits in the socket buffer, so it is written straight to the non-blocking descriptor;
        only what does not fit goes through Trio's ``send_all`` under a deadline. That skips a
        checkpoint and two deadline changes per send, a fifth of the server's CPU per short
        connection. Only this task writes to the socket, so the two paths never interleave.
        """
        io = self.io
        if io is not None:
            try:
                sent = io.write(data)
            except OSError:  # EPIPE, ECONNRESET: the client is gone
                raise _Gone from None
            if sent == len(data):
                return
            data = data[sent:]
        self.scope.deadline = min(self.storm_deadline, trio.current_time() + SEND_TIMEOUT)
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise _Gone from None
        self.scope.deadline = self.storm_deadline

    async def _receive(self, deadline: float = math.inf) -> bytes | None:
        """Receive by ``deadline`` (``b""``: the client's FIN); None: the deadline passed or
        :meth:`request_storm` woke the wait. The one read path, shared with the client's link
        on plain TCP (:class:`~wsload.engine.rawstream.RawIO`)."""
        io = self.io
        if io is not None:
            data = await io.read(deadline)
            if isinstance(data, OSError):
                raise _Gone from None
            return data
        with trio.CancelScope(deadline=deadline) as wait:
            self.wait_scope = wait
            try:
                return bytes(await self.stream.receive_some(RECEIVE_SIZE))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise _Gone from None
            finally:
                self.wait_scope = None
        return None

    async def _upgrade(self) -> bytes | None:
        """Read and answer the upgrade request; the bytes after its head if upgraded."""
        state, stats = self.state, self.state.stats
        buffer = bytearray()
        split: tuple[bytes, bytes] | None = None
        eof = False
        try:
            while split is None and not eof:  # bounded by REQUEST_TIMEOUT (the outer scope)
                data = await self._receive()
                if data is None:  # a storm's wake-up: not for a connection not yet upgraded
                    continue
                eof = not data
                buffer += data
                split = split_head(buffer)
            if split is None:
                self._fail_upgrade("eof")
                return None
            request = parse_request(split[0])
        except BadUpgrade as exc:
            self._fail_upgrade(exc.reason)
            await self._send(error_response(exc))
            return None
        except _Gone:
            self._fail_upgrade("reset")
            return None
        self.scope.deadline = self.storm_deadline
        rejected = state.draw_reject()
        delay = state.draw_delay(state.config.upgrade_delay)
        if delay > 0.0:
            await trio.sleep(delay)
        if rejected:
            status = state.config.reject_status
            stats.upgrades_rejected[status] += 1
            self.upgrade_counted = True
            await self._send(reject_response(status))
            return None
        offer = request.headers.get("sec-websocket-extensions")
        await self._send(accept_response(request, self.policy.accept_deflate(offer)))
        stats.upgrades_ok += 1
        stats.opened()
        self.upgraded = True
        if self.io is not None:
            self.io.wakeable = True  # a storm may wake it from now on (request_storm)
        state.open.add(self)
        return split[1]

    async def _session(self, rest: bytes) -> None:
        policy = self.policy
        policy.start(rest, trio.current_time())
        while True:
            if policy.out:
                out, policy.out = policy.out, bytearray()
                await self._send(out)
            if policy.finished:
                return
            if policy.half_close():
                try:
                    await self.stream.send_eof()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
            if self.storm_code is not None:
                code, self.storm_code = self.storm_code, None
                policy.storm(code, self.storm_hard, trio.current_time())
                continue
            data = await self._receive(policy.next_timer)
            now = trio.current_time()
            if data is None:
                if self.storm_code is None:  # else a storm's wake-up: the loop handles it
                    policy.timer(now)
                continue
            if not data:
                policy.peer_closed()
                return
            policy.receive(data, now)

    # -- the end -------------------------------------------------------------------------------

    def _peer_closed(self) -> bool:
        """Whether the client's FIN (or RST) has already arrived, without reading.

        A client that sends its Close and drops TCP at once (``close_no_wait``) often lands
        its FIN in the same instant the server answers; without this look the server would
        count itself as having closed first.
        """
        stream = self.stream
        if not isinstance(stream, trio.SocketStream):
            return False
        try:
            poller = select.poll()
            poller.register(stream.socket.fileno(), select.POLLIN | _RDHUP)
            ready = poller.poll(0)
        except (OSError, ValueError):
            return False
        return bool(ready) and bool(ready[0][1] & _RDHUP)

    def _account(self) -> None:
        """Final counters of an upgraded connection (runs in ``finally``, synchronously)."""
        if not self.upgraded:
            return
        self.state.open.discard(self)
        policy = self.policy
        policy.account(policy.first_closer is None and self._peer_closed())

    async def _close_stream(self) -> None:
        stream = self.stream
        if isinstance(stream, trio.SocketStream):
            if self.policy.rst:
                with contextlib.suppress(OSError):
                    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            stream.socket.close()
        else:
            await trio.aclose_forcefully(stream)


async def serve_connection(state: ServerState, stream: trio.abc.HalfCloseableStream) -> None:
    """Serve one accepted connection to its end; never raises for anything the client does."""
    await _Conn(state, stream).run()
