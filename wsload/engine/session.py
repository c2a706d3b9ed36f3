"""The session: a small interpreter of the script's steps, then the hold, in the connection's task.

Echo mode (``messages``, ``await_echo``, ...) is the built-in script
:func:`~wsload.core.script.echo_script`; ``[[session.steps]]`` replace it. Every wait is the
same loop (:meth:`_Session.wait`): send the background pings that are due (``ping_interval``;
the protocol object matches their pongs), and pump the link until the nearest deadline. A wait
ends early when the server closes, the link fails, or wsload's graceful stop is set; the
session then returns and the driver decides what comes next. A step that times out fails the
connection with ``message_timeout`` and a detail naming the step.
"""

from __future__ import annotations

import math

from wsload.core.outcomes import Outcome
from wsload.core.script import MESSAGE_RTT, Expect, Ping, Receive, Repeat, Send, Sleep, Step
from wsload.engine.context import DriverContext
from wsload.engine.link import Link

__all__ = ["run_session", "step_label"]

# what a wait waits for besides its deadline
_TIME, _MATCH, _INBOX, _PONG, _RELEASE = range(5)
_ACTIONS = {Send: "send", Expect: "expect", Receive: "receive", Sleep: "sleep", Ping: "ping"}


def step_label(index: int, step: Step) -> str:
    """How a detail names step ``index`` (1-based, in its list): its name, else ``3 (expect)``."""
    name = step.name if isinstance(step, Expect) else ""
    return name or f"{index} ({_ACTIONS[type(step)]})"


class _Interrupted(Exception):
    """The session cannot go on: the server closed, the link ended, a step failed, or stop."""


