"""The session: data messages with echo RTTs, pings with pong RTTs, reflect, then the hold.

All of it in the connection's one task: each turn sends what is due, then pumps the link until
the nearest deadline (next message, next ping, an echo or pong timeout, the end of the hold).
The session ends early when the server closes, the link fails, or wsload's graceful stop is set;
the driver then decides what comes next.
"""

from __future__ import annotations

import math

import trio

from wsload.core.frames import OP_BINARY, OP_PING, OP_TEXT, encode_frame
from wsload.core.outcomes import Outcome
from wsload.engine.context import DriverContext
from wsload.engine.link import Link

__all__ = ["run_session"]


def _timeout(link: Link, what: str, seconds: float) -> None:
    if link.failure is None:
        link.failure = (Outcome.MESSAGE_TIMEOUT, f"no {what} within {seconds:g}s")


async def run_session(link: Link, ctx: DriverContext, hold: float) -> None:
    """Run the session on ``link`` (open, upgraded) and return when its close should start.

    Args:
        link: the upgraded connection.
        ctx: the run's context (session settings, payload, ``stop``/``release``).
        hold: seconds to hold after the last message (ignored when ``ctx.release`` is set:
            then hold until it is set, counted in ``ctx.ready_count``).
    """
    s = ctx.session
    stop, release = ctx.stop, ctx.release
    timeout = s.message_timeout
    opcode = OP_BINARY if s.binary else OP_TEXT
    payload = ctx.payload
    remaining = s.messages
    now = trio.current_time()
    next_message = now
    awaiting: float | None = None  # send time of the message whose echo is awaited
    ping_every = s.ping_interval
    next_ping = now + ping_every if ping_every > 0 else math.inf
    pings: dict[bytes, float] = {}
    ping_count = 0
    hold_end: float | None = None
    parked = False
    link.reflect = s.reflect
    ctx.alarm.add(link)
    try:
        while not link.ended and link.tracker.close_received is None:
            if stop is not None and stop.is_set():
                return
            now = trio.current_time()
            if link.echo_at is not None and awaiting is not None:
                link.message_rtts.append(link.echo_at - awaiting)
                awaiting = link.echo_at = None
            if link.pongs:
                for data, arrived in link.pongs:
                    sent = pings.pop(data, None)
                    if sent is not None:
                        link.ping_rtts.append(arrived - sent)
                link.pongs.clear()
            if awaiting is not None and now >= awaiting + timeout:
                return _timeout(link, "echo", timeout)
            if pings and now >= min(pings.values()) + timeout:
                return _timeout(link, "pong", timeout)
            if remaining and awaiting is None and now >= next_message:
                link.expect_echo = s.await_echo
                frame = (  # inline, not link.message_frame(): no extra call when plain
                    encode_frame(opcode, payload)
                    if link.deflate is None
                    else link.deflate.message_frame(opcode, payload)
                )
                if not await link.send(frame, now + timeout):
                    return _write_failed(link, timeout)
                remaining -= 1
                next_message = now + s.message_interval
                if s.await_echo:
                    awaiting = now
                continue
            if now >= next_ping:
                ping_count += 1
                data = ping_count.to_bytes(8, "big")
                if not await link.send(encode_frame(OP_PING, data), now + timeout):
                    return _write_failed(link, timeout)
                pings[data] = now
                next_ping = max(next_ping + ping_every, now)
                continue
            deadline = min(next_ping, min(pings.values()) + timeout if pings else math.inf)
            if awaiting is not None:
                deadline = min(deadline, awaiting + timeout)
            elif remaining:
                deadline = min(deadline, next_message)
            elif release is not None:
                if release.is_set():
                    return
                if not parked:
                    parked = True
                    ctx.ready_count += 1
            else:
                if hold_end is None:
                    hold_end = now + hold
                if now >= hold_end:
                    return
                deadline = min(deadline, hold_end)
            await link.pump(deadline)
    finally:
        ctx.alarm.discard(link)
        if parked:
            ctx.ready_count -= 1
        link.reflect = link.expect_echo = False


def _write_failed(link: Link, timeout: float) -> None:
    """A session write failed: a reset (already recorded) or a peer that stopped reading."""
    if not link.ended:
        link.failure = (Outcome.MESSAGE_TIMEOUT, f"could not write within {timeout:g}s")
