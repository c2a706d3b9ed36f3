"""The step interpreter over memory streams with the autojump clock: exact step latencies.

The server end is scripted byte by byte (``peers.RawPeer``); the scripts here are built as the
parser builds them (``wsload.core.script``), so these tests pin the interpreter, and
tests/cli/test_scenario_steps.py pins the parsing.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
import trio
import trio.testing
from peers import CLEAN, RawPeer, run_scripted, server_frame

from wsload.core.matching import Matcher
from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.core.script import Expect, Ping, Receive, Repeat, Send, Sleep, Step
from wsload.core.templates import Template
from wsload.scenario.model import CloseSpec, Delay, SessionConfig


def approx(value: object) -> Any:
    return pytest.approx(value, abs=1e-9)


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


SUBSCRIBE = (
    Send(Template.compile('{"op":"subscribe","topic":"room-{seq}","n":{step}}')),
    Expect(Matcher.build("json", {"op": "subscribed"}), 5.0, "subscribe", "step.subscribe"),
    Receive(count=3, duration=None, timeout=5.0),
    Send(Template.compile('{"op":"bye"}')),
)


async def test_subscribe_ack_pushes_exact_latency_and_counters(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    got: list[Any] = []

    async def server(peer: RawPeer) -> None:
        await peer.accept()
        frame = await peer.frame()
        assert frame is not None
        got.append(json.loads(frame[1]))
        await trio.sleep(0.2)
        await peer.send(server_frame(0x1, b'{"op":"other"}'))  # unmatched, skipped
        await trio.sleep(0.05)
        await peer.send(server_frame(0x1, b'{"op":"subscribed","id":1}'))
        for _ in range(3):
            await trio.sleep(0.1)
            await peer.send(server_frame(0x1, b'{"op":"push"}'))
        got.extend(await peer.answer_close())

    t0 = trio.current_time()
    r = await run(nursery, server, SUBSCRIBE)
    assert r.outcome is Outcome.CLEAN
    assert got[0] == {"op": "subscribe", "topic": "room-7", "n": 1}
    assert got[1] == (0x1, b'{"op":"bye"}')
    assert r.step_latencies == (("step.subscribe", approx(0.25)),)
    assert r.push_intervals == (approx(0.15), approx(0.1), approx(0.1))  # the match is no push
    assert (r.messages_sent, r.messages_received, r.messages_unmatched) == (2, 5, 1)
    assert r.bytes_received == 14 + 26 + 3 * 13
    assert r.close_initiated == approx(t0 + 0.55)


async def test_expect_timeout_names_the_step(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def server(peer: RawPeer) -> None:
        await peer.accept()
        await peer.answer_close()

    t0 = trio.current_time()
    r = await run(nursery, server, SUBSCRIBE)
    assert r.outcome is Outcome.MESSAGE_TIMEOUT
    assert r.detail == "no message matching step 'subscribe' within 5s"
    assert r.socket_closed == approx(t0 + 5.0)
    assert r.censored == (("step.subscribe", approx(5.0)),)  # counted as longer, not dropped


async def test_receive_count_timeout_says_how_many_came(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def server(peer: RawPeer) -> None:
        await peer.accept(then=server_frame(0x1, b"one"))
        await peer.answer_close()

    r = await run(nursery, server, (Receive(count=2, duration=None, timeout=1.5),))
    assert r.outcome is Outcome.MESSAGE_TIMEOUT
    assert r.detail == "received 1 of 2 messages (receive step) within 1.5s"


async def test_repeat_sleep_and_ping_steps(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    sent: list[tuple[float, bytes]] = []

    async def server(peer: RawPeer) -> None:
        await peer.accept()
        while (frame := await peer.frame()) is not None:
            if frame[0] == 0x9:
                await trio.sleep(0.03)
                await peer.send(server_frame(0xA, frame[1]))
            elif frame[0] == 0x1:
                sent.append((trio.current_time(), frame[1]))
            elif frame[0] == 0x8:
                await peer.send(server_frame(0x8, frame[1][:2]))
                await peer.aclose()
                return

    t0 = trio.current_time()
    steps = (
        Repeat((Send(Template.compile("m{step}")), Sleep(1.0, 1.0)), times=3),
        Ping(2.0),
    )
    r = await run(nursery, server, steps)
    assert r.outcome is Outcome.CLEAN
    assert sent == [(approx(t0 + i), f"m{i + 1}".encode()) for i in range(3)]
    assert r.ping_rtts == (approx(0.03),)
    assert r.close_initiated == approx(t0 + 3.03)


async def test_repeat_for_a_duration(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def server(peer: RawPeer) -> None:
        await peer.accept()
        frames = await peer.answer_close()
        assert [f[1] for f in frames if f[0] == 0x1] == [b"x"] * 4

    steps = (Repeat((Send(Template.compile("x")), Sleep(0.25, 0.25)), duration=1.0),)
    r = await run(nursery, server, steps)
    assert r.outcome is Outcome.CLEAN
    assert r.messages_sent == 4


async def test_message_in_the_same_read_as_the_101_is_reflected(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    reflected: list[tuple[int, bytes]] = []

    async def server(peer: RawPeer) -> None:
        await peer.accept(then=server_frame(0x1, b"early"))
        reflected.extend(await peer.answer_close())

    r = await run(nursery, server, (), reflect=True, hold=Delay(0.5, 0.5), messages=0)
    assert r.outcome is Outcome.CLEAN
    assert reflected[0] == (0x1, b"early")
    assert r.messages_received == 1 and r.messages_sent == 1


async def test_reflection_stays_on_while_await_server_close_waits(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    seen: list[tuple[int, bytes]] = []

    async def server(peer: RawPeer) -> None:
        await peer.accept()
        await trio.sleep(1.0)  # the session is over: the behaviour waits for our Close
        await peer.send(server_frame(0x1, b"late push"))
        frame = await peer.frame()
        assert frame is not None
        seen.append(frame)
        await peer.send(server_frame(0x8, struct.pack("!H", 4000)))
        answer = await peer.frame()
        assert answer is not None
        seen.append(answer)
        await peer.aclose()

    spec = CloseSpec(kind="await_server_close", label="await", timeout=5.0)
    r = await run(nursery, server, (), spec, reflect=True, messages=0)
    assert r.outcome is Outcome.SERVER_CLOSED
    assert seen == [(0x1, b"late push"), (0x8, struct.pack("!H", 4000))]
    assert (r.code_received, r.messages_received) == (4000, 1)


async def test_pushes_during_the_close_are_counted(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def server(peer: RawPeer) -> None:
        await peer.accept()
        frame = await peer.frame()
        assert frame is not None and frame[0] == 0x8
        await peer.send(server_frame(0x1, b"a") + server_frame(0x1, b"b"))
        await peer.send(server_frame(0x8, frame[1][:2]))
        await peer.aclose()

    r = await run(nursery, server, (), messages=0)
    assert r.outcome is Outcome.CLEAN
    assert r.messages_received == 2


async def test_a_ping_step_times_out_on_its_own_timeout(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def server(peer: RawPeer) -> None:  # never answers pings
        await peer.accept()
        await peer.answer_close()

    t0 = trio.current_time()
    r = await run(nursery, server, (Ping(0.5),), message_timeout=3.0, ping_interval=0.2)
    assert r.outcome is Outcome.MESSAGE_TIMEOUT
    assert (r.detail, r.socket_closed) == ("no pong within 0.5s (ping step)", approx(t0 + 0.5))
