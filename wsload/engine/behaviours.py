"""The close behaviours of docs/design.md §3, one small coroutine each, behind one signature.

Each takes the upgraded :class:`~wsload.engine.link.Link` and its :class:`CloseSpec`, drives the
close, and returns what it observed that the close tracker cannot know by itself:
:class:`Ending` (a wait hit its deadline; wsload's stop cut the wait short; how to drop TCP).
The driver then closes the socket if it is still open and classifies
(:func:`wsload.core.closing.classify`). No behaviour ever raises for what the server does.
Every decision about the protocol (may a Close go out, which code answers the server's) is the
protocol object's (:class:`~wsload.core.protocol.ClientProtocol`); a behaviour writes what it
returns and waits, and every wait reads through :meth:`Link.pump`.

A storm's release may already have done a behaviour's first action
(:func:`~wsload.engine.link.release_storm`): each behaviour goes on from what the protocol
object recorded (a Close already sent is not sent again, a closed socket not closed again, the
close's start is the first one stamped).

Deadlines: ``clean`` and ``invalid_close`` bound the whole close by ``timeout`` from the moment
the close began. ``await_server_close`` and ``ignore_server_close`` bound each of their two
waits by ``timeout``: the wait for the server's Close (from the start of the behaviour) and the
wait for its TCP close (from the server's Close), so a server's own close timeout can be
measured even when its Close came late. A server-initiated Close is answered with its own code
and TCP EOF is awaited for ``timeout`` from that Close.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wsload.core.kinds import CloseKind
from wsload.engine.context import DriverContext
from wsload.engine.link import Link
from wsload.scenario.model import CloseSpec

__all__ = ["BEHAVIOURS", "Ending", "answer_server_close", "await_eof", "run_behaviour"]


@dataclass(slots=True, init=False)
class Ending:
    """How a close behaviour ended, beyond what the close tracker records.

    Attributes:
        timed_out: a wait reached its deadline (the socket is then force-closed).
        stopped: wsload's graceful stop cut the wait for the server's Close short.
        rst: drop TCP with RST (SO_LINGER 0) when the driver closes the socket.
    """

    timed_out: bool = False
    stopped: bool = False
    rst: bool = False

    def __init__(self, timed_out: bool = False, stopped: bool = False, rst: bool = False) -> None:
        # written out: see wsload.core.record.ConnectionRecord.__init__
        self.timed_out = timed_out
        self.stopped = stopped
        self.rst = rst


async def _wait_while(link: Link, deadline: float, waiting: Callable[[], bool]) -> bool:
    """Pump while ``waiting()`` and the link can still read; True when the deadline came first."""
    while waiting() and not link.ended:
        # the pump checks the deadline first: no bytes (False) and the deadline passed
        if not await link.pump(deadline) and link.now() >= deadline:
            return True
    return False


async def await_eof(link: Link, deadline: float) -> bool:
    """Wait for the server's TCP close; True when ``deadline`` came first."""
    return await _wait_while(link, deadline, lambda: True)


async def answer_server_close(link: Link, spec: CloseSpec) -> Ending:
    """Answer the server's Close with its own code (RFC 6455 §5.5.1) and wait for its EOF."""
    received = link.tracker.close_received
    assert received is not None
    deadline = received + spec.timeout
    await link.answer_close(deadline)
    return Ending(timed_out=await await_eof(link, deadline))


async def _clean(link: Link, spec: CloseSpec, start: float, now: float) -> Ending:
    """``clean`` from ``start`` (the close's start); ``now``: the clock read just before (no
    await since), which is also the instant of the Close's write."""
    deadline = start + spec.timeout
    if link.proto.can_send_close and not await link.send_close(
        spec.code, spec.reason, deadline, now
    ):
        return Ending(timed_out=not link.ended)
    return Ending(timed_out=await await_eof(link, deadline))


async def clean(link: Link, spec: CloseSpec, ctx: DriverContext) -> Ending:
    """Send Close(code, reason), await the peer's Close and then its TCP EOF, in ``timeout``."""
    now = link.now()
    return await _clean(link, spec, link.proto.start_close(now), now)


async def terminate(link: Link, spec: CloseSpec, ctx: DriverContext) -> Ending:
    """No Close frame: drop TCP now (FIN, or RST when ``rst``)."""
    link.proto.start_close(link.now())
    await link.close(rst=spec.rst)
    return Ending(rst=spec.rst)


async def close_no_wait(link: Link, spec: CloseSpec, ctx: DriverContext) -> Ending:
    """Send Close and drop TCP at once, without waiting for any answer."""
    now = link.now()
    start = link.proto.start_close(now)
    if link.proto.can_send_close:
        await link.send_close(spec.code, spec.reason, start + spec.timeout, now)
    await link.close(deadline=start + spec.timeout)
    return Ending()


