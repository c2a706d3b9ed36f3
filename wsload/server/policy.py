"""What the built-in server does about each event of one connection, without I/O.

Why apart from the connection task (``server/connection.py``): the rules (echo, answer a Close
after a delay or never, close after N messages, a storm's Close, the pubsub app, the close
capacity) are the server's behaviour that users configure and tests pin down; the task around
them only moves bytes and owns the timers' cancel scopes. Every method is told the time
(``now``) instead of reading a clock, takes the client's bytes or a timer's expiry, and leaves
the bytes to send in :attr:`ConnectionPolicy.out`; the phases it moves through are the table in
``server/phases.py``, and what each phase's timer does when it fires is :data:`_ON_DEADLINE`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, Literal, Protocol

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import CloseConnection, Message, Ping
from wsproto.frame_protocol import CloseReason

from wsload.core.deflate import PerMessageDeflate, accept_offer
from wsload.scenario.model import Delay, ServerConfig
from wsload.server.app import PubSub
from wsload.server.phases import READS_FRAMES, Phase, PhaseEvent, next_phase
from wsload.server.stats import ServerStats

__all__ = ["MAX_INFLATED", "ConnectionPolicy", "ServerState", "Stormable"]

MAX_INFLATED = 16 * 1024 * 1024
"""The most one compressed client message may inflate to (a bomb is failed with 1009)."""

_NO_CODE = 1005
_ABNORMAL = 1006


class Stormable(Protocol):
    """An open connection a shutdown storm can ask to close (the connection task)."""

    def request_storm(self, code: int, deadline: float, hard: bool) -> None:
        """Close with ``code`` and be gone by ``deadline`` (``hard``: right after the Close)."""

    async def closed(self) -> None:
        """Return once the connection is gone."""


class ServerState:
    """What the connections of one server share: configuration, counters, random draws.

    Two seeded generators keep rejections independent of delays: changing ``upgrade_delay``
    does not change which upgrades a given seed rejects.
    """

    __slots__ = ("_delay_rng", "_next_close", "_reject_rng", "config", "open", "stats")

    def __init__(self, config: ServerConfig, seed: int | None = None) -> None:
        self.config = config
        self.stats = ServerStats()
        self.open: set[Stormable] = set()
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


class ConnectionPolicy:
    """One upgraded connection's server-side state and its rules.

    Attributes:
        ws: the wsproto connection (frames in and out; with the deflate extension if agreed).
        deflate: the agreed permessage-deflate extension (None: none).
        phase: where the connection stands (``server/phases.py``).
        deadline: when the current phase's timer fires (``close_after``, a reply delay,
            ``close_timeout``); infinity: none armed.
        app_next: when the next pubsub push is due (infinity: none).
        out: bytes to send, collected by the rules; the task writes and clears them.
        close_received: the client's Close arrived.
        first_closer: who closed TCP first, once known.
        rst: drop TCP with RST (``close_action = "rst"``).
        storm_killed: a storm ended the connection (hard storm, or its grace ran out).
    """

    __slots__ = (
        "app",
        "app_next",
        "app_parts",
        "close_received",
        "deadline",
        "deflate",
        "first_closer",
        "out",
        "phase",
        "received",
        "reply_code",
        "rst",
        "state",
        "storm_killed",
        "ws",
    )

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.ws = Connection(ConnectionType.SERVER)
        self.deflate: PerMessageDeflate | None = None
        self.phase = Phase.OPEN
        self.deadline = math.inf
        self.out = bytearray()
        self.close_received = False
        self.first_closer: Literal["server", "client"] | None = None
        self.rst = False
        self.received = 0
        self.reply_code = _NO_CODE
        self.storm_killed = False
        config = state.config
        self.app = (
            PubSub(config.app_pushes, config.app_bye_code) if config.app == "pubsub" else None
        )
        self.app_next = math.inf
        self.app_parts: list[str] = []

    @property
    def finished(self) -> bool:
        """Nothing more to send or wait for: the session loop ends, the socket is closed."""
        return self.phase is Phase.FINISHED

    @property
    def next_timer(self) -> float:
        """When the nearest timer fires (the deadline of the task's next read)."""
        return min(self.deadline, self.app_next)

    def accept_deflate(self, offer: str | None) -> str | None:
        """With ``compression = "deflate"``, take the client's permessage-deflate ``offer``:
        the wsproto connection then inflates (bounded) and compresses through it. Returns the
        response header's value (None: not agreed)."""
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

    def start(self, rest: bytes, now: float) -> None:
        """The upgrade was answered at ``now``; ``rest``: the bytes that followed the request."""
        config = self.state.config
        if config.close_after is not None:
            self.deadline = now + config.close_after
        if rest:
            self.receive(rest, now)

    def receive(self, data: bytes, now: float) -> None:
        """The client's bytes arrived at ``now`` (discarded in a phase that reads none)."""
        if self.phase in READS_FRAMES:
            self.ws.receive_data(data)
            self._handle_events(now)

    def peer_closed(self) -> None:
        """The client's FIN arrived."""
        if self.first_closer is None:
            self.first_closer = "client"

    def half_close(self) -> bool:
        """Whether to send our FIN now: once, on entering ``drain`` (we then close first)."""
        if self.phase is Phase.DRAIN and self.first_closer is None:
            self.first_closer = "server"
            return True
        return False

    def timer(self, now: float) -> None:
        """The task's read reached :attr:`next_timer` at ``now``: run what fired."""
        if now >= self.deadline:
            _ON_DEADLINE[self.phase](self, now)
        elif now >= self.app_next:
            self._app_push(now)

    def storm(self, code: int, hard: bool, now: float) -> None:
        """A shutdown storm asks for a Close with ``code``; ``hard``: drop TCP right after."""
        if self.ws.state is ConnectionState.OPEN:
            self._send_close(code, "", now)
            self.state.stats.storm_closed += 1
        if hard:
            self.storm_killed = True
            self._go(PhaseEvent.END)

    def account(self, peer_closed_first: bool) -> None:
        """Final counters of an upgraded connection; ``peer_closed_first``: the client's FIN
        or RST was already there when the server closed (when nobody knew who went first)."""
        stats = self.state.stats
        stats.open -= 1
        if self.first_closer is None:
            self.first_closer = "client" if peer_closed_first else "server"
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

    # -- the rules ---------------------------------------------------------------------------

    def _handle_events(self, now: float) -> None:
        """Act on every event wsproto parsed; outgoing bytes collect in ``self.out``."""
        ws, stats, config = self.ws, self.state.stats, self.state.config
        for event in ws.events():
            if isinstance(event, Message):
                if event.message_finished:
                    stats.messages_in += 1
                    self.received += 1
                if self.app is not None:
                    self._app_message(event, now)
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
                    self._server_close(now)
                    if self.finished:
                        return
            elif isinstance(event, Ping):
                if ws.state is ConnectionState.OPEN:
                    self.out += ws.send(event.response())
                    stats.pings_answered += 1
            elif isinstance(event, CloseConnection):
                if ws.state in (ConnectionState.REMOTE_CLOSING, ConnectionState.CLOSED):
                    self._on_client_close(int(event.code), now)
                else:
                    self._on_protocol_error(int(event.code), event.reason or "", now)
                return

    def _app_message(self, event: Message[Any], now: float) -> None:
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
            self.app_next = now + self.state.config.app_push_interval
        if reply.close is not None:
            self.app_next = math.inf
            self._send_close(reply.close, "bye", now)

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

    def _on_client_close(self, code: int, now: float) -> None:
        stats, config = self.state.stats, self.state.config
        self.close_received = True
        stats.close_codes_received[code] += 1
        if self.ws.state is ConnectionState.CLOSED or config.close_reply == "drop":
            # the answer to our own Close, or a server that drops TCP instead of answering
            self._go(PhaseEvent.END)
        elif config.close_reply == "never":
            self._go(PhaseEvent.STAY_MUTE)
            self.deadline = now + config.close_timeout
        else:
            self.reply_code = code
            delay = self.state.draw_delay(config.close_reply_delay)
            if config.close_capacity is not None:
                delay = self.state.close_slot(now + delay) - now
            if delay > 0.0:
                self._go(PhaseEvent.REPLY_LATER)
                self.deadline = now + delay
            else:
                self._reply(now)

    def _reply(self, now: float) -> None:
        """Echo the client's code (RFC 6455 §5.5.1); the server then closes TCP first.

        A Close that carried no code (1005) is answered with an empty Close: wsproto does that
        only for its own ``CloseReason.NO_STATUS_RCVD`` member (an identity test), not for 1005.
        """
        code = CloseReason.NO_STATUS_RCVD if self.reply_code == _NO_CODE else self.reply_code
        self.out += self.ws.send(CloseConnection(code=code))
        self.state.stats.close_codes_sent[self.reply_code] += 1
        self._go(PhaseEvent.END)

    def _on_protocol_error(self, code: int, reason: str, now: float) -> None:
        """Fail the connection: Close with wsproto's code (1002, 1007), FIN, drain to EOF."""
        stats = self.state.stats
        stats.protocol_errors += 1
        if self.ws.state is not ConnectionState.OPEN:
            self._go(PhaseEvent.END)  # our Close is already out: just drop
            return
        self.out += self.ws.send(CloseConnection(code=code, reason=reason))
        stats.close_codes_sent[code] += 1
        self._go(PhaseEvent.FAIL)
        self.deadline = now + self.state.config.close_timeout

    def _send_close(self, code: int, reason: str, now: float) -> None:
        self.out += self.ws.send(CloseConnection(code=code, reason=reason))
        self.state.stats.close_codes_sent[code] += 1
        self._go(PhaseEvent.SEND_CLOSE)
        self.deadline = now + self.state.config.close_timeout

    def _server_close(self, now: float) -> None:
        """``close_after`` / ``close_after_messages``: close, or terminate with FIN / RST."""
        config = self.state.config
        self.state.stats.server_initiated[config.close_action] += 1
        if config.close_action == "close":
            self._send_close(config.close_code, config.close_reason, now)
        else:
            self.rst = config.close_action == "rst"
            self._go(PhaseEvent.END)

    def _go(self, event: PhaseEvent) -> None:
        self.phase = next_phase(self.phase, event)

    def _close_after_elapsed(self, now: float) -> None:
        self.deadline = math.inf
        self._server_close(now)

    def _close_timed_out(self, now: float) -> None:
        """Our Close went unanswered for ``close_timeout``: drop TCP."""
        self.state.stats.close_timeouts += 1
        self._go(PhaseEvent.END)

    def _mute_elapsed(self, now: float) -> None:
        """A mute server held the unanswered Close for ``close_timeout``: drop TCP."""
        self.state.stats.mute_drops += 1
        self._go(PhaseEvent.END)

    def _drain_elapsed(self, now: float) -> None:
        self._go(PhaseEvent.END)


_ON_DEADLINE: dict[Phase, Callable[[ConnectionPolicy, float], None]] = {
    Phase.OPEN: ConnectionPolicy._close_after_elapsed,
    Phase.REPLY_DELAY: ConnectionPolicy._reply,
    Phase.SERVER_CLOSING: ConnectionPolicy._close_timed_out,
    Phase.MUTE: ConnectionPolicy._mute_elapsed,
    Phase.DRAIN: ConnectionPolicy._drain_elapsed,
}
"""What the timer of each waiting phase does when it fires (``finished`` has none)."""
