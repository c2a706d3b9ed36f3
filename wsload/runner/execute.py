"""One ``wsload run``: target up, load applied, results written, exit code decided.

The order matters for "nothing already measured is ever lost": the results directory and the
resolved scenario are written before the first connection, the interval log is appended every
second while the run goes, and summary.json is written even when the run was interrupted.
"""

from __future__ import annotations

import contextlib
import json
import random
import resource
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio
from rich.console import Console
from rich.live import Live

from wsload.core.record import ConnectionRecord
from wsload.engine.driver import DriverContext
from wsload.metrics.collector import Collector, IntervalSnapshot
from wsload.metrics.result import RunResult
from wsload.report import files, hlog, summary, terminal, thresholds
from wsload.report.records import ConnectionLog
from wsload.report.redact import redact_scenario
from wsload.runner.loop import LoadRun, Progress, run_load
from wsload.runner.target import BuiltinTarget
from wsload.scenario.dump import scenario_to_toml
from wsload.scenario.model import Scenario

__all__ = ["execute_run", "raise_nofile_limit"]

EXIT_OK, EXIT_THRESHOLDS, EXIT_INTERRUPTED = 0, 1, 130


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


def execute_run(
    scenario: Scenario,
    *,
    out: Path | None = None,
    quiet: bool = False,
    json_out: bool = False,
    results_base: Path = Path("results"),
    record_connections: Path | None = None,
) -> int:
    """Run ``scenario`` and write its results; return the process exit code.

    ``record_connections``: also stream every connection's record to this JSON-lines file.
    What is written or shown carries the scenario with its secrets redacted.
    """
    raise_nofile_limit()
    if scenario.seed is None:
        scenario = _with_seed(scenario)
    started_at = datetime.now(UTC)
    out_dir = (
        files.make_results_dir(results_base, scenario.name, started_at)
        if out is None
        else (files.prepare_results_dir(out))
    )
    console = Console(stderr=json_out, highlight=False)
    show_live = not (quiet or json_out) and console.is_terminal
    with _signals_deferred() as late:
        shown = redact_scenario(scenario)
        files.write_text_atomic(out_dir / "scenario.toml", scenario_to_toml(shown))
        writer = hlog.IntervalLogWriter(out_dir / "histograms.hlog", started_at)
        with contextlib.ExitStack() as logs:
            logs.callback(writer.close)
            log = None
            if record_connections is not None:
                log = logs.enter_context(ConnectionLog(record_connections))
            collector, load_run, server_stats = trio.run(
                _run, scenario, writer, console if show_live else None, late, log
            )
        code = _write_results(
            shown,
            started_at,
            out_dir,
            collector,
            load_run,
            server_stats,
            console,
            quiet,
            json_out,
        )
    return EXIT_INTERRUPTED if late else code


def _write_results(
    scenario: Scenario,
    started_at: datetime,
    out_dir: Path,
    collector: Collector,
    load_run: LoadRun,
    server_stats: dict[str, Any] | None,
    console: Console,
    quiet: bool,
    json_out: bool,
) -> int:
    result = RunResult(
        scenario=scenario,
        started_at=started_at,
        duration_s=load_run.ended - load_run.started,
        collector=collector,
        loop_lag=load_run.lag.loop_lag,
        saturated=load_run.lag.saturated,
        cpu_seconds=load_run.cpu_seconds,
        processes=1,
        server=server_stats,
        interrupted=load_run.interrupted,
        intervals=load_run.intervals,
        intended=load_run.intended,
        start_lag=load_run.lag.start_lag,
    )
    data = summary.build_summary(result)
    verdicts = thresholds.evaluate(scenario.thresholds, data)
    data = summary.attach_thresholds(data, verdicts)
    files.write_json_atomic(out_dir / "summary.json", data)
    if json_out:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif quiet:
        sys.stdout.write(f"{out_dir}\n")
    else:
        console.print(terminal.summary_table(data))
        console.print(f"results: {out_dir}")
    if load_run.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_THRESHOLDS if any(not v.ok for v in verdicts) else EXIT_OK


@contextlib.contextmanager
def _signals_deferred() -> Iterator[list[int]]:
    """Outside the run's own signal receiver, SIGINT/SIGTERM are noted instead of acted on.

    Python's default SIGINT handler (KeyboardInterrupt, also inside ``trio.run`` when its
    handler is the default) would cut the run off wherever it lands: while the built-in
    server starts or stops, or while summary.json is written, and what was measured would be
    lost. With this handler in place Trio installs no KeyboardInterrupt handler; the run's
    ``_signals`` task owns the signals while the load runs, takes the ones noted before it
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


def _with_seed(scenario: Scenario) -> Scenario:
    """An unseeded run gets a random seed, recorded in the resolved scenario: repeatable."""
    return replace(scenario, seed=random.randrange(1, 2**31))


async def _run(
    scenario: Scenario,
    writer: hlog.IntervalLogWriter,
    console: Console | None,
    late: list[int] | None = None,
    log: ConnectionLog | None = None,
) -> tuple[Collector, LoadRun, dict[str, Any] | None]:
    collector = Collector(labels=tuple(spec.label for spec in scenario.close))
    progress = Progress()
    stop, hard_stop = trio.Event(), trio.Event()
    target: BuiltinTarget | None = None
    async with AsyncExitStack() as stack:
        url = scenario.target.url
        if scenario.target.is_builtin:
            target = await stack.enter_async_context(
                BuiltinTarget(scenario.target.server, scenario.seed)
            )
            url = target.url
        ctx = DriverContext.create(
            scenario.target,
            scenario.session,
            url,
            seed=scenario.seed,
        )

        def on_interval(snapshot: IntervalSnapshot) -> None:
            writer.write_interval(snapshot)
            if log is not None:
                log.flush()

        def on_record(record: ConnectionRecord) -> None:
            assert log is not None
            log.origin = progress.started
            log.add(record)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(_signals, stop, hard_stop, late)
            if console is not None:
                nursery.start_soon(_live, console, progress, scenario)
            load_run = await run_load(
                scenario,
                ctx,
                collector,
                progress=progress,
                on_interval=on_interval,
                stop=stop,
                hard_stop=hard_stop,
                on_record=on_record if log is not None else None,
            )
            nursery.cancel_scope.cancel()
    return collector, load_run, target.stats if target is not None else None


async def _signals(stop: trio.Event, hard_stop: trio.Event, late: list[int] | None = None) -> None:
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


async def _live(console: Console, progress: Progress, scenario: Scenario) -> None:
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            live.update(terminal.live_panel(progress, scenario, trio.current_time()))
            await trio.sleep(0.25)
