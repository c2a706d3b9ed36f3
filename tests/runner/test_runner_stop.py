"""The runner's ends: the bounded drain, graceful and hard stops, an overloaded generator
(it must keep yielding and flag itself saturated) and the reference engine through the runner.

Helpers and peers are those of tests/runs.py (real loopback sockets, same Trio clock).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from peers import RawPeer, WebsocketsPeer
from runs import (
    PEER_CLOSE_TIMEOUT,
    PoliteServer,
    check_stopped_schedule,
    check_sums,
    raw_server,
    run,
    spy_on,
)
from timing import SLACK

from wsload.core.record import ConnectionRecord
from wsload.runner.load.lag import MIN_STALLS, SATURATION_US, LagMonitor


@pytest.fixture(scope="module")
def ws_peer() -> Iterator[WebsocketsPeer]:
    with WebsocketsPeer(close_timeout=PEER_CLOSE_TIMEOUT) as peer:
        yield peer


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> list[ConnectionRecord]:
    return spy_on(monkeypatch)


# --- drain and stops -------------------------------------------------------------------------


async def test_drain_bounds_a_peer_that_never_answers_close(nursery: trio.Nursery) -> None:
    async def mute(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept()
        await peer.frames_until_eof()  # reads our Close, never answers
        await stream.aclose()

    url = await raw_server(nursery, mute)
    text = """
[load]
model = "arrival"
rate = 100
connections = 10
drain = "500ms"
[session]
messages = 0
[[close]]
kind = "clean"
timeout = "5s"
"""
    with trio.fail_after(10):
        r = await run(text, url)
    check_sums(r)
    assert r.collector.counts().outcomes == {"interrupted": 10}
    # the last start is at 90 ms; the drain then waits 500 ms, not the 5 s close timeout
    assert 0.59 - 0.01 <= r.result.ended - r.result.started < 0.59 + SLACK
    assert r.result.interrupted is False
    assert r.collector.counts().codes_sent == {}  # interrupted records carry no close data


async def test_graceful_stop_closes_open_connections(
    ws_peer: WebsocketsPeer, records: list[ConnectionRecord]
) -> None:
    stop = trio.Event()
    stopped_at = 0.0
    text = """
[load]
model = "arrival"
rate = 50
duration = "10s"
shutdown_grace = "5s"
[session]
messages = 1
hold = "30s"
[[close]]
kind = "clean"
timeout = "2s"
"""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def stop_later() -> None:
                nonlocal stopped_at
                await trio.sleep(0.5)
                stopped_at = trio.current_time()
                stop.set()

            nursery.start_soon(stop_later)
            r = await run(text, f"ws://127.0.0.1:{ws_peer.port}/echo", stop=stop)
    check_sums(r)
    assert r.result.interrupted is True
    # scheduling stopped at the stop (~25 starts at 50/s) ...
    check_stopped_schedule(r, 50, stopped_at)
    # ... and every open connection ran its clean close at once: not after its 30 s hold, and
    # the run ended long before the 5 s shutdown_grace
    assert r.collector.counts().outcomes == {"clean": r.progress.attempted}
    assert r.result.ended - stopped_at < SLACK
    closes = [rec.close_initiated for rec in records if rec.close_initiated is not None]
    assert len(closes) == r.progress.attempted
    assert stopped_at <= min(closes) and max(closes) - stopped_at < SLACK


async def test_graceful_stop_without_ctx_stop_still_closes(ws_peer: WebsocketsPeer) -> None:
    """A caller that built its DriverContext without ``stop`` still gets a graceful stop."""
    stop = trio.Event()
    stopped_at = 0.0
    text = """
[load]
model = "arrival"
rate = 50
duration = "10s"
shutdown_grace = "5s"
[session]
messages = 0
hold = "30s"
"""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def stop_later() -> None:
                nonlocal stopped_at
                await trio.sleep(0.3)
                stopped_at = trio.current_time()
                stop.set()

            nursery.start_soon(stop_later)
            r = await run(text, f"ws://127.0.0.1:{ws_peer.port}/echo", stop=stop, ctx_stop=False)
    check_sums(r)
    assert r.collector.counts().outcomes == {"clean": r.progress.attempted}
    # at once, not after the 5 s shutdown_grace (which never ends early): SLACK was too tight
    # for a machine running the 10,000-connection test beside it (CI, session 10)
    assert r.result.ended - stopped_at < 5.0, r.result.ended - stopped_at


async def test_graceful_stop_bounded_by_shutdown_grace(nursery: trio.Nursery) -> None:
    async def mute(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept()
        await peer.frames_until_eof()
        await stream.aclose()

    url = await raw_server(nursery, mute)
    stop = trio.Event()
    stopped_at = 0.0
    text = """
