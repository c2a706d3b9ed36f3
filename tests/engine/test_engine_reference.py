"""The trio-websocket reference engine: what it can do, and that its limits show in the record."""

from __future__ import annotations

import socket
from functools import partial

import pytest
import trio
import trio_websocket
from peers import RawPeer, start_trio_websocket
from timing import SLACK

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.reference import REFERENCE_KINDS, run_connection_reference
from wsload.scenario.model import CloseSpec, Delay, SessionConfig, TargetConfig

QUIET = SessionConfig(messages=0)


async def run(url: str, close: CloseSpec, session: SessionConfig = QUIET) -> ConnectionRecord:
    ctx = DriverContext.create(TargetConfig(engine="trio-websocket"), session, url)
    with trio.fail_after(10):
        return await run_connection_reference(ConnectionPlan(1, trio.current_time(), close), ctx)


def spec(kind: str, **kwargs: object) -> CloseSpec:
    return CloseSpec(kind=kind, label=kind, **kwargs)  # type: ignore[arg-type]


async def test_clean_against_trio_websocket(nursery: trio.Nursery) -> None:
    port = await start_trio_websocket(nursery)
    session = SessionConfig(messages=3)
    r = await run(f"ws://127.0.0.1:{port}/echo", spec("clean", code=4000, reason="x"), session)
    assert r.outcome is Outcome.CLEAN, r
    assert (r.code_sent, r.code_received) == (4000, 4000)
    assert len(r.message_rtts) == 3
    assert r.eof is None and r.tcp_closed_first is Side.CLIENT  # the limit, made visible
    assert "no server EOF" in r.detail


@pytest.mark.parametrize("rst", [False, True])
async def test_terminate_closes_the_stream(nursery: trio.Nursery, rst: bool) -> None:
    ends: list[str] = []

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept()
        try:
            ends.append("fin" if await stream.receive_some(10) == b"" else "data")
        except trio.BrokenResourceError:
            ends.append("rst")
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    r = await run(f"ws://127.0.0.1:{port}/", spec("terminate", rst=rst))
    assert r.outcome is Outcome.TERMINATED, r
    with trio.fail_after(5):
        while not ends:
            await trio.sleep(0.01)
    assert ends == ["rst" if rst else "fin"]


async def test_unanswered_close_is_bounded_by_our_timeout(nursery: trio.Nursery) -> None:
    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept()
        await peer.frames_until_eof()  # never answers the Close
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    r = await run(f"ws://127.0.0.1:{port}/", spec("clean", timeout=0.3))
    assert r.outcome is Outcome.CLOSE_TIMEOUT, r
    assert r.close_initiated is not None and r.socket_closed is not None
    assert 0.3 - 0.15 <= r.socket_closed - r.close_initiated < 0.3 + SLACK


async def test_server_close_during_hold(nursery: trio.Nursery) -> None:
    port = await start_trio_websocket(nursery)
    session = SessionConfig(messages=0, hold=Delay(0.5, 0.5))
    r = await run(f"ws://127.0.0.1:{port}/close?after=50&code=4005", spec("clean"), session)
    assert r.outcome is Outcome.SERVER_CLOSED, r
    assert r.code_received == 4005


async def test_rejected_and_refused(nursery: trio.Nursery) -> None:
    async def reject(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(503)

    server = await nursery.start(
        partial(trio_websocket.serve_websocket, reject, "127.0.0.1", 0, None)
    )
    r = await run(f"ws://127.0.0.1:{server.port}/", spec("clean"))
    assert r.outcome is Outcome.HANDSHAKE_REJECTED, r
    assert r.http_status == 503
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    r = await run(f"ws://127.0.0.1:{free}/", spec("clean"))
    assert r.outcome is Outcome.REFUSED, r


async def test_other_kinds_are_refused() -> None:
    assert REFERENCE_KINDS == ("clean", "terminate")
    with pytest.raises(ValueError, match="ignore_server_close"):
        await run("ws://127.0.0.1:9/", spec("ignore_server_close"))
