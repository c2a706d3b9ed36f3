"""``wsload run`` and ``wsload search``: options checked, seed fixed, mode and executor chosen.

The only module that knows every mode and every executor, so that none of them knows another:
a search scenario goes to the search mode, any other to the run mode with the executor the
options ask for (this process, ``--workers``, ``--cluster``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from wsload.errors import UsageError
from wsload.plan.segment import WHOLE, Segment
from wsload.process import with_seed
from wsload.report.outputs import RunOutputs
from wsload.runner.cluster import Cluster, scheduler_address
from wsload.runner.executor import Executor, Local
from wsload.runner.frame import Output
from wsload.runner.run import run_mode
from wsload.runner.search import search_mode
from wsload.runner.segment_run import MAX_START_WAIT
from wsload.runner.workers import Workers
from wsload.scenario.dump import scenario_hash
from wsload.scenario.model import Scenario

if TYPE_CHECKING:
    from wsload.runner.endpoint import MetricsEndpoint

__all__ = ["execute_run"]


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
    metrics: MetricsEndpoint | None = None,
) -> int:
    """Run ``scenario`` (a load, or a capacity search) and write its results; the exit code.

    Args:
        segment: run only this share of the scenario (``wsload.plan.segment``).
        start_at: wall-clock epoch seconds at which the schedule starts (segments run
            apart agree on it); None: now.
        workers: generator processes on this machine, each running one segment (1: this
            process, no start-up cost).
        cluster: a Dask scheduler address: run the segments there (``wsload.runner.cluster``).
        outputs: report.html, baseline comparison, JUnit and markdown (default: the report
            only); a regression against the baseline exits 1 like a failed threshold.
        record_connections: also stream every connection's record to this JSON-lines file
            (one generator process only).
        metrics: serve live Prometheus metrics there until the results are written
            (``wsload.runner.endpoint``; a port in use is a ``UsageError`` before anything
            runs or is written).

    Raises:
        UsageError: options that do not go together.
    """
    output = Output(
        out, quiet, json_out, results_base, outputs=outputs or RunOutputs(), metrics=metrics
    )
    if scenario.load.model == "search":  # a capacity search: many runs, one results directory
        if workers != 1 or cluster is not None or not segment.whole or start_at is not None:
            raise UsageError(
                "a search runs in one process: drop --workers/--cluster/--segment/--start-at"
            )
        if record_connections is not None:
            raise UsageError("--record-connections does not apply to a search (many runs)")
        return search_mode(scenario if scenario.seed is not None else with_seed(scenario), output)
    executor = _executor(segment, start_at, workers, cluster, record_connections)
    if scenario.seed is None:
        # every share of a split run must see the same close mix: the seed must agree
        scenario = with_seed(scenario) if segment.whole else _seed_from_hash(scenario)
    return run_mode(
        scenario, output, executor, segment=segment, record_connections=record_connections
    )


def _executor(
    segment: Segment,
    start_at: float | None,
    workers: int,
    cluster: str | None,
    record_connections: Path | None,
) -> Executor:
    """Where the load runs, from the options (checked against each other)."""
    if workers < 1:
        raise UsageError(f"--workers: must be >= 1, got {workers}")
    if (workers > 1 or cluster) and not segment.whole:
        raise UsageError("--segment runs one share in this process: drop --workers/--cluster")
    if record_connections is not None and (workers > 1 or cluster is not None):
        raise UsageError(
            "--record-connections needs one generator process: drop --workers/--cluster"
        )
    if cluster is not None:
        scheduler_address(cluster)
    if start_at is not None and start_at - time.time() > MAX_START_WAIT:
        raise UsageError(f"--start-at: {start_at:.0f} is more than 24 h ahead")
    if cluster is not None:
        return Cluster(cluster, workers, start_at)
    if workers > 1:
        return Workers(workers, start_at)
    return Local(segment, start_at)


def _seed_from_hash(scenario: Scenario) -> Scenario:
    """An unseeded *segment* gets a seed every machine derives alike: from the scenario."""
    return replace(scenario, seed=int(scenario_hash(scenario)[:8], 16) % (2**31 - 1) + 1)
