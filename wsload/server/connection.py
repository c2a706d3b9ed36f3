"""One connection of the built-in server, start to end, in one Trio task.

Why one task and no helper tasks: the server must stay cheap per connection (thousands open at
once, on a 2-core box shared with the load generator). So the timers of the current phase (its
``close_after``, the delay before a Close reply, the wait for the client's answer, a mute
server's hold) are the deadline of the single receive the task is blocked in, and outside
requests (a shutdown storm) wake that receive by cancelling its scope. The bounds that end the
connection whatever it is doing (request timeout, send timeout, a storm's grace) are the
deadline of one outer scope. Only the connection's own task writes to its socket, so frames
never interleave.

The phases after the upgrade (``_Conn.phase``) are a transition table with its diagram in
``server/phases.py``; what each phase's timer does when it fires is ``_ON_DEADLINE`` below.

When the outer deadline expires (even during a send blocked on a client that stopped reading)
the connection is terminated; which bound it was is told apart afterwards.
"""

from __future__ import annotations

import contextlib
import math
import random
import select
import socket
import struct
from collections.abc import Callable
from typing import Any, Literal

import trio
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import CloseConnection, Message, Ping
from wsproto.frame_protocol import CloseReason

from wsload.core.deflate import PerMessageDeflate, accept_offer
from wsload.engine.rawstream import RECEIVE_SIZE, RawIO
from wsload.scenario.model import Delay, ServerConfig
from wsload.server.app import PubSub
from wsload.server.phases import READS_FRAMES, Phase, PhaseEvent, next_phase
from wsload.server.stats import ServerStats
from wsload.server.upgrade import (
    BadUpgrade,
    UpgradeRequest,
    accept_response,
    error_response,
    parse_request,
    reject_response,
    split_head,
)

__all__ = [
    "HARD_SEND_LIMIT",
    "MAX_INFLATED",
    "REQUEST_TIMEOUT",
    "SEND_TIMEOUT",
    "ServerState",
    "serve_connection",
]

REQUEST_TIMEOUT = 10.0
"""How long a client may take to send its whole upgrade request."""

SEND_TIMEOUT = 30.0
"""How long one send may block on a client that stopped reading before the server drops it."""

HARD_SEND_LIMIT = 1.0
"""A hard storm (grace 0) still writes its Close; this bounds that write on a full buffer."""

MAX_INFLATED = 16 * 1024 * 1024
"""The most one compressed client message may inflate to (a bomb is failed with 1009)."""

_NO_CODE = 1005
_ABNORMAL = 1006
_RDHUP = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR
_LINGER_ZERO = struct.pack("ii", 1, 0)


class ServerState:
    """What the connection tasks of one server share: configuration, counters, random draws.

    Two seeded generators keep rejections independent of delays: changing ``upgrade_delay``
    does not change which upgrades a given seed rejects.
    """

    __slots__ = ("_delay_rng", "_next_close", "_reject_rng", "config", "open", "stats")

    def __init__(self, config: ServerConfig, seed: int | None = None) -> None:
        self.config = config
        self.stats = ServerStats()
        self.open: set[_Conn] = set()
        self._reject_rng = random.Random(None if seed is None else f"{seed}/reject")
        self._delay_rng = random.Random(None if seed is None else f"{seed}/delay")
        self._next_close = -math.inf

    def close_slot(self, ready: float) -> float:
        """When a Close reply ready at ``ready`` may go out under ``close_capacity`` (per s).

        A token bucket holding one token: replies leave at least ``1 / close_capacity`` apart,
        in the order they became ready, and the excess queues. Below the capacity a reply
        waits at most for the one before it; above it the wait grows by the excess every
        second, which is the sharp, known knee a capacity search must find.
        """
        capacity = self.config.close_capacity
        if capacity is None:
            return ready
        at = max(ready, self._next_close)
        self._next_close = at + 1.0 / capacity
        return at

    def draw_delay(self, delay: Delay) -> float:
        """Seconds to wait for ``delay``: fixed, or uniform in ``min..max``."""
        if delay.max <= 0.0:
            return 0.0
        if delay.min >= delay.max:
            return delay.max
        return self._delay_rng.uniform(delay.min, delay.max)

    def draw_reject(self) -> bool:
        """Whether the next valid upgrade is rejected (``reject_share``; one draw per upgrade)."""
        share = self.config.reject_share
        if share <= 0.0:
            return False
        if share >= 1.0:
            return True
        return self._reject_rng.random() < share


