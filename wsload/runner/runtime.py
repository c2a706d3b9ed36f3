"""What a run needs from its process: file limit, seed, signals and the live display.

Shared by ``wsload run`` (execute.py), the capacity search (search.py) and the worker
processes; none of it measures anything.
"""

from __future__ import annotations

import contextlib
import json
import random
import resource
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from wsload.report import terminal
from wsload.report.compare import CompareResult, render_text
from wsload.runner.loop import Progress
from wsload.runner.target import BuiltinTarget
from wsload.scenario.model import Scenario

if TYPE_CHECKING:
    from wsload.report.prometheus import Exposition, MetricsEndpoint

__all__ = [
    "comparison_text",
    "live_progress",
    "metrics_endpoint",
    "open_target",
    "raise_nofile_limit",
    "show_result",
    "signals_deferred",
    "watch_signals",
    "with_seed",
]


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


async def live_progress(console: Console, progress: Progress, scenario: Scenario) -> None:
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            live.update(terminal.live_panel(progress, scenario, trio.current_time()))
            await trio.sleep(0.25)


async def open_target(
    stack: AsyncExitStack, scenario: Scenario
) -> tuple[str, BuiltinTarget | None]:
    """The URL to load, and the built-in server when ``url = "builtin"`` (started in its own
    process, stopped when ``stack`` closes; its statistics are then in ``target.stats``)."""
    if not scenario.target.is_builtin:
        return scenario.target.url, None
    target = await stack.enter_async_context(BuiltinTarget(scenario.target.server, scenario.seed))
    return target.url, target


@contextlib.contextmanager
def metrics_endpoint(
    endpoint: MetricsEndpoint | None, *, quiet: bool
) -> Iterator[Exposition | None]:
    """``--metrics-port``: the live Prometheus endpoint for the ``with`` block (None without).

    Entered before anything is written, so a port in use is an exit-2 error that leaves
    nothing behind. Left once the results are written: it first waits (``linger_s`` at most)
    for a scrape to read the final figures, so that the scraper's last sample equals
    summary.json; a Ctrl-C ends that wait, never the process.
    """
    if endpoint is None:
        yield None
        return
    from wsload.report.prometheus import serve_metrics  # only when asked: it costs start-up

    with serve_metrics(endpoint) as exposition:
        if not quiet:
            sys.stderr.write(f"wsload: metrics at {exposition.url}\n")  # stdout stays --json's
        yield exposition
        with signals_deferred() as late:
            exposition.wait_scraped(endpoint.linger_s, stop=lambda: bool(late))


def show_result(
    console: Console,
    data: Mapping[str, Any],
    out_dir: Path,
    *,
    quiet: bool,
    json_out: bool,
    details: Sequence[RenderableType] = (),
) -> None:
    """The end of every command that writes a result (run, search, merge): summary.json on
    stdout (``--json``), the path alone (``--quiet``), or the table, ``details`` and the path."""
    if json_out:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif quiet:
        sys.stdout.write(f"{out_dir}\n")
    else:
        console.print(terminal.summary_table(data))
        for detail in details:
            console.print(detail)
        console.print(f"results: {out_dir}")


def comparison_text(comparison: CompareResult | None) -> list[RenderableType]:
    """The baseline comparison as ``show_result`` details (none without a baseline)."""
    if comparison is None:
        return []
    return [Text(render_text(comparison).rstrip("\n"))]
