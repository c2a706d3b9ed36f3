"""``wsload.server.child``: the built-in server in a real child process, driven over its pipe.

The one child-server loop behind a run's ``url = "builtin"`` target and ``wsload serve
--processes N``: readiness, a storm on command, statistics on stop, a clear error when it
cannot listen, and a child that stops by itself when its parent's end of the pipe closes.
"""

from __future__ import annotations

import socket

import pytest
import trio
import trio_websocket

from wsload.errors import ToolError
from wsload.scenario.model import ServerConfig
from wsload.server.child import ServerChild

START = 60.0  # spawning a Python child on a loaded 2-core machine takes seconds, not minutes


async def _started(child: ServerChild) -> tuple[str, int]:
    await trio.to_thread.run_sync(child.start)
    return await trio.to_thread.run_sync(child.ready, START)


async def test_a_child_serves_storms_on_command_and_reports_its_statistics() -> None:
    child = ServerChild(ServerConfig(shutdown_code=4001), seed=3)
    try:
        host, port = await _started(child)
        # our own stream: trio-websocket leaves its socket open when the server closes first
        stream = await trio.open_tcp_stream(host, port)
        async with stream, trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(nursery, stream, host, "/")
            child.send("storm")
            with trio.fail_after(START), pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await ws.get_message()
            nursery.cancel_scope.cancel()
        assert closed.value.reason.code == 4001
        child.send("stop")
        stats = await trio.to_thread.run_sync(child.stats, START)
    finally:
        await trio.to_thread.run_sync(child.reap)
    assert stats is not None
    assert stats["connections_accepted"] == 1
    assert stats["storms"] == 1
    assert child.process.exitcode == 0


async def test_a_child_that_cannot_listen_says_why() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        child = ServerChild(ServerConfig(), port=taken.getsockname()[1])
        try:
            with pytest.raises(ToolError, match="the built-in server did not start: cannot listen"):
                await _started(child)
        finally:
            await trio.to_thread.run_sync(child.reap)
    assert child.process.exitcode == 0  # it reported the error and exited, nobody killed it


async def test_a_child_whose_parent_end_closes_stops_by_itself() -> None:
    child = ServerChild(ServerConfig())
    await _started(child)
    await trio.to_thread.run_sync(child.reap, START)  # no "stop": the pipe's EOF stops it
    assert child.process.exitcode == 0  # exited on its own within the wait, not killed


async def test_a_child_that_dies_before_it_is_ready_is_reported_at_once() -> None:
    child = ServerChild(ServerConfig())
    try:
        await trio.to_thread.run_sync(child.start)
        child.process.kill()  # microseconds after the spawn: long before it imported anything
        with pytest.raises(ToolError, match=r"exited before it was ready \(status -9\)"):
            await trio.to_thread.run_sync(child.ready, START)
    finally:
        await trio.to_thread.run_sync(child.reap)
