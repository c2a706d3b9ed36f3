"""Held-connections benchmark worker: client RSS per open connection at N held.

Opens ``count`` connections with wsload's driver exactly as a storm run holds them (upgrade,
one message echoed, then parked until the release event), each a fiber of the run's poller
(``fibers``, as the runner runs plain TCP connections; else each in its own task) whose record
goes to a ``Collector`` as the runner's does, and measures this process's resident set size
before (after a warm-up and ``gc.collect``) and once all are held. ``(held - before) / count``
is what one held connection costs: its coroutines (and task), its socket object, its
``Link``/frame reader, the kernel's socket memory is not in RSS.

With ``offer`` the connections offer permessage-deflate (``"browser"``: as browsers do,
``"lean"``: 512-byte windows; ``wsload.core.deflate.OFFERS``); where the target accepts it,
each held connection also keeps what deflate needs between messages: the inflater for the
server's messages (once a compressed echo came back; its window is the server's) and up to
1 KiB of history for our own compressor's context takeover. With
``script`` each connection runs :data:`SCRIPT` (a session script) instead of echo mode.

Then it releases them all at one instant, as a storm run does (with the runner's GC policy,
``wsload/runner/load/heap.py``), and measures how long the release takes: from the release to the
first and the last Close written (``close_sent``), to every connection's end, and the CPU this
process spent meanwhile.
"""

from __future__ import annotations

import gc
import os
import resource
from dataclasses import replace

import trio

from wsload.core.deflate import NAME, OFFERS
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.driver import run_connection
from wsload.metrics.collector import Collector
from wsload.runner.load.heap import load_heap, release_held
from wsload.runner.modes.calibrate import cycle_scenario, measure_cycles
from wsload.scenario.parse import parse_scenario

__all__ = ["SCRIPT", "measure_held", "rss_bytes"]

SCRIPT = """
[target]
url = "{url}"
[load]
model = "concurrency"
concurrency = 1
connections = 1
[[session.steps]]
send = '{{"op":"hello","seq":{{seq}},"id":"{{uuid}}"}}'
[[session.steps]]
expect = {{ json = {{ op = "hello" }} }}
name = "hello"
[[close]]
kind = "clean"
timeout = "5s"
"""
"""The scripted session held (``script``): a templated JSON message and a named ``expect``
of its echo; the default is echo mode, one 64-byte message echoed."""

_BATCH = 250
"""Connections opened per step: a burst of 10,000 SYNs overflows the target's listen backlog."""


def rss_bytes() -> int:
    """This process's resident set size (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        resident = int(f.read().split()[1])
    return resident * os.sysconf("SC_PAGE_SIZE")


async def measure_held(
    url: str,
    count: int,
    offer: str | None = None,
    script: bool = False,
    size: int = 64,
    fibers: bool = True,
) -> dict[str, float | str | None]:
    """Hold ``count`` connections to ``url`` at once: RSS before, at the peak, per connection.

    Args:
        url: the target.
        count: connections held at once.
        offer: offer permessage-deflate, this named offer (``deflated`` in the result: how
            many of the held connections the target accepted it on); None: no extension.
        script: run :data:`SCRIPT` before parking instead of echo mode.
        size: the echoed message's size in echo mode (from 32 KiB on, a 15-bit inflater's
            window is written whole, as over a connection's life it eventually is).
        fibers: run each connection as a fiber of the poller (False: a task each).
    """
    await measure_cycles(url, 200, 20)  # warm-up: imports, caches, first allocations
    scenario = cycle_scenario(url, count, count)
    scenario = replace(scenario, session=replace(scenario.session, message_size=size))
    if script:
        scenario = parse_scenario(SCRIPT.format(url=url), source="held")
    if offer is not None:
        target = replace(scenario.target, compression=OFFERS[offer])
        scenario = replace(scenario, target=target)
    release = trio.Event()
    ctx = DriverContext.create(scenario.target, scenario.session, url, seed=1, release=release)
    collector = Collector(labels=("clean",))
    spec = scenario.close[0]
    close_sent: list[float] = []
    all_ended = trio.Event()

    async def connection(plan: ConnectionPlan) -> None:
        record = await run_connection(plan, ctx)
        if record.close_sent is not None:
            close_sent.append(record.close_sent)
        collector.add(record)
        if collector.attempted == count:
            all_ended.set()

    ctx.bind_clock()
    poller = ctx.poller if fibers else None
    gc.collect()
    before = rss_bytes()
    with trio.fail_after(120), load_heap():  # the runner's GC policy, as in a storm run
        async with trio.open_nursery() as nursery:
            if poller is not None:
                poller.drive_in(nursery)
            for start in range(0, count, _BATCH):
                for seq in range(start + 1, min(count, start + _BATCH) + 1):
                    plan = ConnectionPlan(seq=seq, scheduled=trio.current_time(), close=spec)
                    if poller is not None:
                        poller.start(connection(plan))
                    else:
                        nursery.start_soon(connection, plan)
                while ctx.ready_count + collector.attempted < min(count, start + _BATCH):
                    await trio.sleep(0.005)
            gc.collect()
            held = ctx.ready_count
            peak = rss_bytes()
            cpu = resource.getrusage(resource.RUSAGE_SELF)
            released = trio.current_time()
            release_held(release.set)
            await all_ended.wait()
            nursery.cancel_scope.cancel()  # the poller's hub (its fibers have all ended)
    ended = trio.current_time()
    after = resource.getrusage(resource.RUSAGE_SELF)
    counts = collector.counts()
    return {
        "count": count,
        "compression": offer,
        "message_size": None if script else size,
        "deflated": counts.extensions.get(NAME, 0),
        "held": held,
        "clean": counts.outcomes.get("clean", 0),
        "rss_before_bytes": before,
        "rss_held_bytes": peak,
        "rss_per_connection_bytes": round((peak - before) / max(1, held), 1),
        "release_to_first_close_ms": round((min(close_sent) - released) * 1e3, 1),
        "release_to_last_close_ms": round((max(close_sent) - released) * 1e3, 1),
        "release_to_all_ended_ms": round((ended - released) * 1e3, 1),
        "release_cpu_us_per_connection": round(
            (after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime) * 1e6 / max(1, held), 1
        ),
    }
