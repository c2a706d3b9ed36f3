"""One ``wsload run``: target up, load applied, results written, exit code decided.

The order matters for "nothing already measured is ever lost": the results directory and the
resolved scenario are written before the first connection, the interval log is appended every
second while the run goes, and summary.json is written even when the run was interrupted.
"""

from __future__ import annotations

import json
import random
import resource
import signal
import sys
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio
from rich.console import Console
from rich.live import Live

from wsload.engine.driver import DriverContext
from wsload.metrics.collector import Collector, IntervalSnapshot
from wsload.metrics.result import RunResult
from wsload.report import files, hlog, summary, terminal, thresholds
from wsload.report.compare import render_text
from wsload.report.outputs import RunOutputs, write_run_outputs
from wsload.report.timeline import TimelineWriter
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
    outputs: RunOutputs | None = None,
) -> int:
    """Run ``scenario`` and write its results; return the process exit code.

    ``outputs``: report.html, baseline comparison, JUnit and markdown (default: the report
    only); a regression against the baseline exits 1 like a failed threshold.
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
    files.write_text_atomic(out_dir / "scenario.toml", scenario_to_toml(scenario))
    console = Console(stderr=json_out, highlight=False)
    show_live = not (quiet or json_out) and console.is_terminal
    writer = hlog.IntervalLogWriter(out_dir / "histograms.hlog", started_at)
    timeline = TimelineWriter(out_dir / "timeline.jsonl")
    try:
        collector, load_run, server_stats = trio.run(
            _run, scenario, writer, console if show_live else None, timeline
        )
    finally:
        writer.close()
        timeline.close()
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
    comparison = write_run_outputs(out_dir, data, outputs or RunOutputs())
    if json_out:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif quiet:
        sys.stdout.write(f"{out_dir}\n")
    else:
        console.print(terminal.summary_table(data))
        if comparison is not None:
            console.print(render_text(comparison), markup=False, end="")
        console.print(f"results: {out_dir}")
    if load_run.interrupted:
        return EXIT_INTERRUPTED
    failed = (comparison is not None and not comparison.ok) or any(not v.ok for v in verdicts)
    return EXIT_THRESHOLDS if failed else EXIT_OK


def _with_seed(scenario: Scenario) -> Scenario:
    """An unseeded run gets a random seed, recorded in the resolved scenario: repeatable."""
    return replace(scenario, seed=random.randrange(1, 2**31))


async def _run(
    scenario: Scenario,
    writer: hlog.IntervalLogWriter,
    console: Console | None,
    timeline: TimelineWriter | None = None,
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
            if timeline is not None:
                timeline.write_interval(snapshot)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(_signals, stop, hard_stop)
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
            )
            nursery.cancel_scope.cancel()
    return collector, load_run, target.stats if target is not None else None


async def _signals(stop: trio.Event, hard_stop: trio.Event) -> None:
    """First SIGINT/SIGTERM: graceful stop. Second: terminate everything now."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
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
