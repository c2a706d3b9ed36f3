"""Shutdown storms: the seeds' soft and hard sweeps, on command and on a timer.

Well-behaved clients (trio-websocket, ``websockets``) answer the storm's Close; stragglers are
raw clients that never answer (one reads and ignores frames, one never reads at all) and must be
terminated when the grace runs out.
"""

from __future__ import annotations

import pytest
import trio
import trio_websocket
import websockets
from server_clients import (
    OP_CLOSE,
    RawClient,
    Running,
    close_payload,
    frame,
    in_thread,
    running,
    trio_ws,
    until,
)
from timing import SLACK
from websockets.asyncio.client import connect as ws_connect

from wsload.scenario.model import ServerConfig


async def _trio_ws_client(target: Running, codes: list[int]) -> None:
    async with trio_ws(target) as ws:
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await ws.get_message()
        codes.append(closed.value.reason.code)


async def _websockets_client(target: Running, codes: list[int | None]) -> None:
    async def client() -> int | None:
        async with ws_connect(target.url, proxy=None, close_timeout=5) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            rcvd = ws.protocol.close_rcvd
            return rcvd.code if rcvd else None

    codes.append(await in_thread(client))


async def _straggler(target: Running, seen: list[tuple[int, float]]) -> None:
    """Reads the storm's Close, never answers; notes the code and when TCP went away."""
    raw = await RawClient.connect(target.host, target.port)
    try:
        close = await raw.expect_close(timeout=20)
        got = trio.current_time()
        await raw.expect_eof(timeout=20)
        seen.append((close.code, trio.current_time() - got))
    finally:
        raw.close()


async def test_soft_storm_closes_everyone_and_terminates_stragglers_after_grace() -> None:
    grace = 0.6
    trio_codes: list[int] = []
    ws_codes: list[int | None] = []
    stragglers: list[tuple[int, float]] = []
    with trio.fail_after(25):
        async with running(ServerConfig(shutdown_grace=grace)) as target:
            stats = target.server.stats
            silent = await RawClient.connect(target.host, target.port)  # never reads at all
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(_trio_ws_client, target, trio_codes)
                for _ in range(2):
                    nursery.start_soon(_websockets_client, target, ws_codes)
                for _ in range(2):
                    nursery.start_soon(_straggler, target, stragglers)
                await until(lambda: stats.open == 8, timeout=15)
                started = trio.current_time()
                await target.server.shutdown_storm()
                took = trio.current_time() - started
            assert grace <= took < grace + SLACK  # returns once the stragglers are gone
            assert trio_codes == [1001] * 3
            assert ws_codes == [1001] * 2
            assert [code for code, _ in stragglers] == [1001, 1001]
            assert all(grace - 0.1 <= waited < grace + SLACK for _, waited in stragglers)
            events = [await silent.next_event(), await silent.next_event()]
            assert [getattr(e, "code", None) for e in events] == [1001, None]  # Close, then EOF
            silent.close()
            assert stats.open == 0
            assert stats.storms == 1
            assert stats.storm_closed == 8
            assert stats.storm_terminated == 3
            assert dict(stats.close_codes_sent) == {1001: 8}
            assert dict(stats.close_codes_received) == {1001: 5, 1006: 3}
            assert stats.close_timeouts == 0

            # the server keeps serving after a storm (Node's sweeps do not stop the listener)
            async with trio_ws(target) as ws:
                await ws.send_message("still here")
                assert await ws.get_message() == "still here"


async def test_hard_storm_terminates_at_once() -> None:
    stragglers: list[tuple[int, float]] = []
    codes: list[int] = []
    with trio.fail_after(20):
        async with running() as target:
            stats = target.server.stats
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_trio_ws_client, target, codes)
                for _ in range(3):
                    nursery.start_soon(_straggler, target, stragglers)
                await until(lambda: stats.open == 4)
                started = trio.current_time()
                await target.server.shutdown_storm(code=1012, grace=0)
                assert trio.current_time() - started < SLACK
            assert codes == [1012]
            assert [code for code, _ in stragglers] == [1012] * 3
            assert all(waited < SLACK for _, waited in stragglers)  # Close and EOF together
            assert stats.storm_closed == 4
            assert stats.storm_terminated == 4  # hard: nobody gets to answer first
            assert stats.tcp_closed_first_by_server == 4


async def test_storm_terminates_connections_already_closing() -> None:
    """A connection in a mute close (server never answers) still goes when the grace ends."""
    config = ServerConfig(close_reply="never", close_timeout=30.0, shutdown_grace=0.4)
    with trio.fail_after(15):
        async with running(config) as target:
            stats = target.server.stats
            raw = await RawClient.connect(target.host, target.port)
            await raw.send(frame(OP_CLOSE, close_payload(1000)))
            await until(lambda: stats.close_codes_received[1000] == 1)
            started = trio.current_time()
            await target.server.shutdown_storm()
            assert 0.4 <= trio.current_time() - started < 0.4 + SLACK
            assert await raw.next_event() is None  # no Close: the client already sent one
            raw.close()
            assert stats.storm_closed == 0
            assert stats.storm_terminated == 1
            assert stats.mute_drops == 0


async def test_shutdown_after_starts_a_storm_on_its_own() -> None:
    config = ServerConfig(shutdown_after=0.5, shutdown_grace=0.3, shutdown_code=4100)
    codes: list[int] = []
    stragglers: list[tuple[int, float]] = []
    with trio.fail_after(15):
        started = trio.current_time()
        async with running(config) as target:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_trio_ws_client, target, codes)
                nursery.start_soon(_straggler, target, stragglers)
            took = trio.current_time() - started
            assert codes == [4100]
            assert [code for code, _ in stragglers] == [4100]
            assert 0.5 + 0.3 - 0.05 <= took < 0.5 + 0.3 + SLACK
            assert target.server.stats.storms == 1
            assert target.server.stats.storm_terminated == 1