[load]
model = "arrival"
rate = 50
duration = "10s"
shutdown_grace = "400ms"
[session]
messages = 0
hold = "30s"
[[close]]
kind = "clean"
timeout = "10s"
"""
    with trio.fail_after(10):
        async with trio.open_nursery() as inner:

            async def stop_later() -> None:
                nonlocal stopped_at
                await trio.sleep(0.3)
                stopped_at = trio.current_time()
                stop.set()

            inner.start_soon(stop_later)
            r = await run(text, url, stop=stop)
    check_sums(r)
    assert r.result.interrupted is True
    assert r.collector.counts().outcomes == {"interrupted": r.progress.attempted}
    # the 400 ms grace ends it, not the 10 s close timeout
    assert 0.4 - 0.01 <= r.result.ended - stopped_at < 0.4 + SLACK


async def test_hard_stop_cancels_at_once(ws_peer: WebsocketsPeer) -> None:
    hard_stop = trio.Event()
    stopped_at = 0.0
    text = """
[load]
model = "arrival"
rate = 50
duration = "10s"
shutdown_grace = "5s"
[session]
messages = 0
hold = "30s"
"""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def stop_later() -> None:
                nonlocal stopped_at
                await trio.sleep(0.4)
                stopped_at = trio.current_time()
                hard_stop.set()

            nursery.start_soon(stop_later)
            r = await run(text, f"ws://127.0.0.1:{ws_peer.port}/echo", hard_stop=hard_stop)
    check_sums(r)
    assert r.result.interrupted is True
    check_stopped_schedule(r, 50, stopped_at)
    assert r.collector.counts().outcomes == {"interrupted": r.progress.attempted}
    # at once, not after the 5 s shutdown_grace (which never ends early): SLACK was too tight
    # for a machine running the 10,000-connection test beside it (CI, session 10)
    assert r.result.ended - stopped_at < 5.0, r.result.ended - stopped_at


async def test_overdue_arrivals_still_yield_to_stop(nursery: trio.Nursery) -> None:
    """A rate the generator cannot keep up with must not freeze its loop: stop still works,
    intervals are still emitted, and the lateness is reported as saturation."""
    server = PoliteServer()
    url = await raw_server(nursery, server)
    stop = trio.Event()
    stopped_at = 0.0
    text = """
[load]
model = "arrival"
rate = 10000000
duration = "5s"
max_in_flight = 20
shutdown_grace = "2s"
[session]
messages = 0
hold = "5s"
"""
    with trio.fail_after(15):
        async with trio.open_nursery() as inner:

            async def stop_later() -> None:
                nonlocal stopped_at
                await trio.sleep(0.3)
                stopped_at = trio.current_time()
                stop.set()

            inner.start_soon(stop_later)
            r = await run(text, url, stop=stop)
    check_sums(r)
    # the overdue generator let the stop task run on time, and saw the stop at once
    assert stopped_at - r.progress.started < 0.3 + SLACK
    assert r.result.ended - stopped_at < SLACK
    assert 0 < r.progress.attempted <= 20
    assert r.progress.dropped > 0
    assert r.progress.intended < 10_000_000  # far from the 50 M a 5 s schedule has
    assert r.intervals[0].end - r.progress.started < 1.0 + SLACK  # the interval log kept going
    assert r.collector.counts().outcomes == {"clean": r.progress.attempted}


# --- the generator watching itself -----------------------------------------------------------


async def test_lag_monitor_samples_an_idle_run(ws_peer: WebsocketsPeer) -> None:
    text = """
[load]
model = "arrival"
rate = 10
duration = "500ms"
"""
    with trio.fail_after(10):
        r = await run(text, f"ws://127.0.0.1:{ws_peer.port}/echo")
    check_sums(r)
    lag = r.result.lag
    # ticks every 10 ms for ~0.5 s
    assert 20 <= lag.loop_lag.get_total_count() <= 80
    assert lag.saturated is False
    assert lag.loop_lag.get_value_at_percentile(50) < 20_000
    assert r.result.cpu_seconds > 0


async def test_blocked_loop_is_flagged_saturated(ws_peer: WebsocketsPeer) -> None:
    """The lag monitor sees a generator whose event loop is blocked (here: 30 ms sync work
    every 10 ms) and flags the run, so its latencies are not taken at face value."""
    text = """
[load]
model = "arrival"
rate = 20
duration = "600ms"
[session]
messages = 0
"""

    async def hog() -> None:
        while True:
            time.sleep(0.03)
            await trio.sleep(0.01)

    with trio.fail_after(10):
        async with trio.open_nursery() as inner:
            inner.start_soon(hog)
            r = await run(text, f"ws://127.0.0.1:{ws_peer.port}/echo")
            inner.cancel_scope.cancel()
    check_sums(r)
    assert r.result.lag.loop_lag.get_value_at_percentile(50) > 20_000
    assert r.result.lag.saturated is True


def test_start_lag_counts_on_time_starts() -> None:
    """Every start is one sample: 99 on time and one 30 ms late is a p99 of 0, not 30 ms."""
    lag = LagMonitor()
    for _ in range(99):
        lag.record_start(0.0)
    lag.record_start(0.03)
    assert lag.start_lag.get_total_count() == 100
    assert lag.start_lag.get_value_at_percentile(99) == 0
    assert lag.max_start_lag_us == 30_000
    assert lag.saturated is False
    for _ in range(5):
        lag.record_start(0.03)
    assert lag.saturated is True


# --- the reference engine --------------------------------------------------------------------


async def test_reference_engine_runs_clean_and_terminate(
    ws_peer: WebsocketsPeer, records: list[ConnectionRecord]
) -> None:
    text = """
