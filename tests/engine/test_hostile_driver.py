"""The driver against hostile servers (tests/hostile.py) over real loopback sockets.

For each case: the connection ends within its bound (one timeout for the waits, at once for
the rest), gets exactly the expected outcome and Close code, and leaves no file descriptor
behind (plus ResourceWarning is an error: a socket collected unclosed fails the test).
"""

from __future__ import annotations

import gc
import resource

import pytest
import trio
from hostile import CASES, HUGE, TIMEOUT, Case, HostileServer, held_open
from timing import SLACK

from wsload.core.record import ConnectionRecord
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.driver import run_connection
from wsload.engine.reference import run_connection_reference
from wsload.engine.wireclock import SO_TIMESTAMPNS
from wsload.scenario.model import CloseSpec, SessionConfig, TargetConfig

TARGET = TargetConfig(connect_timeout=TIMEOUT, handshake_timeout=TIMEOUT)


async def _connect(
    server: HostileServer, messages: int, timeout: float = TIMEOUT
) -> tuple[ConnectionRecord, float]:
    target = TargetConfig(connect_timeout=timeout, handshake_timeout=timeout)
    session = SessionConfig(messages=messages, message_timeout=timeout)
    ctx = DriverContext.create(target, session, server.url)
    started = trio.current_time()
    plan = ConnectionPlan(1, started, CloseSpec("clean", "clean", timeout=timeout))
    with trio.fail_after(10):
        record = await run_connection(plan, ctx)
    return record, trio.current_time() - started


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_hostile_server_gets_its_outcome_in_time(case: Case) -> None:
    before = held_open()
    with HostileServer(case.mode) as server:
        record, elapsed = await _connect(server, case.messages, case.timeout)
    gc.collect()
    assert record.outcome == case.outcome, str(record)
    assert record.code_sent == case.code_sent, str(record)
    low = TIMEOUT if case.waits else 0.0
    assert low - 0.01 <= elapsed <= low + SLACK, f"{elapsed:.3f}s: {record}"
    assert record.socket_closed is not None
    assert held_open() <= before  # the client's socket (and the server's) are closed


async def test_a_100_mb_frame_is_not_buffered() -> None:
    """max_message_size (1 MiB) stops the read early: the server cannot push 100 MB into us."""
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with HostileServer("huge_frame") as server:
        record, _ = await _connect(server, 1)
    assert record.outcome == "protocol_error"
    assert record.code_sent == 1009
    assert "max_message_size" in record.detail
    # 1 MiB read, then socket buffers: a few MB at most ever left the server
    assert server.sent < 16 * 1024 * 1024 < HUGE
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_kib) / 1024
    assert grown_mib < 50


async def test_many_connections_to_one_hostile_server_end_together() -> None:
    """Twenty silent connections at once: each times out on its own bound, none waits for
    another (one task per connection, no shared blocking read)."""
    with HostileServer("silent") as server:
        results: list[tuple[ConnectionRecord, float]] = []

        async def one() -> None:
            results.append(await _connect(server, 1))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(one)
    assert [r.outcome for r, _ in results] == ["message_timeout"] * 20
    assert max(elapsed for _, elapsed in results) <= TIMEOUT + SLACK


# --- the trio-websocket reference engine (engine = "trio-websocket") ---------------------------

REFERENCE: dict[str, tuple[str, ...]] = {
    "never_upgrade-1msg": ("handshake_timeout",),
    "slow_upgrade-1msg": ("handshake_timeout",),
    "silent-1msg": ("message_timeout",),
    "silent-0msg": ("close_timeout",),
    "garbage_upgrade-1msg": ("handshake_invalid",),
    # trio-websocket answers framing errors and bad Close frames itself: all we see is a Close
    "garbage_frames-1msg": ("server_closed",),
    "huge_frame-1msg": ("server_closed",),
    "close_invalid_code-1msg": ("server_closed",),
    "close_invalid_utf8-1msg": ("server_closed",),
    "reset_mid_frame-1msg": ("abnormal",),  # it cannot tell RST from FIN
    "close_mid_handshake-1msg": ("handshake_timeout",),  # it does not notice EOF in the upgrade
    "huge_headers-1msg": ("handshake_invalid",),
    "wrong_accept-1msg": ("handshake_invalid",),
    "fragmented_ping-1msg": ("server_closed",),
    "eof_after_upgrade-1msg": ("abnormal",),
    # its reader task may fall behind, or fail on a Ping that comes after our Close
    "ping_flood-1msg": ("clean", "message_timeout", "protocol_error"),
    "close_without_code-0msg": ("server_closed",),
}
"""What the reference engine records: coarser than the driver (docs/engine.md), never a crash.
A malformed 101 (and a Ping after our Close) used to escape trio-websocket's reader task as
h11's / wsproto's LocalProtocolError and end the whole run with a traceback."""


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_reference_engine_survives_every_hostile_server(case: Case) -> None:
    target = TargetConfig(
        connect_timeout=TIMEOUT, handshake_timeout=TIMEOUT, engine="trio-websocket"
    )
    session = SessionConfig(messages=case.messages, message_timeout=TIMEOUT)
    before = held_open()
    with HostileServer(case.mode) as server:
        ctx = DriverContext.create(target, session, server.url)
        started = trio.current_time()
        plan = ConnectionPlan(1, started, CloseSpec("clean", "clean", timeout=TIMEOUT))
        with trio.fail_after(10):
            record = await run_connection_reference(plan, ctx)
        elapsed = trio.current_time() - started
    gc.collect()
    assert record.outcome in REFERENCE[case.id], str(record)
    assert elapsed <= TIMEOUT + SLACK, f"{elapsed:.3f}s: {record}"
    assert held_open() <= before


async def test_a_server_that_never_answers_the_tls_handshake() -> None:
    """TLS is bounded too: the connect deadline covers the TLS handshake (the server reads the
    ClientHello and never answers). A plain server behind wss:// is test_engine_tls.py's."""
    before = held_open()
    with HostileServer("never_upgrade") as server:
        ctx = DriverContext.create(TARGET, SessionConfig(), server.url.replace("ws:", "wss:"))
        started = trio.current_time()
        plan = ConnectionPlan(1, started, CloseSpec("clean", "clean", timeout=TIMEOUT))
        with trio.fail_after(10):
            record = await run_connection(plan, ctx)
        elapsed = trio.current_time() - started
    gc.collect()
    assert record.outcome == "connect_timeout", str(record)
    assert "TLS handshake" in record.detail
    assert TIMEOUT - 0.01 <= elapsed <= TIMEOUT + SLACK
    assert held_open() <= before


@pytest.mark.skipif(SO_TIMESTAMPNS is None, reason="no SO_TIMESTAMPNS here")
async def test_a_101_read_with_the_frame_behind_it_counts_as_a_late_stamp() -> None:
    """The server writes its 101 and a Close in one segment: the 101's kernel stamp is the
    arrival of the bytes behind it, which is counted (``generator.coalesced_stamps``); the
    Close ended the read and is exact."""
    with HostileServer("close_without_code") as server:
        session = SessionConfig(messages=0, message_timeout=TIMEOUT)
        ctx = DriverContext.create(TARGET, session, server.url)
        plan = ConnectionPlan(1, trio.current_time(), CloseSpec("clean", "clean", timeout=TIMEOUT))
        with trio.fail_after(10):
            record = await run_connection(plan, ctx)
    assert record.upgraded is not None and record.close_received is not None, str(record)
    assert (ctx.wire.kernel, ctx.wire.coalesced) == (1, 1)
