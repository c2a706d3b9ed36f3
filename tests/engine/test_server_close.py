"""Close behaviours of the built-in server on loopback, seen by independent clients.

trio-websocket (in-process) and ``websockets`` 17 (asyncio, in a thread) are the well-behaved
peers; the raw client does what they cannot (stay mute, send malformed frames, drop TCP).
Delays are measured on the client side with generous tolerances: a 2-core box is noisy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import pytest
import trio
import trio_websocket
import websockets
from server_clients import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    RawClient,
    close_payload,
    frame,
    in_thread,
    running,
    trio_ws,
    until,
)
from timing import SLACK
from websockets.asyncio.client import connect as ws_connect
from wsproto.events import BytesMessage, CloseConnection, Pong, TextMessage

from wsload.scenario.model import Delay, ServerConfig


async def test_echo_and_clean_close_trio_websocket() -> None:
    with trio.fail_after(10):
        async with running() as target:
            async with trio_ws(target) as ws:
                await ws.send_message("hello")
                assert await ws.get_message() == "hello"
                await ws.send_message(b"\x00\x01" * 1000)
                assert await ws.get_message() == b"\x00\x01" * 1000
                await ws.ping(b"are you there")
                await ws.aclose(1000, "done")
            assert ws.closed is not None and ws.closed.code == 1000
            stats = target.server.stats
            await until(lambda: stats.open == 0)
            assert stats.messages_in == 2 and stats.messages_out == 2
            assert stats.pings_answered == 1
            assert dict(stats.close_codes_received) == {1000: 1}
            assert dict(stats.close_codes_sent) == {1000: 1}
            assert stats.tcp_closed_first_by_server == 1
            assert stats.tcp_closed_first_by_client == 0
            assert stats.ended_without_close == 0
            assert stats.upgrades_ok == 1 and stats.peak_open == 1


async def test_echo_and_close_code_websockets() -> None:
    with trio.fail_after(15):
        async with running() as target:

            async def client() -> tuple[str, int | None, float]:
                async with ws_connect(target.url, proxy=None, close_timeout=5) as ws:
                    await ws.send("ping-pong")
                    echoed = str(await ws.recv())
                    started = time.monotonic()
                    await ws.close(4000, "bye")
                    elapsed = time.monotonic() - started
                    rcvd = ws.protocol.close_rcvd
                    return echoed, rcvd.code if rcvd else None, elapsed

            echoed, code, elapsed = await in_thread(client)
            assert echoed == "ping-pong"
            assert code == 4000  # the server echoes the client's code
            # websockets waits for the server's TCP close (up to 5 s): the server closed first
            assert elapsed < SLACK
            stats = target.server.stats
            await until(lambda: stats.open == 0)
            assert dict(stats.close_codes_received) == {4000: 1}
            assert dict(stats.close_codes_sent) == {4000: 1}
            assert stats.tcp_closed_first_by_server == 1


async def test_fragmented_message_is_echoed_whole() -> None:
    with trio.fail_after(10):
        async with running() as target:
            client = await RawClient.connect(target.host, target.port)
            await client.send(frame(OP_TEXT, b"hel", fin=False) + frame(0x0, b"lo"))
            parts = []
            while True:
                event = await client.next_event()
                assert isinstance(event, TextMessage)
                parts.append(event.data)
                if event.message_finished:
                    break
            assert "".join(parts) == "hello"
            await client.send(frame(OP_PING, b"p"))
            assert await client.next_event() == Pong(payload=b"p")
            client.close()
            await until(lambda: target.server.stats.open == 0)
            assert target.server.stats.messages_in == 1


async def test_sink_mode_echoes_nothing() -> None:
    with trio.fail_after(10):
        async with running(ServerConfig(messages="sink")) as target:
            async with trio_ws(target) as ws:
                for i in range(3):
                    await ws.send_message(f"m{i}")
                with trio.move_on_after(0.3) as quiet:
                    await ws.get_message()
                assert quiet.cancelled_caught

            async def client() -> bool:
                async with ws_connect(target.url, proxy=None) as ws:
                    await ws.send(b"into the sink")
                    try:
                        await asyncio.wait_for(ws.recv(), 0.3)
                    except TimeoutError:
                        return True
                    return False  # pragma: no cover - an echo arrived

            assert await in_thread(client)
            stats = target.server.stats
            await until(lambda: stats.open == 0)
            assert stats.messages_in == 4 and stats.messages_out == 0


async def test_close_reply_delay_fixed_both_clients() -> None:
    config = ServerConfig(close_reply_delay=Delay(0.3, 0.3))
    with trio.fail_after(15):
        async with running(config) as target:
            async with trio_ws(target) as ws:
                started = trio.current_time()
                await ws.aclose(1000)
                took = trio.current_time() - started
            assert 0.3 <= took < 0.3 + SLACK
            assert ws.closed is not None and ws.closed.code == 1000

            async def client() -> tuple[int | None, float]:
                async with ws_connect(target.url, proxy=None) as ws:
                    started = time.monotonic()
                    await ws.close(1001)
                    rcvd = ws.protocol.close_rcvd
                    return (rcvd.code if rcvd else None), time.monotonic() - started

            code, elapsed = await in_thread(client)
            assert code == 1001
            assert 0.3 - 0.01 <= elapsed < 0.3 + SLACK


async def test_close_reply_delay_random_stays_in_range() -> None:
    config = ServerConfig(close_reply_delay=Delay(0.05, 0.35))
    took: list[float] = []
    with trio.fail_after(20):
        async with running(config, seed=11) as target:
            for _ in range(6):
                async with trio_ws(target) as ws:
                    started = trio.current_time()
                    await ws.aclose(1000)
                    took.append(trio.current_time() - started)
    assert all(0.05 <= t < 0.35 + SLACK for t in took), took
    assert max(took) - min(took) > 0.02, took  # really random, not a fixed delay


async def test_mute_server_drops_after_its_close_timeout() -> None:
    config = ServerConfig(close_reply="never", close_timeout=0.5)
    with trio.fail_after(15):
        async with running(config) as target:

            async def client() -> tuple[bool, float]:
                async with ws_connect(target.url, proxy=None, close_timeout=10) as ws:
                    started = time.monotonic()
                    await ws.close(1000)
                    return ws.protocol.close_rcvd is None, time.monotonic() - started

            no_reply, elapsed = await in_thread(client)
            assert no_reply
            assert 0.5 - 0.01 <= elapsed < 0.5 + SLACK

            async with trio_ws(target) as ws:
                started = trio.current_time()
                await ws.aclose(1000)
                took = trio.current_time() - started
            assert 0.5 <= took < 0.5 + SLACK
            stats = target.server.stats
            await until(lambda: stats.open == 0)
            assert stats.mute_drops == 2
            assert dict(stats.close_codes_received) == {1000: 2}
            assert not stats.close_codes_sent
            assert stats.tcp_closed_first_by_server == 2


async def test_drop_reply_closes_tcp_without_close_frame() -> None:
    with trio.fail_after(10):
        async with running(ServerConfig(close_reply="drop")) as target:
            client = await RawClient.connect(target.host, target.port)
            await client.send(frame(OP_CLOSE, close_payload(1000)))
            assert await client.next_event() is None  # EOF, no Close frame
            client.close()

            async def ws_client() -> tuple[bool, float]:
                async with ws_connect(target.url, proxy=None, close_timeout=10) as ws:
                    started = time.monotonic()
                    await ws.close(1000)
                    return ws.protocol.close_rcvd is None, time.monotonic() - started

            no_reply, elapsed = await in_thread(ws_client)
            assert no_reply and elapsed < SLACK
            stats = target.server.stats
            await until(lambda: stats.open == 0)
            assert dict(stats.close_codes_received) == {1000: 2}
            assert not stats.close_codes_sent
            assert stats.tcp_closed_first_by_server == 2


async def test_close_after_sends_configured_code_and_reason() -> None:
    config = ServerConfig(close_after=0.3, close_code=4002, close_reason="bye now")
    with trio.fail_after(15):
        async with running(config) as target:
            async with trio_ws(target) as ws:
                opened = trio.current_time()
                with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                    await ws.get_message()
                took = trio.current_time() - opened
            assert closed.value.reason.code == 4002
            assert closed.value.reason.reason == "bye now"
            assert 0.3 - 0.05 <= took < 0.3 + SLACK

            async def client() -> tuple[int | None, str | None, float]:
                async with ws_connect(target.url, proxy=None) as ws:
                    opened = time.monotonic()
                    with pytest.raises(websockets.ConnectionClosed):
                        await ws.recv()
                    rcvd = ws.protocol.close_rcvd
                    elapsed = time.monotonic() - opened
                    return (rcvd.code, rcvd.reason, elapsed) if rcvd else (None, None, elapsed)

            code, reason, elapsed = await in_thread(client)
            assert (code, reason) == (4002, "bye now")
            assert 0.3 - 0.05 <= elapsed < 0.3 + SLACK
            stats = target.server.stats
            await until(lambda: stats.open == 0)
            assert dict(stats.server_initiated) == {"close": 2}
            assert dict(stats.close_codes_sent) == {4002: 2}
            assert dict(stats.close_codes_received) == {4002: 2}  # both clients echo it
            assert stats.tcp_closed_first_by_server == 2
            assert stats.close_timeouts == 0


async def test_close_after_messages() -> None:
    config = ServerConfig(close_after_messages=2, close_code=4003)
    with trio.fail_after(10):
        async with running(config) as target:
            async with trio_ws(target) as ws:
                await ws.send_message("one")
                await ws.send_message("two")
                assert await ws.get_message() == "one"
                assert await ws.get_message() == "two"
                with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                    await ws.get_message()
            assert closed.value.reason.code == 4003

            async def client() -> tuple[list[str], int | None]:
                async with ws_connect(target.url, proxy=None) as ws:
                    await ws.send("a")
                    await ws.send("b")
                    echoes = [str(await ws.recv()), str(await ws.recv())]
                    with pytest.raises(websockets.ConnectionClosed):
                        await ws.recv()
                    rcvd = ws.protocol.close_rcvd
                    return echoes, rcvd.code if rcvd else None

            assert await in_thread(client) == (["a", "b"], 4003)
            stats = target.server.stats
            await until(lambda: stats.open == 0)
            assert stats.messages_in == 4 and stats.messages_out == 4
            assert dict(stats.server_initiated) == {"close": 2}


async def test_close_action_fin_and_rst() -> None:
    with trio.fail_after(15):
        async with running(ServerConfig(close_after=0.2, close_action="fin")) as target:

            async def client() -> tuple[bool, float]:
                async with ws_connect(target.url, proxy=None) as ws:
                    opened = time.monotonic()
                    with pytest.raises(websockets.ConnectionClosedError):
                        await ws.recv()
                    return ws.protocol.close_rcvd is None, time.monotonic() - opened

            no_close, elapsed = await in_thread(client)
            assert no_close and 0.15 <= elapsed < 0.2 + SLACK
            raw = await RawClient.connect(target.host, target.port)
            assert await raw.next_event() is None  # FIN: a plain EOF, no Close frame
            raw.close()
            stats = target.server.stats
            await until(lambda: stats.open == 0)
            assert dict(stats.server_initiated) == {"fin": 2}
            assert stats.tcp_closed_first_by_server == 2
            assert dict(stats.close_codes_received) == {1006: 2}

        async with running(ServerConfig(close_after=0.2, close_action="rst")) as target:
            raw = await RawClient.connect(target.host, target.port)
            with pytest.raises(trio.BrokenResourceError) as reset:
                await raw.next_event()
            assert isinstance(reset.value.__cause__, ConnectionResetError)
            raw.close()
            await until(lambda: target.server.stats.open == 0)
            assert dict(target.server.stats.server_initiated) == {"rst": 1}


async def test_close_timeout_when_client_never_answers() -> None:
    config = ServerConfig(close_after=0.1, close_timeout=0.5, close_code=4004)
    with trio.fail_after(10):
        async with running(config) as target:
            raw = await RawClient.connect(target.host, target.port)
            close = await raw.expect_close()
            got_close = trio.current_time()
            assert close.code == 4004
            assert await raw.next_event() is None
            waited = trio.current_time() - got_close
            assert 0.5 - 0.05 <= waited < 0.5 + SLACK
            raw.close()
            stats = target.server.stats
            await until(lambda: stats.open == 0)
            assert stats.close_timeouts == 1
            assert stats.ended_without_close == 1
            assert dict(stats.close_codes_received) == {1006: 1}
            assert stats.tcp_closed_first_by_server == 1


@pytest.mark.parametrize(
    ("bad_frame", "expected_code"),
    [
        (frame(OP_TEXT, b"unmasked", mask=False), 1002),
        (frame(0x3, b"reserved opcode"), 1002),
        (frame(OP_TEXT, b"rsv bits", rsv=0b100), 1002),
        (frame(OP_CLOSE, close_payload(1005)), 1002),
        (frame(OP_CLOSE, close_payload(999)), 1002),
        (frame(OP_CLOSE, b"\x03"), 1002),
        (frame(OP_PING, b"x" * 126), 1002),
        (frame(OP_TEXT, b"\xff\xfe not utf-8"), 1007),
    ],
    ids=[
        "unmasked",
        "reserved-opcode",
        "rsv",
        "close-1005",
        "close-999",
        "close-one-byte",
        "long-ping",
        "invalid-utf8",
    ],
)
async def test_malformed_frames_get_protocol_error_close(
    bad_frame: bytes, expected_code: int
) -> None:
    with trio.fail_after(10):
        async with running() as target:
            raw = await RawClient.connect(target.host, target.port)
            await raw.send(bad_frame)
            close = await raw.expect_close()
            assert close.code == expected_code
            # the server sent FIN behind its Close (it closes first) and drains until our EOF
            assert await raw.next_event() is None
            raw.close()
            stats = target.server.stats
            await until(lambda: stats.open == 0)
            assert stats.protocol_errors == 1
            assert dict(stats.close_codes_sent) == {expected_code: 1}
            assert dict(stats.close_codes_received) == {1006: 1}
            assert stats.tcp_closed_first_by_server == 1


async def test_close_without_code_is_counted_as_1005_and_answered_empty() -> None:
    with trio.fail_after(10):
        async with running() as target:
            raw = await RawClient.connect(target.host, target.port)
            await raw.send(frame(OP_CLOSE))
            close = await raw.expect_close()
            assert close.code == 1005  # wsproto's name for "no code in the frame"
            assert await raw.next_event() is None
            raw.close()
            stats = target.server.stats
            await until(lambda: stats.open == 0)
            assert dict(stats.close_codes_received) == {1005: 1}
            assert dict(stats.close_codes_sent) == {1005: 1}


async def test_client_terminate_and_close_no_wait_count_client_first() -> None:
    with trio.fail_after(10):
        async with running() as target:
            stats = target.server.stats
            raw = await RawClient.connect(target.host, target.port)
            raw.close(rst=True)  # terminate: no Close at all
            await until(lambda: stats.upgrades_ok == 1 and stats.open == 0)
            assert stats.tcp_closed_first_by_client == 1
            assert stats.ended_without_close == 1

            # close_no_wait: Close frame and FIN in one go, with no checkpoint between them
            # (a plain write on the socket's fd, then close) so the server cannot answer first.
            raw = await RawClient.connect(target.host, target.port)
            os.write(raw.stream.socket.fileno(), frame(OP_CLOSE, close_payload(1000)))
            raw.close()
            await until(lambda: stats.upgrades_ok == 2 and stats.open == 0)
            assert stats.tcp_closed_first_by_client == 2
            assert dict(stats.close_codes_received) == {1006: 1, 1000: 1}


async def test_data_after_close_is_ignored_and_binary_echo() -> None:
    with trio.fail_after(10):
        async with running(ServerConfig(close_reply_delay=Delay(0.1, 0.1))) as target:
            raw = await RawClient.connect(target.host, target.port)
            await raw.send(frame(OP_BINARY, b"\x00bin"))
            assert await raw.next_event() == BytesMessage(data=b"\x00bin")
            await raw.send(frame(OP_CLOSE, close_payload(1000)) + frame(OP_TEXT, b"late"))
            close = await raw.next_event()
            assert isinstance(close, CloseConnection) and close.code == 1000
            assert await raw.next_event() is None
            raw.close()
            await until(lambda: target.server.stats.open == 0)
            assert target.server.stats.messages_in == 1
            assert target.server.stats.protocol_errors == 0


async def test_client_that_stops_reading_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Echoes pile up in the kernel buffers; the stalled send is abandoned after SEND_TIMEOUT."""
    from wsload.server import connection

    monkeypatch.setattr(connection, "SEND_TIMEOUT", 0.5)
    with trio.fail_after(20):
        async with running() as target:
            raw = await RawClient.connect(target.host, target.port)
            chunk = frame(OP_BINARY, b"x" * (1 << 20))
            stats = target.server.stats

            async def flood() -> None:
                with contextlib.suppress(trio.BrokenResourceError):
                    for _ in range(64):  # 64 MiB of echo, far over any socket buffer
                        await raw.send(chunk)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(flood)
                await until(lambda: stats.send_timeouts == 1, timeout=15)
                nursery.cancel_scope.cancel()
            raw.close()
            await until(lambda: stats.open == 0)
            assert stats.messages_in < 64
            assert stats.tcp_closed_first_by_server == 1