class _Session:
    """The state of one connection's script run (sends counted, pings in flight)."""

    __slots__ = (
        "ctx",
        "last_send",
        "link",
        "next_ping",
        "next_send",
        "proto",
        "sends",
        "timeout",
    )

    def __init__(self, link: Link, ctx: DriverContext, seq: int) -> None:
        self.link = link
        self.proto = link.proto
        self.ctx = ctx
        self.timeout = ctx.session.message_timeout
        self.sends = 0
        self.last_send: float | None = None
        self.next_send = -math.inf
        every = ctx.session.ping_interval
        self.next_ping = link.now() + every if every > 0 else math.inf

    def fail(self, detail: str) -> _Interrupted:
        self.proto.fail(Outcome.MESSAGE_TIMEOUT, detail)
        return _Interrupted()

    def check(self) -> None:
        """Raise when the session cannot go on."""
        stop = self.ctx.stop
        if self.proto.close_expected():
            raise _Interrupted
        if stop is not None and stop.is_set():
            raise _Interrupted

    async def send(self, frame: bytes, now: float) -> None:
        if not await self.link.send(frame, now + self.timeout, now):
            if not self.link.ended:
                raise self.fail(f"could not write within {self.timeout:g}s")
            raise _Interrupted

    async def wait(
        self, deadline: float, want: int, key: bytes = b"", now: float | None = None
    ) -> bool:
        """Pump until ``want`` holds (True) or ``deadline`` passes (False); pings meanwhile.

        ``now``: the caller's clock reading right before (no await since), used for the first
        round's deadline checks instead of reading the clock again.
        """
        link, proto = self.link, self.proto
        while True:
            self.check()
            if want == _MATCH:
                if proto.matched_at is not None:
                    return True
            elif want == _INBOX:
                if proto.inbox:
                    return True
            elif want == _PONG:
                if key not in proto.pings:
                    return True
            elif want == _RELEASE:
                release = self.ctx.release
                if release is not None and release.is_set():
                    return True
            if now is None:
                now = link.now()
            first_ping = proto.pong_due()
            if now >= first_ping:
                if want == _PONG and proto.pings.get(key, (0.0, 0.0))[1] == first_ping:
                    return False  # the ping step's own timeout: it names itself
                sent = min(sent for sent, due in proto.pings.values() if due == first_ping)
                link.censored.append(("ping_rtt", now - sent))  # its pong never came
                raise self.fail(f"no pong within {self.timeout:g}s")
            if now >= deadline:
                return False
            if now >= self.next_ping:
                await self.ping(now, self.timeout)
                self.next_ping = max(self.next_ping + self.ctx.session.ping_interval, now)
                now = None
                continue
            await link.pump(min(deadline, self.next_ping, first_ping), now)
            now = None

    async def ping(self, now: float, timeout: float) -> bytes:
        """Send one ping whose pong is due within ``timeout``; return its payload."""
        frame, data = self.proto.ping(now, timeout)
        await self.send(frame, now)
        return data

    async def run(self, steps: tuple[Step, ...], seq: int) -> None:
        proto = self.proto
        for index, step in enumerate(steps, 1):
            if not isinstance(step, Repeat):  # named by the Why table if the server closes
                proto.step = (index, step)
            if isinstance(step, Send):
                await self.run_send(step, seq)
            elif isinstance(step, Expect):
                await self.run_expect(step)
            elif isinstance(step, Repeat):
                await self.run_repeat(step, seq)
            elif isinstance(step, Receive):
                await self.run_receive(step)
            elif isinstance(step, Sleep):
                now = self.link.now()
                await self.wait(now + self.draw(step), _TIME, now=now)
            else:
                await self.run_ping(step)

    def draw(self, step: Sleep) -> float:
        """One draw of a sleep (fixed, or uniform between ``min`` and ``max``)."""
        return step.min if step.max <= step.min else self.ctx.rng.uniform(step.min, step.max)

    async def run_send(self, step: Send, seq: int) -> None:
        now = self.link.now
        if self.next_send > -math.inf and now() < self.next_send:
            await self.wait(self.next_send, _TIME)
        self.check()
        self.sends += 1
        template = step.template
        if template is None:
            payload = step.data
        else:
            proto = self.proto
            payload = template.render(seq, self.sends, proto.row, proto.variables)
        sent = now()
        await self.send(self.proto.message(payload, binary=step.binary), sent)
        self.last_send = sent  # stamped before the write, like every send (Link._write_close)
        # no pace: nothing to wait for (the clock never reads below this stamp again)
        self.next_send = sent + step.pace if step.pace > 0 else -math.inf

    async def run_expect(self, step: Expect) -> None:
        proto = self.proto
        start = self.link.now()
        proto.expect(step.matcher)
        try:
            await self.wait(start + step.timeout, _MATCH, now=start)
        finally:
            arrived = proto.take_match()
        if arrived is None:
            if step.metric:
                since = self.last_send if self.last_send is not None else start
                self.link.censored.append((step.metric, self.link.now() - since))
            if step.metric == MESSAGE_RTT:
                raise self.fail(f"no echo within {step.timeout:g}s")
            raise self.fail(f"no message matching step '{step.name}' within {step.timeout:g}s")
        if step.save:
            missing = proto.capture(step.save, proto.matched)
            if missing is not None:
                raise self.fail(
                    f"step '{step.name or 'expect'}': no {missing.spec} value for "
                    f"{{var:{missing.name}}} in the matching message"
                )
        if step.metric:
            since = self.last_send if self.last_send is not None else start
            # a message already waiting in the inbox when the step began took no time
            latency = max(0.0, arrived - since)
            if step.metric == MESSAGE_RTT:
                self.link.message_rtts.append(latency)
            else:
                self.link.step_latencies.append((step.metric, latency))

    async def run_receive(self, step: Receive) -> None:
        proto = self.proto
        start = self.link.now()
        if step.count is None:
            assert step.duration is not None
            await self.wait(start + step.duration, _TIME, now=start)
            proto.take_inbox(len(proto.inbox))
            return
        # from the inbox first: pushes right behind an awaited reply (maybe in the same read)
        # or during a sleep are this step's too
        got = proto.take_inbox(step.count)
        while got < step.count:
            if not await self.wait(start + step.timeout, _INBOX, now=start):
                raise self.fail(
                    f"received {got} of {step.count} messages (receive step) "
                    f"within {step.timeout:g}s"
                )
            got += proto.take_inbox(step.count - got)

    async def run_ping(self, step: Ping) -> None:
        now = self.link.now()
        key = await self.ping(now, step.timeout)
        if not await self.wait(now + step.timeout, _PONG, key):
            self.link.censored.append(("ping_rtt", self.link.now() - now))
            raise self.fail(f"no pong within {step.timeout:g}s (ping step)")

    async def run_repeat(self, step: Repeat, seq: int) -> None:
        if step.times is not None:
            for _ in range(step.times):
                await self.run(step.steps, seq)
            return
        assert step.duration is not None
        now = self.link.now
        end = now() + step.duration
        while now() < end:
            await self.run(step.steps, seq)

    async def hold(self, hold: float) -> None:
        """Hold the connection (still pinging and taking pushes) until its close is due."""
        ctx = self.ctx
        release = ctx.release
        if release is None:
            if hold <= 0 and not self.proto.pings:  # a wait would only see its deadline passed
                return
            now = self.link.now()
            await self.wait(now + hold, _TIME, now=now)
            return
        if release.is_set():
            return
        ctx.ready_count += 1
        self.link.park()  # the release may start this link's close (release_storm)
        try:
            await self.wait(math.inf, _RELEASE)
        finally:
            self.link.unpark()
            ctx.ready_count -= 1


async def run_session(link: Link, ctx: DriverContext, hold: float, seq: int = 1) -> None:
    """Run the script, then the hold, on ``link`` (open, upgraded); return when to close.

    Args:
        link: the upgraded connection.
        ctx: the run's context (the script, session settings, ``stop``/``release``).
        hold: seconds to hold after the script (ignored when ``ctx.release`` is set: then
            hold until it is set, counted in ``ctx.ready_count``).
        seq: the connection number (``{seq}`` in payloads).
    """
    session = _Session(link, ctx, seq)
    ctx.alarm.add(link)
    try:
        await session.run(ctx.script, seq)
        link.proto.step = None
        link.proto.close_inbox()
        await session.hold(hold)
    except _Interrupted:
        return
    finally:
        ctx.alarm.discard(link)