async def _await_close(link: Link, spec: CloseSpec, ctx: DriverContext, send: bool) -> Ending:
    """Wait (wakeable by ``stop``) for the server's Close; maybe keep sending meanwhile.

    Keepalive goes on through the wait: ``session.ping_interval`` pings (their pongs are
    matched, ``ping_rtt``; a missing one does not end the wait) and, for
    ``await_server_close``, ``send_interval`` messages (``send_payload``, else the filler), so
    a proxy's or load balancer's idle timeout does not cut a connection waiting for a deploy.
    """
    t, proto = link.tracker, link.proto
    start = proto.start_close(link.now())
    deadline = start + spec.timeout
    every = spec.send_interval if send else 0.0
    next_send = start + every if every > 0 else math.inf
    pinging = ctx.session.ping_interval
    next_ping = start + pinging if pinging > 0 else math.inf
    stop = ctx.stop
    ctx.alarm.add(link)
    try:
        while t.close_received is None and not link.ended:
            if stop is not None and stop.is_set():
                return Ending(stopped=True)
            now = link.now()
            if now >= deadline:
                return Ending(timed_out=True)
            if now >= next_ping:
                frame, _ = proto.ping(now, ctx.session.message_timeout)
                await link.send(frame, deadline, now)
                next_ping = max(next_ping + pinging, now)
                continue
            if now >= next_send:
                payload = spec.send_payload
                if payload is None:
                    frame = proto.message(ctx.payload, binary=ctx.session.binary)
                else:
                    frame = proto.message(proto.render(payload))
                await link.send(frame, deadline, now)
                next_send = max(next_send + every, now)
                continue
            await link.pump(min(deadline, next_send, next_ping), now)
    finally:
        ctx.alarm.discard(link)
    return Ending()


async def await_server_close(link: Link, spec: CloseSpec, ctx: DriverContext) -> Ending:
    """Keep the connection until the server's Close; answer it; on timeout ``on_timeout``."""
    waited = await _await_close(link, spec, ctx, send=True)
    t = link.tracker
    if t.close_received is not None and not link.ended:
        return await answer_server_close(link, spec)
    if not (waited.timed_out or waited.stopped) or link.ended:
        return waited
    if spec.on_timeout == "terminate":
        await link.close(rst=spec.rst)
        return Ending(timed_out=waited.timed_out, stopped=waited.stopped, rst=spec.rst)
    now = link.now()
    fallback = await _clean(link, spec, now, now)
    return Ending(timed_out=waited.timed_out or fallback.timed_out, stopped=waited.stopped)


async def ignore_server_close(link: Link, spec: CloseSpec, ctx: DriverContext) -> Ending:
    """Wait for the server's Close, never answer, and time how long until it drops TCP."""
    waited = await _await_close(link, spec, ctx, send=False)
    if link.tracker.close_received is not None and not link.ended:
        return await ignore_after_close(link, spec)
    return waited


async def ignore_after_close(link: Link, spec: CloseSpec) -> Ending:
    """The server's Close is in: keep silent until it drops TCP (or ``timeout`` passes)."""
    received = link.tracker.close_received
    assert received is not None
    return Ending(timed_out=await await_eof(link, received + spec.timeout))


async def invalid_close_(link: Link, spec: CloseSpec, ctx: DriverContext) -> Ending:
    """Send the malformed Close of ``variant``; record the server's answer (or its silence)."""
    t = link.tracker
    now = link.now()
    deadline = link.proto.start_close(now) + spec.timeout
    if t.close_sent is None and not await link.send_invalid_close(spec.variant, deadline, now):
        return Ending(timed_out=not link.ended)
    if await _wait_while(link, deadline, lambda: t.close_received is None):
        return Ending(timed_out=True)  # no answer at all
    return Ending(timed_out=await await_eof(link, deadline))


Behaviour = Callable[[Link, CloseSpec, DriverContext], Awaitable[Ending]]

BEHAVIOURS: dict[CloseKind, Behaviour] = {
    CloseKind.CLEAN: clean,
    CloseKind.TERMINATE: terminate,
    CloseKind.CLOSE_NO_WAIT: close_no_wait,
    CloseKind.AWAIT_SERVER_CLOSE: await_server_close,
    CloseKind.IGNORE_SERVER_CLOSE: ignore_server_close,
    CloseKind.INVALID_CLOSE: invalid_close_,
}
"""Close kind -> behaviour; every kind of :data:`wsload.core.kinds.KINDS`."""


async def run_behaviour(link: Link, spec: CloseSpec, ctx: DriverContext) -> Ending:
    """Run ``spec``'s close on ``link``, or the answer to a Close the server already sent."""
    if link.tracker.close_received is not None:
        if spec.kind is CloseKind.IGNORE_SERVER_CLOSE:
            return await ignore_after_close(link, spec)
        return await answer_server_close(link, spec)
    return await BEHAVIOURS[spec.kind](link, spec, ctx)
