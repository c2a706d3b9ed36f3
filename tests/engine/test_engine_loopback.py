"""Every close kind over real loopback sockets against three independent WebSocket servers.

trio-websocket (in this Trio run), websockets 17 (asyncio, in a thread) and Node ``ws`` 8 (a child
process; ``@pytest.mark.node``, skipped with the reason when node/npm are missing). Servers wait
0.5 s (Python peers) or 2 s (Node ``closeTimeout``) for the client's answer to their Close.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial

import pytest
import trio
import trio.testing
from peers import NodePeer, RawPeer, WebsocketsPeer, node_skip_reason, start_trio_websocket
from timing import SLACK

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.driver import run_connection
from wsload.scenario.model import INVALID_VARIANTS, CloseSpec, Delay, SessionConfig, TargetConfig

PYTHON_CLOSE_TIMEOUT = 0.5
NODE_CLOSE_TIMEOUT = 2.0
DEFAULT_SESSION = SessionConfig()
DEFAULT_TARGET = TargetConfig()


@dataclass(frozen=True)
class Peer:
    name: str
    port: int | None  # None: trio-websocket, started in the test's own Trio run
    close_timeout: float


@pytest.fixture(scope="module")
def websockets_peer() -> Iterator[WebsocketsPeer]:
    with WebsocketsPeer(close_timeout=PYTHON_CLOSE_TIMEOUT) as peer:
        yield peer


@pytest.fixture(scope="module")
def node_peer() -> Iterator[NodePeer]:
    reason = node_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with NodePeer(close_timeout=NODE_CLOSE_TIMEOUT) as peer:
        yield peer


@pytest.fixture(
    params=["trio-websocket", "websockets", pytest.param("node", marks=pytest.mark.node)]
)
def peer(request: pytest.FixtureRequest) -> Peer:
    if request.param == "websockets":
        port = request.getfixturevalue("websockets_peer").port
        return Peer("websockets", port, PYTHON_CLOSE_TIMEOUT)
    if request.param == "node":
        return Peer("node", request.getfixturevalue("node_peer").port, NODE_CLOSE_TIMEOUT)
    return Peer("trio-websocket", None, PYTHON_CLOSE_TIMEOUT)


async def base_url(peer: Peer, nursery: trio.Nursery) -> str:
    port = peer.port
    if port is None:
        port = await start_trio_websocket(nursery, close_timeout=peer.close_timeout)
    return f"ws://127.0.0.1:{port}"


async def run(
    url: str,
    close: CloseSpec,
    session: SessionConfig = DEFAULT_SESSION,
    target: TargetConfig = DEFAULT_TARGET,
    seq: int = 1,
) -> ConnectionRecord:
    ctx = DriverContext.create(target, session, url)
    with trio.fail_after(15):
        return await run_connection(ConnectionPlan(seq, trio.current_time(), close), ctx)


def spec(kind: str, **kwargs: object) -> CloseSpec:
    return CloseSpec(kind=kind, label=kind, **kwargs)  # type: ignore[arg-type]


# --- every kind against every peer ------------------------------------------------------------


async def test_clean(peer: Peer, nursery: trio.Nursery) -> None:
    url = await base_url(peer, nursery)
    r = await run(url + "/echo", spec("clean", code=4000, reason="bye", timeout=5.0))
    assert r.outcome is Outcome.CLEAN, r
    assert (r.code_sent, r.code_received) == (4000, 4000)
    assert r.close_initiator is Side.CLIENT and r.tcp_closed_first is Side.SERVER
    assert len(r.message_rtts) == 1 and 0 < r.message_rtts[0] < 1
    assert r.close_sent is not None and r.close_received is not None and r.eof is not None
    assert r.close_sent <= r.close_received <= r.eof <= (r.socket_closed or 0)


@pytest.mark.parametrize("rst", [False, True])
async def test_terminate(peer: Peer, nursery: trio.Nursery, rst: bool) -> None:
    url = await base_url(peer, nursery)
    r = await run(url + "/echo", spec("terminate", rst=rst))
    assert r.outcome is Outcome.TERMINATED, r
    assert r.close_sent is None and r.tcp_closed_first is Side.CLIENT


async def test_close_no_wait(peer: Peer, nursery: trio.Nursery) -> None:
    url = await base_url(peer, nursery)
    r = await run(url + "/echo", spec("close_no_wait", code=1001))
    assert r.outcome is Outcome.CLOSE_NO_WAIT, r
    assert r.code_sent == 1001 and r.close_received is None


async def test_await_server_close(peer: Peer, nursery: trio.Nursery) -> None:
    url = await base_url(peer, nursery)
    close = spec("await_server_close", timeout=5.0, send_interval=0.02)
    r = await run(url + "/close?after=150&code=4001&reason=later", close)
    assert r.outcome is Outcome.SERVER_CLOSED, r
    assert (r.code_received, r.reason_received, r.code_sent) == (4001, "later", 4001)
    assert r.close_initiator is Side.SERVER and r.tcp_closed_first is Side.SERVER
    assert r.upgraded is not None and r.close_received is not None
    assert 0.1 < r.close_received - r.upgraded < 0.15 + SLACK  # not our 5 s fallback


async def test_await_server_close_that_never_comes(peer: Peer, nursery: trio.Nursery) -> None:
    url = await base_url(peer, nursery)
    r = await run(url + "/echo", spec("await_server_close", timeout=0.2))
    assert r.outcome is Outcome.NO_SERVER_CLOSE, r
    assert r.detail == "no Close from the server; our fallback Close completed"
    assert r.close_initiated is not None and r.close_sent is not None
    assert 0.2 - 0.1 <= r.close_sent - r.close_initiated < 0.2 + SLACK


async def test_ignore_server_close_measures_the_servers_close_timeout(
    peer: Peer, nursery: trio.Nursery
) -> None:
    url = await base_url(peer, nursery)
    r = await run(url + "/close?after=50&code=1001", spec("ignore_server_close", timeout=8.0))
    assert r.outcome is Outcome.SERVER_DROPPED, r
    assert r.code_received == 1001 and r.close_sent is None
    assert r.eof is not None and r.close_received is not None
    waited = r.eof - r.close_received
    assert peer.close_timeout - 0.05 < waited < peer.close_timeout + SLACK, waited  # not our 8 s


@pytest.mark.parametrize("variant", INVALID_VARIANTS)
async def test_invalid_close_is_rejected(peer: Peer, nursery: trio.Nursery, variant: str) -> None:
    url = await base_url(peer, nursery)
    r = await run(url + "/echo", spec("invalid_close", variant=variant, timeout=3.0))
    assert r.outcome is Outcome.INVALID_REJECTED, r
    assert r.code_received in (None, 1002, 1007)


async def test_server_close_during_hold_is_answered(peer: Peer, nursery: trio.Nursery) -> None:
    url = await base_url(peer, nursery)
    session = SessionConfig(messages=1, hold=Delay(10, 10))
    r = await run(url + "/close?after=100&code=4003", spec("clean", timeout=5.0), session)
    assert r.outcome is Outcome.SERVER_CLOSED, r
    assert r.code_sent == r.code_received == 4003
    assert r.close_initiated == r.close_received


async def test_sink_server_gives_message_timeout(peer: Peer, nursery: trio.Nursery) -> None:
    url = await base_url(peer, nursery)
    session = SessionConfig(messages=1, message_timeout=0.2)
    r = await run(url + "/sink", spec("clean"), session)
    assert r.outcome is Outcome.MESSAGE_TIMEOUT, r


@pytest.mark.parametrize("name", ["websockets", pytest.param("node", marks=pytest.mark.node)])
async def test_server_terminate_is_abnormal(request: pytest.FixtureRequest, name: str) -> None:
    port = request.getfixturevalue(f"{name}_peer").port
    session = SessionConfig(messages=1, hold=Delay(10, 10))
    r = await run(f"ws://127.0.0.1:{port}/terminate?after=100", spec("clean"), session)
    assert r.outcome in (Outcome.ABNORMAL, Outcome.RESET), r
    assert r.outcome is Outcome.ABNORMAL or name == "websockets"
    assert r.close_received is None and r.tcp_closed_first is Side.SERVER


async def test_many_concurrent_connections(peer: Peer, nursery: trio.Nursery) -> None:
    url = await base_url(peer, nursery)
    records: list[ConnectionRecord] = []
    ctx = DriverContext.create(TargetConfig(), SessionConfig(messages=2), url + "/echo")

    async def one(seq: int) -> None:
        plan = ConnectionPlan(seq, trio.current_time(), spec("clean", timeout=5.0))
        records.append(await run_connection(plan, ctx))

    with trio.fail_after(20):
        async with trio.open_nursery() as inner:
            for seq in range(1, 51):
                inner.start_soon(one, seq)
    assert [r.outcome for r in records] == [Outcome.CLEAN] * 50


# --- raw sockets: FIN vs RST, resets, refused, source address -----------------------------------


async def _raw_server(
    nursery: trio.Nursery, handler: Callable[[trio.SocketStream], Awaitable[None]]
) -> int:
    with trio.fail_after(10):
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return int(listeners[0].socket.getsockname()[1])


@pytest.mark.parametrize("rst", [False, True])
async def test_terminate_sends_fin_or_rst(nursery: trio.Nursery, rst: bool) -> None:
    seen: list[str] = []

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept()
        try:
            data = await stream.receive_some(100)
            seen.append("fin" if data == b"" else "data")
        except trio.BrokenResourceError as exc:
            seen.append(type(exc.__cause__).__name__)
        await stream.aclose()

    port = await _raw_server(nursery, handler)
    r = await run(f"ws://127.0.0.1:{port}/", spec("terminate", rst=rst), SessionConfig(messages=0))
    assert r.outcome is Outcome.TERMINATED
    with trio.fail_after(5):
        while not seen:
            await trio.sleep(0.01)
    assert seen == (["ConnectionResetError"] if rst else ["fin"])


async def test_server_reset_is_reset(nursery: trio.Nursery) -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await RawPeer(stream).accept()
        await trio.sleep(0.05)
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()

    port = await _raw_server(nursery, handler)
    session = SessionConfig(messages=0, hold=Delay(5, 5))
    r = await run(f"ws://127.0.0.1:{port}/", spec("clean"), session)
    assert r.outcome is Outcome.RESET, r
    assert r.eof is not None and r.tcp_closed_first is Side.SERVER


async def test_reset_during_the_upgrade_is_recorded(nursery: trio.Nursery) -> None:
    """A server reset while the client waits for the 101 (a deploy killing a server): the
    record says so. Session 9's CI found the compiled engine raising a TypeError here: one
    ``except ... as exc`` name held two exception types (mypyc keeps the first one's)."""

    async def handler(stream: trio.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive_some(4096)
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()

    port = await _raw_server(nursery, handler)
    r = await run(f"ws://127.0.0.1:{port}/", spec("clean"), SessionConfig(messages=0))
    assert r.outcome is Outcome.HANDSHAKE_INVALID, r
    assert "reset during the upgrade" in r.detail, r
    assert r.tcp_closed_first is Side.SERVER and r.eof is not None


async def test_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    r = await run(f"ws://127.0.0.1:{port}/", spec("clean"))
    assert r.outcome is Outcome.REFUSED
    assert r.connect_end is None and r.socket_closed is not None


async def test_source_address_is_bound(nursery: trio.Nursery) -> None:
    sources: list[str] = []

    async def handler(stream: trio.SocketStream) -> None:
        sources.append(stream.socket.getpeername()[0])
        peer = RawPeer(stream)
        await peer.accept()
        await peer.frames_until_eof()

    port = await _raw_server(nursery, handler)
    ctx = DriverContext.create(TargetConfig(), SessionConfig(messages=0), f"ws://127.0.0.1:{port}/")
    for seq, source in enumerate(("127.0.0.2", "127.0.0.3"), start=1):
        plan = ConnectionPlan(seq, trio.current_time(), spec("terminate"), source_address=source)
        with trio.fail_after(5):
            r = await run_connection(plan, ctx)
        assert r.outcome is Outcome.TERMINATED
    with trio.fail_after(5):
        while len(sources) < 2:
            await trio.sleep(0.01)
    assert sources == ["127.0.0.2", "127.0.0.3"]


async def test_unresolvable_host_is_connect_error() -> None:
    r = await run("ws://name.invalid./", spec("clean"), target=TargetConfig(connect_timeout=5))
    assert r.outcome in (Outcome.CONNECT_ERROR, Outcome.CONNECT_TIMEOUT)
