"""One ``wsload run``: target up, load applied, results written, exit code decided.

The order matters for "nothing already measured is ever lost": the results directory and the
resolved scenario are written before the first connection, the interval log is appended every
second while the run goes, and summary.json is written even when the run was interrupted.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio
from rich.console import Console

from wsload.core.record import ConnectionRecord
from wsload.errors import UsageError, WsloadError
from wsload.metrics.collector import IntervalSnapshot
from wsload.report import files, hlog
from wsload.report.outputs import RunOutputs, write_run_outputs
from wsload.report.records import ConnectionLog
from wsload.report.redact import redact_scenario
from wsload.report.timeline import TimelineWriter
from wsload.runner import preflight, result_files
from wsload.runner.deploy import check_deploy, open_deploy
from wsload.runner.loop import Progress
from wsload.runner.runtime import (
    comparison_text,
    live_progress,
    open_target,
    raise_nofile_limit,
    show_result,
    signals_deferred,
    watch_signals,
    with_seed,
)
from wsload.runner.segment import WHOLE, Segment
from wsload.runner.segment_run import MAX_START_WAIT, SegmentResult, run_segment
from wsload.scenario.dump import scenario_hash, scenario_to_toml
from wsload.scenario.model import Scenario

__all__ = ["execute_run", "raise_nofile_limit"]  # the latter re-exported from runtime

EXIT_OK, EXIT_THRESHOLDS, EXIT_INTERRUPTED = 0, 1, 130


def execute_run(
    scenario: Scenario,
    *,
    out: Path | None = None,
    quiet: bool = False,
    json_out: bool = False,
    results_base: Path = Path("results"),
    segment: Segment = WHOLE,
    start_at: float | None = None,
    workers: int = 1,
    cluster: str | None = None,
    outputs: RunOutputs | None = None,
    record_connections: Path | None = None,
) -> int:
    """Run ``scenario`` and write its results; return the process exit code.

    Args:
        segment: run only this share of the scenario (``wsload.runner.segment``).
        start_at: wall-clock epoch seconds at which the schedule starts (segments run
            apart agree on it); None: now.
        workers: generator processes on this machine, each running one segment (1: this
            process, no start-up cost).
        cluster: a Dask scheduler address: run the segments there (``wsload.runner.cluster``).
        outputs: report.html, baseline comparison, JUnit and markdown (default: the report
            only); a regression against the baseline exits 1 like a failed threshold.
        record_connections: also stream every connection's record to this JSON-lines file
            (one generator process only).

    What is written or shown carries the scenario with its secrets redacted.
    """
    check_deploy(scenario, one_process=workers == 1 and cluster is None and segment.whole)
    if scenario.load.model == "search":  # a capacity search: many runs, one results directory
        if workers != 1 or cluster is not None or not segment.whole or start_at is not None:
            raise UsageError(
                "a search runs in one process: drop --workers/--cluster/--segment/--start-at"
            )
        if record_connections is not None:
            raise UsageError("--record-connections does not apply to a search (many runs)")
        from wsload.runner.search import execute_search

        return execute_search(
            scenario,
            out=out,
            quiet=quiet,
            json_out=json_out,
            results_base=results_base,
            outputs=outputs,
        )
    nofile = raise_nofile_limit()
    if workers < 1:
        raise UsageError(f"--workers: must be >= 1, got {workers}")
    if (workers > 1 or cluster) and not segment.whole:
        raise UsageError("--segment runs one share in this process: drop --workers/--cluster")
    if record_connections is not None and (workers > 1 or cluster is not None):
        raise UsageError(
            "--record-connections needs one generator process: drop --workers/--cluster"
        )
    if cluster is not None:
        from wsload.runner.cluster import scheduler_address

        scheduler_address(cluster)
    if start_at is not None and start_at - time.time() > MAX_START_WAIT:
        raise UsageError(f"--start-at: {start_at:.0f} is more than 24 h ahead")
    if scenario.seed is None:
        # every share of a split run must see the same close mix: the seed must agree
        scenario = with_seed(scenario) if segment.whole else _seed_from_hash(scenario)
    started_at = datetime.now(UTC)
    out_dir = (
        files.make_results_dir(results_base, scenario.name, started_at)
        if out is None
        else (files.prepare_results_dir(out))
    )
    console = Console(stderr=json_out, highlight=False)
    show_live = not (quiet or json_out) and console.is_terminal
    for warning in preflight.check_scenario(scenario, processes=workers, nofile=nofile):
        sys.stderr.write(f"wsload: warning: {warning}\n")  # stderr: --json keeps stdout clean
    with signals_deferred() as late:
        shown = redact_scenario(scenario)
        resolved = scenario_to_toml(shown)
        if not segment.whole:  # a comment: the scenario (and its hash) stay the whole one's
            resolved = f"# segment {segment} of this scenario (--segment {segment})\n{resolved}"
        files.write_text_atomic(out_dir / "scenario.toml", resolved)
        with contextlib.ExitStack() as logs:
            writer = hlog.IntervalLogWriter(out_dir / "histograms.hlog", started_at)
            logs.callback(writer.close)
            segment_logs = result_files.SegmentLogs(out_dir, shown, started_at)
            logs.callback(segment_logs.close)
            timeline = TimelineWriter(out_dir / "timeline.jsonl")
            logs.callback(timeline.close)
            log = None
            if record_connections is not None:
                log = logs.enter_context(ConnectionLog(record_connections))
            run_args = _RunArgs(
                segment, start_at, workers, cluster, segment_logs, timeline, late, log, out_dir
            )
            part, server_stats, extra = trio.run(
                _run, scenario, writer, console if show_live else None, run_args
            )
        data, verdicts = result_files.write_result(
            out_dir, shown, started_at, part, server_stats, extra
        )
        comparison = write_run_outputs(out_dir, data, outputs or RunOutputs())
        show_result(
            console,
            data,
            out_dir,
            quiet=quiet,
            json_out=json_out,
            details=comparison_text(comparison),
        )
    if part.interrupted or late:
        return EXIT_INTERRUPTED
    failed = (comparison is not None and not comparison.ok) or any(not v.ok for v in verdicts)
    return EXIT_THRESHOLDS if failed else EXIT_OK


def _seed_from_hash(scenario: Scenario) -> Scenario:
    """An unseeded *segment* gets a seed every machine derives alike: from the scenario."""
    return replace(scenario, seed=int(scenario_hash(scenario)[:8], 16) % (2**31 - 1) + 1)


@dataclass(frozen=True, slots=True)
class _RunArgs:
    segment: Segment
    start_at: float | None
    workers: int
    cluster: str | None
    segment_logs: result_files.SegmentLogs
    timeline: TimelineWriter | None = None
    late: list[int] | None = None  # signals noted before the run listened (_signals_deferred)
    log: ConnectionLog | None = None  # --record-connections
    out_dir: Path | None = None  # results directory (server.log of a managed target)


async def _run(
    scenario: Scenario,
    writer: hlog.IntervalLogWriter,
    console: Console | None,
    args: _RunArgs,
) -> tuple[SegmentResult, dict[str, Any] | None, dict[str, Any]]:
    progress = Progress()
    stop, hard_stop = trio.Event(), trio.Event()
    async with AsyncExitStack() as stack:
        url, target = await open_target(stack, scenario)
        assert args.out_dir is not None
        managed_url, deploy = await open_deploy(stack, scenario, args.out_dir, target)
        url = managed_url or url

        def on_interval(snapshot: IntervalSnapshot) -> None:
            writer.write_interval(snapshot)
            if args.timeline is not None:
                args.timeline.write_interval(snapshot)
            if args.log is not None:
                args.log.flush()

        def on_record(record: ConnectionRecord) -> None:
            if deploy is not None:
                deploy.on_record(record)
            if args.log is not None:
                args.log.origin = progress.started
                args.log.add(record)

        failure: WsloadError | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_signals, stop, hard_stop, args.late)
            if console is not None:
                nursery.start_soon(live_progress, console, progress, scenario)
            if deploy is not None:
                nursery.start_soon(deploy.run, progress)
            try:
                part = await _load(
                    scenario,
                    url,
                    args,
                    progress,
                    on_interval,
                    stop,
                    hard_stop,
                    on_record if args.log is not None or deploy is not None else None,
                )
            except WsloadError as exc:  # leaves the nursery bare, not in an exception group
                failure = exc
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    extra = deploy.summary() if deploy is not None else {}
    return part, target.stats if target is not None else None, extra


async def _load(
    scenario: Scenario,
    url: str,
    args: _RunArgs,
    progress: Progress,
    on_interval: Callable[[IntervalSnapshot], None],
    stop: trio.Event,
    hard_stop: trio.Event,
    on_record: Callable[[ConnectionRecord], None] | None,
) -> SegmentResult:
    """The load itself: in this process, in worker processes, or on a Dask cluster."""
    if args.cluster is not None:
        from wsload.runner.cluster import run_on_cluster

        return await run_on_cluster(
            scenario, url, args.cluster, args.workers, on_interval, args.segment_logs, args.start_at
        )
    if args.workers > 1:
        from wsload.runner.workers import run_workers

        return await run_workers(
            scenario,
            url,
            args.workers,
            progress,
            on_interval,
            args.segment_logs,
            stop,
            hard_stop,
            args.start_at,
        )
    return await run_segment(
        scenario,
        url,
        segment=args.segment,
        start_at=args.start_at,
        progress=progress,
        on_interval=on_interval,
        stop=stop,
        hard_stop=hard_stop,
        on_record=on_record,
    )
