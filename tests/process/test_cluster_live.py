"""``--cluster`` runs you can watch, stop and deploy in, on a real Dask ``LocalCluster`` of 2
worker processes: the tasks' live reports reach the parent's progress while they run, a stop
reaches every task, and with a deploy this process owns the managed server
(tests/deploy/sweep_server.py) and fires its event while the tasks audit their own clients
against the event's planned instant and reconnect on their own: the merged summary counts what
the one-process run of the same scenario counts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio
from clusters import local_cluster
from deploy_runs import SERVER, assert_segments_add_up

from wsload.metrics.result import SegmentResult
from wsload.runner.executors.cluster import Cluster
from wsload.runner.executors.executor import LoadFeed
from wsload.runner.modes.execute import execute_run
from wsload.runner.options import RunOptions
from wsload.runner.result_files import SegmentLogs
from wsload.runner.targets.target import open_target
from wsload.scenario.parse import parse_scenario

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.usefixtures("bounded_slow")  # two whole deploy runs


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with local_cluster() as local:
        yield local


def _summary(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    return data


def _deploy_counts(summary: dict[str, Any]) -> dict[str, Any]:
    """What a deploy run counts of its connections, not when things happened."""
    (event,) = summary["events"]
    reconnect = summary["reconnect"]
    keys = ("open_at_signal", "closed_clean", "closed_abnormal", "still_open_at_exit", "codes")
    return {
        "event": {key: event[key] for key in keys},
        "close_received": event["latency_us"]["close_received"]["count"],
        "reconnect": {key: reconnect[key] for key in ("clients", "reconnected", "gave_up")},
        "time_to_reconnect": reconnect["latency_us"]["time_to_reconnect"]["count"],
        "opened": summary["totals"]["opened"],
        "restarts": summary["server_process"]["restarts"],
    }


def test_a_deploy_on_the_cluster_counts_what_one_process_counts(
    tmp_path: Path, cluster: Any
) -> None:
    """This process owns the server and fires the event at its planned instant; the tasks
    audit their clients against that instant and reconnect on their own."""
    argv = [sys.executable, str(SERVER), "--port", "{port}", "--grace", "1"]
    scenario = parse_scenario(
        'name = "deploy"\nseed = 3\n[target]\nurl = "ws://127.0.0.1:{port}/"\n'
        f'[target.process]\ncommand = {json.dumps(argv)}\nstop_timeout = "3s"\n'
        'restart = true\nmax_restarts = 1\n[[target.process.events]]\nat = "2s"\n'
        '[load]\nmodel = "storm"\nconcurrency = 20\ndrain = "10s"\n'
        '[[close]]\nkind = "await_server_close"\ntimeout = "2s"\n'
        '[reconnect]\nbackoff = { initial = "50ms", max = "500ms" }\nmax_attempts = 40\n'
    )
    one, many = tmp_path / "one", tmp_path / "cluster"
    assert execute_run(scenario, RunOptions(), out=one, quiet=True) == 0
    options = RunOptions(cluster=cluster.scheduler_address)
    assert execute_run(scenario, options, out=many, quiet=True) == 0
    summary = _summary(many)
    assert summary["generator"]["processes"] == 2
    assert _deploy_counts(summary) == _deploy_counts(_summary(one))
    counts = _deploy_counts(summary)
    assert counts["event"]["open_at_signal"] == counts["reconnect"]["reconnected"] == 20
    assert counts["event"]["codes"] == {"1001": 20} and counts["restarts"] == 1
    # counted from the planned instant, which the signal follows by a few ms at most
    (event,) = summary["events"]
    assert event["exit_s"] > 0 and event["exit_status"] == 0
    assert event["latency_us"]["close_received"]["max"] < 1_000_000
    assert_segments_add_up(many, summary)


LONG = """
name = "live"
seed = 5
[target]
url = "builtin"
[load]
model = "arrival"
rate = 40
duration = "60s"
[session]
hold = "200ms"
"""


def test_a_cluster_run_reports_live_and_stops_when_asked(tmp_path: Path, cluster: Any) -> None:
    """Progress and the merged live interval come from both tasks while they run; the stop
    reaches both tasks, which end their 60 s schedule early with their results."""
    scenario = parse_scenario(LONG)
    logs = SegmentLogs(tmp_path, scenario, datetime.now(UTC))
    seen: dict[str, Any] = {}

    async def main() -> SegmentResult:
        async with AsyncExitStack() as stack:
            url, _ = await open_target(stack, scenario)
            feed = LoadFeed(lambda _: None, logs)
            progress = feed.progress

            async def watch() -> None:
                while progress.last_interval is None or progress.attempted < 40:
                    await trio.sleep(0.05)
                seen["attempted"], seen["interval"] = progress.attempted, progress.last_interval
                feed.stop.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                part = await Cluster(cluster.scheduler_address, 2).run(scenario, url, feed)
                nursery.cancel_scope.cancel()
            return part

    try:
        part = trio.run(main)
    finally:
        logs.close()
    # a merged interval exists only once both tasks reported that second
    assert seen["attempted"] >= 40 and seen["interval"].index >= 0
    assert part.interrupted and part.processes == 2
    # stopped long before the schedule's 60 s (2,400 connections) could have run
    assert part.intended is not None and seen["attempted"] <= part.intended < 2_400


@pytest.fixture
def lone_cluster() -> Iterator[Any]:
    """A cluster of its own: the test kills one of its workers."""
    with local_cluster() as local:
        yield local


def test_a_task_whose_worker_dies_is_named_in_the_verdict_with_what_it_measured(
    tmp_path: Path, lone_cluster: Any
) -> None:
    """The Dask worker running segment 1/2 is SIGKILLed once its task has run a while: the
    run does not wait for a task Dask cannot finish, keeps the other segment's result and
    names the dead one with what its live reports had brought."""
    import os
    import signal
    import threading
    import time

    from wsload.runner.executors.cluster import START_MARGIN

    with distributed.Client(lone_cluster) as client:
        pids = client.run(os.getpid)
    victim_address = sorted(pids)[1]  # segment 1/2 is pinned to the second worker

    def kill_when_measured() -> None:
        with distributed.Client(lone_cluster) as watcher:
            deadline = time.monotonic() + 60
            while not watcher.processing(workers=[victim_address])[victim_address]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        time.sleep(START_MARGIN + 3.5)  # the common start, then three live reports
        os.kill(pids[victim_address], signal.SIGKILL)

    killer = threading.Thread(target=kill_when_measured, daemon=True)
    killer.start()
    scenario = parse_scenario(LONG.replace('duration = "60s"', 'duration = "10s"'))
    out = tmp_path / "out"
    options = RunOptions(cluster=lone_cluster.scheduler_address)
    started = time.monotonic()
    code = execute_run(scenario, options, out=out, quiet=True)
    killer.join(timeout=5)
    assert code == 1  # inconclusive: a share of the plan is missing
    assert time.monotonic() - started < 60  # not the bound of a task that never ends
    summary = _summary(out)
    (dead,) = summary["failed_segments"]
    assert dead["segment"] == "1/2" and "left the cluster" in dead["error"]
    assert dead["intervals"] >= 1 and dead["attempted"] > 0 and dead["opened"] > 0
    assert summary["generator"]["segment"] == "0/2"
    assert summary["verdict"] == "inconclusive"
    (reason,) = [r for r in summary["reasons"] if r["code"] == "segment_failed"]
    assert "1/2" in reason["message"]
