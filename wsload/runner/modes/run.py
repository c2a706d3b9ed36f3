"""The run mode: one load against one target, written as one result.

The frame (``runner/frame.py``) owns the results directory, the signals and the exit code; the
executor (``executors/executor.py``) decides where the load runs. What is left here is the run
itself: target up, load applied with its intervals logged, the result written.
"""

from __future__ import annotations

import contextlib
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

from wsload.core.record import ConnectionRecord
from wsload.errors import WsloadError
from wsload.metrics.result import SegmentResult
from wsload.metrics.snapshots import IntervalSnapshot
from wsload.plan.segment import WHOLE, Segment
from wsload.process import raise_nofile_limit, watch_signals
from wsload.report.records import ConnectionLog
from wsload.report.redact import redact_scenario
from wsload.runner import result_files
from wsload.runner.executors.executor import Executor, LoadFeed
from wsload.runner.frame import IntervalLogs, Output, RunFrame, live_progress
from wsload.runner.load.abort import AbortWatch
from wsload.runner.modes import preflight
from wsload.runner.modes.machine import Sizing, apply_file_limit
from wsload.runner.targets.deploy import open_deploy
from wsload.runner.targets.target import open_target
from wsload.scenario.dump import scenario_to_toml
from wsload.scenario.model import Scenario

__all__ = ["run_mode"]


def run_mode(
    scenario: Scenario,
    output: Output,
    executor: Executor,
    *,
    segment: Segment = WHOLE,
    owns_server: bool = True,
    record_connections: Path | None = None,
    sizing: Sizing | None = None,
) -> int:
    """Run ``scenario`` (seeded) on ``executor`` and write its result; the exit code.

    Args:
        segment: the share ``executor`` runs, named in the resolved scenario's first line.
        owns_server: this run starts ``[target.process]`` (a ``--segment`` run without
            ``--own-server`` connects to the one another segment started).
        record_connections: also stream every connection's record to this JSON-lines file.
        sizing: what the run uses of this machine (``runner/modes/machine.py``): its decisions are
            printed, applied (file limit, source addresses, built-in server processes) and
            recorded; the scenario written stays the one given.

    What is written or shown carries the scenario with its secrets redacted.
    """
    nofile = raise_nofile_limit() if sizing is None else apply_file_limit(sizing)
    with RunFrame(scenario.name, output) as frame:
        shown = redact_scenario(scenario)
        servers = 1
        if sizing is not None:
            for note in sizing.notes:
                sys.stderr.write(f"wsload: {note}\n")
            scenario = sizing.apply(scenario)
            servers = sizing.server_processes or 1
        checks = preflight.check_scenario(
            scenario, processes=executor.processes, nofile=nofile, server_processes=servers
        )
        for warning in checks:
            sys.stderr.write(f"wsload: warning: {warning}\n")  # stderr: --json keeps stdout clean
        resolved = scenario_to_toml(shown)
        if not segment.whole:  # a comment: the scenario (and its hash) stay the whole one's
            resolved = f"# segment {segment} of this scenario (--segment {segment})\n{resolved}"
        frame.write_scenario(resolved)
        logs = frame.open_logs()
        segment_logs = result_files.SegmentLogs(frame.out_dir, shown, frame.started_at)
        frame.keep_open(contextlib.closing(segment_logs))
        records = None
        if record_connections is not None:
            records = ConnectionLog(record_connections, secrets=scenario.secrets)
            frame.keep_open(records)
        feed = _feed(logs, segment_logs, records)
        watch = None
        if any(threshold.abort for threshold in scenario.thresholds):
            watch = AbortWatch(scenario, feed.stop)
            feed.on_interval = watch.watch(feed.on_interval)
        part, server_stats, extra = trio.run(
            _run, scenario, executor, feed, frame, segment.whole, owns_server, servers
        )
        if part.start_shift_s:  # said once, whatever the output mode: the plan moved
            sys.stderr.write(
                f"wsload: --start-at had passed when the run was ready: the whole schedule "
                f"started {part.start_shift_s:.3f} s late (generator.start_shift_s)\n"
            )
        if sizing is not None:
            extra = {**sizing.summary(executor.processes), **extra}
        aborted = watch.aborted if watch is not None else None
        if aborted is not None and not frame.late:  # stopped by the abort, not by a signal
            part.interrupted = False
            extra = {**extra, "aborted": aborted.as_dict()}
        frame.close_logs()
        data, _ = result_files.write_result(
            frame.out_dir, shown, frame.started_at, part, server_stats, extra
        )
        frame.finish(data, interrupted=part.interrupted)
    return frame.exit_code


def _feed(
    logs: IntervalLogs, segment_logs: result_files.SegmentLogs, records: ConnectionLog | None
) -> LoadFeed:
    """Intervals to the interval log and timeline (and a flush of the record stream)."""
    feed = LoadFeed(on_interval=logs.write_interval, segment_logs=segment_logs)
    if logs.exposition is not None:
        feed.on_live_interval = logs.observe_live
    if records is None:
        return feed

    def on_interval(snapshot: IntervalSnapshot) -> None:
        logs.write_interval(snapshot)
        records.flush()

    def on_record(record: ConnectionRecord) -> None:
        # a segment's records count from the common start: all segments share one time axis
        records.origin = feed.origin if feed.origin is not None else feed.progress.started
        records.add(record)

    feed.on_interval, feed.on_record = on_interval, on_record
    return feed


async def _run(
    scenario: Scenario,
    executor: Executor,
    feed: LoadFeed,
    frame: RunFrame,
    whole: bool,
    owns_server: bool,
    servers: int = 1,
) -> tuple[SegmentResult, dict[str, Any] | None, dict[str, Any]]:
    """Target up, signals watched, live panel drawn, load run; the result, the built-in
    server's statistics and the deploy's summary entries (``targets/deploy.py``).

    ``whole``: the executor runs the whole scenario; a share (``--segment``) audits its own
    connections onto its result (``Local``), so the deploy only adds that up, as for a split.
    ``servers``: the built-in server's processes (``runner/modes/machine.py``).
    """
    failure: WsloadError | None = None
    console = frame.live_console
    async with AsyncExitStack() as stack:
        url, target = await open_target(stack, scenario, servers)
        managed_url, deploy = await open_deploy(
            stack, scenario, frame.out_dir, target, owner=owns_server
        )
        url = managed_url or url
        if deploy is not None and whole:
            feed.on_record = deploy.chain(feed.on_record)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_signals, feed.stop, feed.hard_stop, frame.late)
            lines = frame.progress_lines
            if console is not None:
                nursery.start_soon(live_progress, console, feed.progress, scenario)
            elif lines is not None:
                feed.on_interval = lines.watch(feed.on_interval)
                nursery.start_soon(lines.run, feed.progress, scenario)
            if deploy is not None:
                nursery.start_soon(deploy.run, feed)
            try:
                part = await executor.run(scenario, url, feed)
                if deploy is not None and not whole:
                    await deploy.outlast_segments(scenario.load.drain, feed.stop)
            except WsloadError as exc:  # leaves the nursery bare, not in an exception group
                failure = exc
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    extra = deploy.summary(part) if deploy is not None else {}
    if feed.failed_segments:
        extra["failed_segments"] = feed.failed_segments
    return part, target.stats if target is not None else None, extra