class _Gone(Exception):
    """The client reset or closed the connection under a send or receive."""


class _Conn:
    """State of one connection; only its own task touches the socket."""

    __slots__ = (
        "app",
        "app_next",
        "app_parts",
        "close_received",
        "deadline",
        "deflate",
        "done",
        "first_closer",
        "io",
        "out",
        "phase",
        "received",
        "reply_code",
        "rst",
        "scope",
        "state",
        "storm_code",
        "storm_deadline",
        "storm_hard",
        "storm_killed",
        "stream",
        "upgrade_counted",
        "upgraded",
        "wait_scope",
        "ws",
    )

    def __init__(self, state: ServerState, stream: trio.abc.HalfCloseableStream) -> None:
        self.state = state
        self.stream = stream
        # the one raw fast path (shared with the client's link) on a plain TCP socket
        self.io = RawIO(stream.socket.fileno()) if isinstance(stream, trio.SocketStream) else None
        self.scope = trio.CancelScope()
        self.wait_scope: trio.CancelScope | None = None
        self.done = trio.Event()
        self.ws = Connection(ConnectionType.SERVER)
        self.deflate: PerMessageDeflate | None = None
        self.phase = Phase.OPEN
        self.deadline = math.inf
        self.out = bytearray()
        self.upgraded = False
        self.upgrade_counted = False
        self.close_received = False
        self.first_closer: Literal["server", "client"] | None = None
        self.rst = False
        self.received = 0
        self.reply_code = _NO_CODE
        self.storm_code: int | None = None
        self.storm_deadline = math.inf
        self.storm_hard = False
        self.storm_killed = False
        config = state.config
        self.app = (
            PubSub(config.app_pushes, config.app_bye_code) if config.app == "pubsub" else None
        )
        self.app_next = math.inf  # when the next pubsub push is due
        self.app_parts: list[str] = []

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
                    if self.first_closer is None:
                        self.first_closer = "client"
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
            self.storm_killed = True
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
        await self._send(accept_response(request, self._accept_deflate(request)))
        stats.upgrades_ok += 1
        stats.opened()
        self.upgraded = True
        state.open.add(self)
        return split[1]

    def _accept_deflate(self, request: UpgradeRequest) -> str | None:
        """With ``compression = "deflate"``, take the client's permessage-deflate offer: the
        wsproto connection then inflates (bounded) and compresses through it."""
        offer = request.headers.get("sec-websocket-extensions")
        if self.state.config.compression is None or not offer:
            return None
        accepted = accept_offer(offer)
        if accepted is None:
            return None
        params, header = accepted
        self.deflate = PerMessageDeflate(params, client=False, max_message_size=MAX_INFLATED)
        self.ws = Connection(ConnectionType.SERVER, extensions=[self.deflate])
        self.state.stats.deflate_connections += 1
        return header

    async def _session(self, rest: bytes) -> None:
        config = self.state.config
        if config.close_after is not None:
            self.deadline = trio.current_time() + config.close_after
        if rest:
            self.ws.receive_data(rest)
            self._handle_events()
        while True:
            if self.out:
                out, self.out = self.out, bytearray()
                await self._send(out)
            if self.finished:
                return
            if self.phase is Phase.DRAIN and self.first_closer is None:
                self.first_closer = "server"
                try:
                    await self.stream.send_eof()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
            if self.storm_code is not None:
                self._storm()
                continue
            data = await self._receive(min(self.deadline, self.app_next))
            if data is None:
                now = trio.current_time()
                if self.storm_code is None and now >= self.deadline:
                    _ON_DEADLINE[self.phase](self)
                elif now >= self.app_next:
                    self._app_push(now)
                continue
            if not data:
                if self.first_closer is None:
                    self.first_closer = "client"
                return
            if self.phase in READS_FRAMES:
                self.ws.receive_data(data)
                self._handle_events()

    def _handle_events(self) -> None:
        """Act on every event wsproto parsed; outgoing bytes collect in ``self.out``."""
        ws, stats, config = self.ws, self.state.stats, self.state.config
        for event in ws.events():
            if isinstance(event, Message):
                if event.message_finished:
                    stats.messages_in += 1
                    self.received += 1
                if self.app is not None:
                    self._app_message(event)
                    if self.finished or self.phase is not Phase.OPEN:
                        return
                elif config.messages == "echo" and ws.state is ConnectionState.OPEN:
                    self.out += ws.send(event)
                    if event.message_finished:
                        stats.messages_out += 1
                limit = config.close_after_messages
                if (
                    limit is not None
                    and event.message_finished
                    and self.received >= limit
                    and self.phase is Phase.OPEN
                ):
                    self._server_close()
                    if self.finished:
                        return
            elif isinstance(event, Ping):
                if ws.state is ConnectionState.OPEN:
                    self.out += ws.send(event.response())
                    stats.pings_answered += 1
            elif isinstance(event, CloseConnection):
                if ws.state in (ConnectionState.REMOTE_CLOSING, ConnectionState.CLOSED):
                    self._on_client_close(int(event.code))
                else:
                    self._on_protocol_error(int(event.code), event.reason or "")
                return

    def _app_message(self, event: Message[Any]) -> None:
        """Application mode: act on a client message (reassembled when fragmented)."""
        assert self.app is not None
        if isinstance(event.data, str):
            self.app_parts.append(event.data)
        if not event.message_finished:
            return
        text, self.app_parts = "".join(self.app_parts), []
        reply = self.app.on_message(text)
        if self.ws.state is not ConnectionState.OPEN or self.phase is not Phase.OPEN:
            return
        for message in reply.messages:
            self.out += self.ws.send(Message(data=message))
            self.state.stats.messages_out += 1
        if reply.start_pushes:
            self.app_next = trio.current_time() + self.state.config.app_push_interval
        if reply.close is not None:
            self.app_next = math.inf
            self._send_close(reply.close, "bye")

    def _app_push(self, now: float) -> None:
        """Application mode: the push timer fired; send the push and arm the next one."""
        assert self.app is not None
        push = self.app.next_push()
        if (
            push is None
            or self.ws.state is not ConnectionState.OPEN
            or self.phase is not Phase.OPEN
        ):
            self.app_next = math.inf
            return
        self.out += self.ws.send(Message(data=push))
        self.state.stats.messages_out += 1
        self.app_next = now + self.state.config.app_push_interval

    def _on_client_close(self, code: int) -> None:
        stats, config = self.state.stats, self.state.config
        self.close_received = True
        stats.close_codes_received[code] += 1
        if self.ws.state is ConnectionState.CLOSED or config.close_reply == "drop":
            # the answer to our own Close, or a server that drops TCP instead of answering
            self._go(PhaseEvent.END)
        elif config.close_reply == "never":
            self._go(PhaseEvent.STAY_MUTE)
            self.deadline = trio.current_time() + config.close_timeout
        else:
            self.reply_code = code
            delay = self.state.draw_delay(config.close_reply_delay)
            if config.close_capacity is not None:
                now = trio.current_time()
                delay = self.state.close_slot(now + delay) - now
            if delay > 0.0:
                self._go(PhaseEvent.REPLY_LATER)
                self.deadline = trio.current_time() + delay
            else:
                self._reply()

    def _reply(self) -> None:
        """Echo the client's code (RFC 6455 §5.5.1); the server then closes TCP first.

        A Close that carried no code (1005) is answered with an empty Close: wsproto does that
        only for its own ``CloseReason.NO_STATUS_RCVD`` member (an identity test), not for 1005.
        """
        code = CloseReason.NO_STATUS_RCVD if self.reply_code == _NO_CODE else self.reply_code
        self.out += self.ws.send(CloseConnection(code=code))
        self.state.stats.close_codes_sent[self.reply_code] += 1
        self._go(PhaseEvent.END)

    def _on_protocol_error(self, code: int, reason: str) -> None:
        """Fail the connection: Close with wsproto's code (1002, 1007), FIN, drain to EOF."""
        stats = self.state.stats
        stats.protocol_errors += 1
        if self.ws.state is not ConnectionState.OPEN:
            self._go(PhaseEvent.END)  # our Close is already out: just drop
            return
        self.out += self.ws.send(CloseConnection(code=code, reason=reason))
        stats.close_codes_sent[code] += 1
        self._go(PhaseEvent.FAIL)
        self.deadline = trio.current_time() + self.state.config.close_timeout

    def _send_close(self, code: int, reason: str) -> None:
        self.out += self.ws.send(CloseConnection(code=code, reason=reason))
        self.state.stats.close_codes_sent[code] += 1
        self._go(PhaseEvent.SEND_CLOSE)
        self.deadline = trio.current_time() + self.state.config.close_timeout

    def _server_close(self) -> None:
        """``close_after`` / ``close_after_messages``: close, or terminate with FIN / RST."""
        config = self.state.config
        self.state.stats.server_initiated[config.close_action] += 1
        if config.close_action == "close":
            self._send_close(config.close_code, config.close_reason)
        else:
            self.rst = config.close_action == "rst"
            self._go(PhaseEvent.END)

    def _storm(self) -> None:
        assert self.storm_code is not None
        code, self.storm_code = self.storm_code, None
        if self.ws.state is ConnectionState.OPEN:
            self._send_close(code, "")
            self.state.stats.storm_closed += 1
        if self.storm_hard:
            self.storm_killed = True
            self._go(PhaseEvent.END)

    @property
    def finished(self) -> bool:
        """Nothing more to send or wait for: the session loop ends, the socket is closed."""
        return self.phase is Phase.FINISHED

    def _go(self, event: PhaseEvent) -> None:
        self.phase = next_phase(self.phase, event)

    def _close_after_elapsed(self) -> None:
        self.deadline = math.inf
        self._server_close()

    def _close_timed_out(self) -> None:
        """Our Close went unanswered for ``close_timeout``: drop TCP."""
        self.state.stats.close_timeouts += 1
        self._go(PhaseEvent.END)

    def _mute_elapsed(self) -> None:
        """A mute server held the unanswered Close for ``close_timeout``: drop TCP."""
        self.state.stats.mute_drops += 1
        self._go(PhaseEvent.END)

    def _drain_elapsed(self) -> None:
        self._go(PhaseEvent.END)

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
        state, stats = self.state, self.state.stats
        state.open.discard(self)
        stats.open -= 1
        if self.first_closer is None:
            self.first_closer = "client" if self._peer_closed() else "server"
        if self.first_closer == "server":
            stats.tcp_closed_first_by_server += 1
        else:
            stats.tcp_closed_first_by_client += 1
        if not self.close_received:
            stats.ended_without_close += 1
            stats.close_codes_received[_ABNORMAL] += 1
        if self.storm_killed:
            stats.storm_terminated += 1
        if self.deflate is not None:
            stats.compressed_messages_in += self.deflate.compressed_received

    async def _close_stream(self) -> None:
        stream = self.stream
        if isinstance(stream, trio.SocketStream):
            if self.rst:
                with contextlib.suppress(OSError):
                    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            stream.socket.close()
        else:
            await trio.aclose_forcefully(stream)


_ON_DEADLINE: dict[Phase, Callable[[_Conn], None]] = {
    Phase.OPEN: _Conn._close_after_elapsed,
    Phase.REPLY_DELAY: _Conn._reply,
    Phase.SERVER_CLOSING: _Conn._close_timed_out,
    Phase.MUTE: _Conn._mute_elapsed,
    Phase.DRAIN: _Conn._drain_elapsed,
}
"""What the timer of each waiting phase does when it fires (``finished`` has none)."""


async def serve_connection(state: ServerState, stream: trio.abc.HalfCloseableStream) -> None:
    """Serve one accepted connection to its end; never raises for anything the client does."""
    await _Conn(state, stream).run()
