"""What a wsload process needs from the operating system: file limit, signals, a seed.

Used by every process that generates or serves load (``wsload run``/``search``, worker
processes, Dask tasks, the built-in server's children); it measures nothing and imports
nothing from the runner, so a server child loads no more than it needs.
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import resource
import signal
import threading
from collections.abc import Iterator
from dataclasses import replace

import trio

from wsload.scenario.model import Scenario

__all__ = [
    "AFTERMATH_PRIORITY",
    "BURST_PRIORITY",
    "YOUNG_THRESHOLD",
    "raise_nofile_limit",
    "raised_priority",
    "serving_heap",
    "signals_deferred",
    "signals_were_deferred",
    "take_priority_raised",
    "watch_signals",
    "with_seed",
]

_DEFERRED: list[bool] = []
"""Holds True once this process deferred its signals (a run's results frame was entered)."""


def signals_were_deferred() -> bool:
    """Whether a run took over SIGINT/SIGTERM in this process (from then on a signal is a
    stop that still writes the results); False: a signal now ends the process before any
    load ran, with nothing measured."""
    return bool(_DEFERRED)


YOUNG_THRESHOLD = 20_000
"""Allocations between two young garbage collections while load runs (Python's default: 700).
Young objects that die by reference counting before the next collection are never walked, so
fewer, larger young collections walk less; the older generations' thresholds are unchanged."""


def serving_heap() -> None:
    """Set a process that serves connections until it exits (a built-in server process) for
    thousands of long-lived connections: freeze what exists (imports, the server's set-up) out of
    the collector's sight, and collect the young generation every :data:`YOUNG_THRESHOLD`
    allocations.

    With Python's default (700) the collector took 19 % of the CPU of a server process holding
    10,000 connections (py-spy, a 20,000-connection storm against two server processes). The
    generator does the same around each load (``wsload.runner.load.heap``), but undoes it after:
    a server process never runs anything else, so nothing is undone.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def raise_nofile_limit() -> int:
    """Raise RLIMIT_NOFILE to the hard limit (every connection is a file descriptor)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


BURST_PRIORITY = 10
"""How much :func:`raised_priority` lowers the thread's nice value (weight ≈ 9 × nice 0's)."""

AFTERMATH_PRIORITY = 4
"""How much a storm's generator lowers its nice value from its hold (every connection of its
share open) to the end of its load (weight ≈ 1.9 × nice 0's; ``wsload.runner.load.loop``):
enough that its loop is not queued behind every other runnable process of the machine while
the storm's Closes are answered, not so much that the target on the same machine is starved
of the cores it answers them with. After the release every Close of the storm is answered,
read and recorded at once: 100,000 connections (6 generator and 6 server processes on 2 cores)
kept every process runnable for ≈ 15 s, and a generator at nice 0 read a loop lag p99 of
18-23 ms (quiet), 12-13 ms at this step (docs/scale-out.md). From the hold to its instant the
storm is also :data:`BURST_PRIORITY` steps higher, left once its pass's writes are done."""


_raised = [0, 0]
"""Nice steps this process runs raised by now (nested raises summed: a storm's release pass
inside its drain is 14), and the most since :func:`take_priority_raised` last read it."""


def take_priority_raised() -> int:
    """The most nice steps this process ran raised by since the last call (0: never).

    A load reads it at its start and its end (``generator.priority_raised``): a raised
    generator takes cores from a target on the same machine, whose latencies then read longer.
    """
    most, _raised[1] = _raised[1], _raised[0]
    return most


@contextlib.contextmanager
def raised_priority(step: int = BURST_PRIORITY) -> Iterator[bool]:
    """Run the block at a nice value ``step`` lower, where this process may.

    For a burst whose timing is the measurement and which lasts well under a second (a
    storm's release pass: one write per held connection, every Close of the storm started at
    one instant). On a shared machine the pass otherwise gets a fair share of the cores among
    every runnable process, the target's woken by the pass itself included: 16,667 writes of
    ≈ 9 µs each took 0.8-1.7 s of wall time per worker in a quiet 100,000-connection run (12
    processes on 2 cores), 0.15 s alone. Raising a priority needs root (``CAP_SYS_NICE``);
    elsewhere nothing changes. Linux keeps nice per thread: this is the calling thread's.
    A storm's generator also keeps a smaller step, :data:`AFTERMATH_PRIORITY`, from its
    hold to the end of its load (the pass nests inside it).

    Yields:
        Whether the priority was raised.
    """
    try:
        before = os.getpriority(os.PRIO_PROCESS, 0)
        raised = max(-20, before - step)
        os.setpriority(os.PRIO_PROCESS, 0, raised)
    except (OSError, AttributeError):  # not permitted (not root), or not POSIX
        yield False
        return
    _raised[0] += before - raised
    _raised[1] = max(_raised[1], _raised[0])
    try:
        yield True
    finally:
        _raised[0] -= before - raised
        with contextlib.suppress(OSError):  # lowering is always permitted
            os.setpriority(os.PRIO_PROCESS, 0, before)


@contextlib.contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Outside the run's own signal receiver, SIGINT/SIGTERM are noted instead of acted on.

    Python's default SIGINT handler (KeyboardInterrupt, also inside ``trio.run`` when its
    handler is the default) would cut the run off wherever it lands: while the built-in
    server starts or stops, or while summary.json is written, and what was measured would be
    lost. With this handler in place Trio installs no KeyboardInterrupt handler; the run's
    ``watch_signals`` task owns the signals while the load runs, takes the ones noted before it
    started as a stop, and the ones noted after it make the exit code 130.
    """
    late: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield late
        return
    wanted = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, _: late.append(signum)) for sig in wanted}
    _DEFERRED[:] = [True]
    try:
        yield late
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def with_seed(scenario: Scenario) -> Scenario:
    """An unseeded run gets a random seed, recorded in the resolved scenario: repeatable."""
    return replace(scenario, seed=random.randrange(1, 2**31))


async def watch_signals(
    stop: trio.Event, hard_stop: trio.Event, late: list[int] | None = None
) -> None:
    """First SIGINT/SIGTERM: graceful stop. Second: terminate everything now.

    ``late`` holds signals that came before this task listened (while the target started).
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        early = len(late) if late is not None else 0
        if late:
            late.clear()  # acted on here (the run ends interrupted), not again at the end
        if early:
            stop.set()
        if early > 1:
            hard_stop.set()
        async for _ in signals:
            if stop.is_set():
                hard_stop.set()
            else:
                stop.set()
