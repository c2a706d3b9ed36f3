"""A server that floods frames without pause must not starve wsload's other tasks.

The driver reads a plain TCP socket directly and only yields to Trio when a read has to wait
(``wsload.engine.link``); against a server that always has more bytes ready, it must still
yield now and then, or one connection would freeze every other connection, the lag monitor
and the interval log. The flooder runs in a thread (blocking sockets), so it keeps the socket
full whatever the Trio loop does.
"""

from __future__ import annotations

import socket
import threading

import trio

from wsload.core.handshake import accept_key
from wsload.core.outcomes import Outcome
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.driver import run_connection
from wsload.scenario.model import CloseSpec, Delay, SessionConfig, TargetConfig


def _flood(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
        )
        frames = b"\x81\x01x" * 20000  # 20,000 one-byte text messages per write
        try:
            while True:
                conn.sendall(frames)
        except OSError:  # the client went away: done
            pass


async def test_a_flooding_server_cannot_starve_the_event_loop() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    flooder = threading.Thread(target=_flood, args=(listener,), daemon=True)
    flooder.start()
    port = listener.getsockname()[1]
    ticks = 0

    async def ticker() -> None:  # runs once per scheduling pass: counts the driver's yields
        nonlocal ticks
        while True:
            await trio.sleep(0)
            ticks += 1

    # held 2 s of real time: a machine busy enough to halve the test's CPU still reads well over
    # the 100,000 messages the yield count below needs to tell the rule from its absence
    session = SessionConfig(messages=0, hold=Delay(2.0, 2.0))
    ctx = DriverContext.create(TargetConfig(), session, f"ws://127.0.0.1:{port}/")
    plan = ConnectionPlan(seq=1, scheduled=0.0, close=CloseSpec(kind="terminate", label="t"))
    try:
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                record = await run_connection(plan, ctx)
                nursery.cancel_scope.cancel()
    finally:
        flooder.join(10)
        listener.close()
    assert record.outcome is Outcome.TERMINATED, record
    # Counted, not timed: however much CPU a busy machine leaves the test, the driver must yield
    # at least once per 20,000 messages (60 KiB of 3-byte frames) it processes; it yields after
    # every full 16 KiB read (~5,500 messages; measured ~120 yields in the hold). Before the
    # per-read yield rule it yielded only when a read had to wait: 3-4 times in the whole hold.
    assert record.messages_received >= 100_000, record  # the flood really was read
    assert ticks >= record.messages_received // 20_000, (ticks, record.messages_received)