engine = "trio-websocket"
[load]
model = "arrival"
rate = 100
connections = 20
[[close]]
kind = "clean"
timeout = "2s"
[[close]]
kind = "terminate"
"""
    with trio.fail_after(20):
        r = await run(text, f"ws://127.0.0.1:{ws_peer.port}/echo")
    assert r.scenario.target.engine == "trio-websocket"
    check_sums(r)
    assert r.collector.counts().outcomes == {"clean": 10, "terminated": 10}
    assert len(records) == 20
    assert r.collector.stats("message_rtt")["count"] == 20
    assert r.collector.stats("close_handshake", "clean")["count"] == 10


def test_a_few_stalls_in_a_short_run_do_not_mark_it_saturated() -> None:
    """Three late starts among ten make a 30 ms p99, but three stalls are a GC pause or two,
    not a generator at its limit; MIN_STALLS of them are."""
    lag = LagMonitor()
    for _ in range(7):
        lag.record_start(0.0)
    for _ in range(3):
        lag.record_start(0.03)
    assert lag.start_lag.get_value_at_percentile(99) > SATURATION_US
    assert lag.saturated is False
    for _ in range(MIN_STALLS - 3):
        lag.record_start(0.03)
    assert lag.saturated is True


async def test_a_late_resumed_task_does_not_shorten_close_handshake(
    records: list[ConnectionRecord],
) -> None:
    """The built-in server (its own process) waits 20 ms before answering every Close, so no
    close_handshake can be shorter. A client loop blocked 8 ms at a time resumes tasks late
    after their writes; stamping "Close sent" after the write returned used to take that
    lateness off the measured handshake (seen as a 5.7 ms minimum in a 10k run)."""
    from wsload.runner.targets.target import BuiltinTarget
    from wsload.scenario.model import Delay, ServerConfig

    text = """
[load]
model = "arrival"
rate = 200
connections = 60
[session]
messages = 0
"""

    async def hog() -> None:
        while True:
            time.sleep(0.008)
            await trio.sleep(0)

    config = ServerConfig(close_reply_delay=Delay(0.02, 0.02))
    with trio.fail_after(30):
        async with BuiltinTarget(config, seed=1) as target, trio.open_nursery() as inner:
            inner.start_soon(hog)
            r = await run(text, target.url)
            inner.cancel_scope.cancel()
    check_sums(r)
    assert r.collector.counts().outcomes == {"clean": 60}
    handshakes = [
        rec.close_received - rec.close_sent
        for rec in records
        if rec.close_received is not None and rec.close_sent is not None
    ]
    assert len(handshakes) == 60
    assert min(handshakes) >= 0.02


async def test_the_heap_is_frozen_only_while_the_load_runs(nursery: trio.Nursery) -> None:
    """A full collection walks every object (imports included: 20-30 ms here) and stalls the
    loop mid-measurement, so run_load freezes the heap for its duration, and only then."""
    import gc

    seen: list[int] = []

    async def polite(stream: trio.SocketStream) -> None:
        seen.append(gc.get_freeze_count())
        await PoliteServer()(stream)

    url = await raw_server(nursery, polite)
    gc.unfreeze()
    with trio.fail_after(10):
        r = await run('[load]\nmodel = "arrival"\nrate = 100\nconnections = 3\n', url)
    check_sums(r)
    assert len(seen) == 3 and min(seen) > 1000
    assert gc.get_freeze_count() == 0


def test_cpu_wait_is_read_from_the_kernel(tmp_path: Path) -> None:
    from wsload.runner.load.lag import cpu_wait_seconds

    stat = tmp_path / "schedstat"
    stat.write_text("1035657572 1048062440 280\n", encoding="ascii")
    assert cpu_wait_seconds(stat) == pytest.approx(1.048062440)
    stat.write_text("garbage\n", encoding="ascii")
    assert cpu_wait_seconds(stat) is None
    assert cpu_wait_seconds(tmp_path / "missing") is None


async def test_a_run_beside_cpu_hogs_reports_its_wait_for_a_cpu(ws_peer: WebsocketsPeer) -> None:
    """Three busy processes on a 2-core machine take the CPU from the generator: the run
    reports the time it waited (what tells a busy machine from an overloaded generator)."""
    import os
    import subprocess
    import sys

    from wsload.runner.load.lag import cpu_wait_seconds

    if cpu_wait_seconds() is None:
        pytest.skip("the kernel does not report schedstat run_delay here")
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range((os.cpu_count() or 1) + 1)
    ]
    try:
        text = '[load]\nmodel = "arrival"\nrate = 100\nduration = "1s"\n'
        with trio.fail_after(20):
            r = await run(text, f"ws://127.0.0.1:{ws_peer.port}/echo")
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(5)
    check_sums(r)
    wait = r.result.cpu_wait_seconds
    assert wait is not None and 0.0 < wait < r.result.ended - r.result.started + 1.0
