"""Exact timings of the built-in server: in-memory streams under Trio's autojump clock.

Loopback tests prove the behaviours against real clients with tolerances; these prove the
numbers themselves (a 30 s close timeout is 30.000 s, a seeded random delay is exactly the
seed's draw) without waiting for them in real time.
"""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing
from server_clients import OP_CLOSE, OP_TEXT, close_payload, frame, request
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Event, TextMessage

from wsload.scenario.model import Delay, ServerConfig
from wsload.server.connection import REQUEST_TIMEOUT, SEND_TIMEOUT
from wsload.server.server import BuiltinServer

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
EXACT = 1e-9


class MemClient:
    """A by-hand client on one end of an in-memory stream pair."""

    def __init__(self, stream: trio.abc.HalfCloseableStream) -> None:
        self.stream = stream
        self.ws = Connection(ConnectionType.CLIENT)
        self.status = 0
        self.eof = False

    async def upgrade(self) -> None:
        await self.stream.send_all(request("127.0.0.1", 80, KEY))
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            data = await self.stream.receive_some()
            assert data, "EOF during the upgrade"
            buffer += data
        head, _, rest = buffer.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        if rest:
            self.ws.receive_data(rest)

    async def next_event(self) -> Event | None:
        while True:
            for event in self.ws.events():
                return event
            if self.eof:
                return None
            data = await self.stream.receive_some()
            if not data:
                self.eof = True
            else:
                self.ws.receive_data(data)


async def _pair(
    nursery: trio.Nursery, server: BuiltinServer, *, lockstep: bool = False
) -> MemClient:
    make = trio.testing.lockstep_stream_pair if lockstep else trio.testing.memory_stream_pair
    client_side, server_side = make()
    nursery.start_soon(server.handle_stream, server_side)
    return MemClient(client_side)


async def test_upgrade_delay_is_exact(autojump_clock: trio.testing.MockClock) -> None:
    server = BuiltinServer(ServerConfig(upgrade_delay=Delay(0.25, 0.25)))
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            client = await _pair(nursery, server)
            started = trio.current_time()
            await client.upgrade()
            assert client.status == 101
            assert trio.current_time() - started == pytest.approx(0.25, abs=EXACT)
            await client.stream.aclose()


async def test_seeded_random_reply_delay_is_the_seeds_draw(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seed = 42
    expected = random.Random(f"{seed}/delay").uniform(0.1, 0.5)
    server = BuiltinServer(ServerConfig(close_reply_delay=Delay(0.1, 0.5)), seed=seed)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            client = await _pair(nursery, server)
            await client.upgrade()
            await client.stream.send_all(frame(OP_CLOSE, close_payload(4321)))
            sent = trio.current_time()
            close = await client.next_event()
            assert isinstance(close, CloseConnection) and close.code == 4321
            assert trio.current_time() - sent == pytest.approx(expected, abs=EXACT)
            assert await client.next_event() is None  # the server closes TCP right after
            await client.stream.aclose()
    assert server.stats.tcp_closed_first_by_server == 1


async def test_mute_server_holds_exactly_its_default_30s(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = BuiltinServer(ServerConfig(close_reply="never"))
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            client = await _pair(nursery, server)
            await client.upgrade()
            await client.stream.send_all(frame(OP_CLOSE, close_payload(1000)))
            sent = trio.current_time()
            assert await client.next_event() is None
            assert trio.current_time() - sent == pytest.approx(30.0, abs=EXACT)
            await client.stream.aclose()
    assert server.stats.mute_drops == 1


async def test_close_after_then_default_close_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = BuiltinServer(ServerConfig(close_after=2.0, close_code=4000))
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            client = await _pair(nursery, server)
            await client.upgrade()
            opened = trio.current_time()
            await client.stream.send_all(frame(OP_TEXT, b"hi"))
            assert await client.next_event() == TextMessage(data="hi")
            close = await client.next_event()
            assert isinstance(close, CloseConnection) and close.code == 4000
            assert trio.current_time() - opened == pytest.approx(2.0, abs=EXACT)
            assert await client.next_event() is None  # never answered: dropped 30 s later
            assert trio.current_time() - opened == pytest.approx(32.0, abs=EXACT)
            await client.stream.aclose()
    stats = server.stats
    assert stats.close_timeouts == 1
    assert dict(stats.server_initiated) == {"close": 1}
    assert dict(stats.close_codes_received) == {1006: 1}


async def test_storm_default_grace_is_exact(autojump_clock: trio.testing.MockClock) -> None:
    server = BuiltinServer(ServerConfig())
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            polite = await _pair(nursery, server)
            mute = await _pair(nursery, server)
            await polite.upgrade()
            await mute.upgrade()
            started = trio.current_time()
            async with trio.open_nursery() as storm:
                storm.start_soon(server.shutdown_storm)
                for client in (polite, mute):
                    close = await client.next_event()
                    assert isinstance(close, CloseConnection) and close.code == 1001
                assert trio.current_time() == pytest.approx(started, abs=EXACT)
                await polite.stream.send_all(frame(OP_CLOSE, close_payload(1001)))
                assert await polite.next_event() is None
                assert trio.current_time() == pytest.approx(started, abs=EXACT)
                assert await mute.next_event() is None
                assert trio.current_time() - started == pytest.approx(10.0, abs=EXACT)
            assert trio.current_time() - started == pytest.approx(10.0, abs=EXACT)
            for client in (polite, mute):
                await client.stream.aclose()
    assert (server.stats.storm_closed, server.stats.storm_terminated) == (2, 1)


async def test_request_timeout(autojump_clock: trio.testing.MockClock) -> None:
    server = BuiltinServer(ServerConfig())
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            client = await _pair(nursery, server)
            await client.stream.send_all(b"GET / HTTP/1.1\r\n")
            started = trio.current_time()
            assert await client.stream.receive_some() == b""
            assert trio.current_time() - started == pytest.approx(REQUEST_TIMEOUT, abs=EXACT)
            await client.stream.aclose()
    assert dict(server.stats.upgrade_failures) == {"timeout": 1}


async def test_client_that_stops_reading_is_dropped_after_send_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = BuiltinServer(ServerConfig())
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            client = await _pair(nursery, server, lockstep=True)
            await client.upgrade()
            await client.stream.send_all(frame(OP_TEXT, b"echo me"))
            sent = trio.current_time()
            await trio.sleep(SEND_TIMEOUT + 1)  # not reading: the echo cannot be delivered
            assert server.stats.send_timeouts == 1
            assert server.stats.open == 0
            assert trio.current_time() - sent == pytest.approx(SEND_TIMEOUT + 1, abs=EXACT)
            await client.stream.aclose()
