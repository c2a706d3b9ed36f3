"""Server-first messages, reply rules, captures, keepalive in close waits and the step named
when the server closes mid-script: the driver over memory streams with the autojump clock.

The server end is scripted byte by byte (``peers.RawPeer``); client frames are decoded by hand.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from peers import CLEAN, RawPeer, run_scripted, server_frame

from wsload.core.capture import Capture
from wsload.core.matching import Matcher
from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.core.script import Expect, Receive, Rule, Send, Sleep, Step
from wsload.core.templates import Template
from wsload.scenario.model import CloseSpec, Delay, SessionConfig

HELLO = Expect(Matcher.build("equals", "hello"), 1.0, "hello", "step.hello")


async def run(
    nursery: trio.Nursery,
    server: Any,
    steps: tuple[Step, ...],
    spec: CloseSpec = CLEAN,
    **session: Any,
) -> ConnectionRecord:
    return await run_scripted(
        nursery, server, spec, session=SessionConfig(steps=steps, **session), seq=7
    )


async def answered(peer: RawPeer, seen: list[tuple[int, bytes]]) -> None:
    """After the server's Close: read the client's frames until its Close, then drop TCP."""
    while (frame := await peer.frame()) is not None:
        seen.append(frame)
        if frame[0] == 0x8:
            break
    await peer.aclose()


@pytest.mark.parametrize("where", ["with the 101", "during a sleep", "before a receive"])
async def test_a_greeting_the_server_sends_first_is_not_lost(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, where: str
) -> None:
    async def server(peer: RawPeer) -> None:
        hello = server_frame(0x1, b"noise") + server_frame(0x1, b"hello")
        if where == "with the 101":
            await peer.accept(then=hello)
        else:
            await peer.accept()
            await trio.sleep(0.1)
            await peer.send(hello + server_frame(0x1, b"more"))
        await peer.answer_close()

    steps: tuple[Step, ...] = (Sleep(0.5, 0.5), HELLO)
    if where == "before a receive":  # the receive takes "noise", the expect then "hello"
        steps = (Sleep(0.5, 0.5), Receive(count=1, duration=None, timeout=1.0), HELLO)
    r = await run(nursery, server, steps)
    assert (r.outcome, r.detail) == (Outcome.CLEAN, "")
    unmatched = 0 if where == "before a receive" else 1  # "noise", skipped by the expect
    assert (r.messages_unmatched, r.inbox_overflow) == (unmatched, 0)
    # no send before it, and it was waiting when the step began: 0
    assert r.step_latencies == (("step.hello", 0.0),)


async def test_rules_answer_pings_in_the_session_the_hold_and_the_close_wait(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    seen: list[tuple[int, bytes]] = []

    async def server(peer: RawPeer) -> None:
        await peer.accept(then=server_frame(0x1, b'0{"sid":"abc","pingInterval":100}'))
        for _ in range(6):  # Socket.IO's heartbeat: "2", the client must answer "3"
            await peer.send(server_frame(0x1, b"2"))
            frame = await peer.frame()
            assert frame is not None
            seen.append(frame)
            await trio.sleep(0.5)
        await peer.send_close(1001, "going away")
        await answered(peer, seen)

    rules = (Rule(Matcher.build("equals", "2"), send=Template.compile("3 {var:sid}")),)
    r = await run(
        nursery,
        server,
        (Expect(Matcher.build("regex", "^0"), 1.0, "open", "", ()),),
        CloseSpec(kind="await_server_close", label="deploy", timeout=10.0),
        on=rules,
        hold=Delay(1.0, 1.0),
    )
    assert r.outcome is Outcome.SERVER_CLOSED
    assert r.messages_auto_replied == 6
    assert seen[:6] == [(0x1, b"3 ")] * 6  # sid never captured here: empty
    assert r.code_received == 1001 and r.code_sent == 1001


async def test_captures_fill_later_sends_and_a_missing_one_fails_the_step(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    seen: list[tuple[int, bytes]] = []
    secret = b"tok-1234567"

    async def server(peer: RawPeer) -> None:
        await peer.accept(then=server_frame(0x1, b'0{"sid":"S-9","n":[1,{"t":"' + secret + b'"}]}'))
        await peer.answer_close(seen)

    save = (Capture.build("sid", 'regex:"sid":"([^"]+)"'), Capture.build("t", "json:x"))
    r = await run(
        nursery,
        server,
        (Expect(Matcher.build("any"), 1.0, "open", "", save),),
    )
    assert r.outcome is Outcome.MESSAGE_TIMEOUT
    assert r.detail == "step 'open': no json:x value for {var:t} in the matching message"

    async def server2(peer: RawPeer) -> None:
        await peer.accept(then=server_frame(0x1, b'{"sid":"S-9","n":[1,{"t":"' + secret + b'"}]}'))
        await peer.answer_close(seen)

    save = (Capture.build("sid", "json:sid"), Capture.build("t", "json:n.1.t"))
    r = await run(
        nursery,
        server2,
        (
            Expect(Matcher.build("any"), 1.0, "open", "", save),
            Send(Template.compile("40{var:sid}/{var:t}")),
            Expect(Matcher.build("equals", "never"), 0.5, "reply", ""),
        ),
    )
    assert seen == [(0x1, b"40S-9/" + secret)]  # a failed step closes without a Close
    assert r.outcome is Outcome.MESSAGE_TIMEOUT
    assert "tok-" not in r.detail


async def test_a_server_close_mid_script_names_the_step(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def server(peer: RawPeer) -> None:
        await peer.accept()
        await peer.frame()
        await peer.send_close(1001, "going away")
        await answered(peer, [])

    steps = (
        Send(Template.compile("subscribe")),
        Expect(Matcher.build("equals", "ok"), 5.0, "subscribe", "step.subscribe"),
    )
    r = await run(nursery, server, steps)
    assert r.outcome is Outcome.SERVER_CLOSED
    assert r.detail == "server closed 1001 'going away' during step 'subscribe'"
    r = await run(nursery, server, (Send(Template.compile("x")), Sleep(5.0, 5.0)))
    assert r.detail == "server closed 1001 'going away' during step '2 (sleep)'"


async def test_keepalive_pings_through_the_wait_for_the_servers_close(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    pings: list[float] = []

    async def server(peer: RawPeer) -> None:
        await peer.accept()
        t0 = trio.current_time()
        with trio.move_on_after(10.0):
            while (frame := await peer.frame()) is not None:
                if frame[0] == 0x9:
                    pings.append(round(trio.current_time() - t0, 6))
                    await peer.send(server_frame(0xA, frame[1]))
        await peer.send_close(1001, "deploy")
        await answered(peer, [])

    spec = CloseSpec(
        kind="await_server_close",
        label="deploy",
        timeout=30.0,
        send_interval=4.0,
        send_payload=Template.compile("2"),
    )
    r = await run(nursery, server, (Send(Template.compile("hi")),), spec, ping_interval=2.0)
    assert r.outcome is Outcome.SERVER_CLOSED
    assert pings == [2.0, 4.0, 6.0, 8.0]  # session pings end with the script; the wait's go on
    assert len(r.ping_rtts) == 4
    assert r.messages_sent == 1 + 2  # "hi", then "2" at 4 s and 8 s
