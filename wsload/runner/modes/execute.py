"""``wsload run`` and ``wsload search``: options checked, seed fixed, mode and executor chosen.

The only module that knows every mode and every executor, so that none of them knows another:
a search scenario goes to the search mode, any other to the run mode with the executor the
options ask for (this process, ``--workers``, ``--cluster``), or, without ``--workers``, the one
the plan needs on this machine (``runner/modes/machine.py``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from wsload.process import with_seed
from wsload.report.outputs import RunOutputs
from wsload.runner.executors.cluster import Cluster
from wsload.runner.executors.executor import Executor, Local
from wsload.runner.executors.workers import Workers
from wsload.runner.frame import Output
from wsload.runner.modes.machine import Limits, size
from wsload.runner.modes.run import run_mode
from wsload.runner.modes.search import search_mode
from wsload.runner.options import RunOptions
from wsload.scenario.dump import scenario_hash
from wsload.scenario.model import Scenario

__all__ = ["execute_run"]


def execute_run(
    scenario: Scenario,
    options: RunOptions | None = None,
    *,
    out: Path | None = None,
    quiet: bool = False,
    json_out: bool = False,
    results_base: Path = Path("results"),
    outputs: RunOutputs | None = None,
    progress_s: float = 10.0,
    force: bool = False,
) -> int:
    """Run ``scenario`` (a load, or a capacity search) and write its results; the exit code.

    Args:
        options: where the load runs and what is recorded besides the results, checked
            against each other and the scenario before anything runs (default: this
            process, the whole scenario).
        outputs: report.html, baseline comparison, JUnit and markdown (default: the report
            only); a regression against the baseline exits 1 like a failed threshold.
        progress_s: not on a terminal, a progress line this often (0: none).
        force: ``out`` may hold another result (its wsload files are replaced).

    Raises:
        UsageError: options that do not go together (``RunOptions.check``); a
            ``--metrics-port`` in use, before anything runs or is written.
    """
    options = options or RunOptions()
    options.check(scenario)
    output = Output(
        out,
        quiet,
        json_out,
        results_base,
        outputs=outputs or RunOutputs(),
        metrics=options.metrics,
        progress_s=progress_s,
        force=force,
    )
    if scenario.load.model == "search":  # a capacity search: many runs, one results directory
        return search_mode(scenario if scenario.seed is not None else with_seed(scenario), output)
    if scenario.seed is None:
        # every share of a split run must see the same close mix: the seed must agree
        whole = options.segment.whole
        scenario = with_seed(scenario) if whole else _seed_from_hash(scenario)
    sizing = size(
        scenario,
        Limits.here(),
        workers=None if options.plan_workers else options.workers,
        split=options.splittable,
    )
    return run_mode(
        scenario,
        output,
        _executor(options, sizing.workers),
        segment=options.segment,
        owns_server=options.segment.whole or options.own_server,
        record_connections=options.record_connections,
        sizing=sizing,
    )


def _executor(options: RunOptions, workers: int) -> Executor:
    """Where the load runs (the options already checked; ``workers`` as sized)."""
    if options.cluster is not None:
        return Cluster(options.cluster, options.workers, options.start_at, options.cluster_tls)
    if workers > 1:
        return Workers(workers, options.start_at)
    return Local(options.segment, options.start_at)


def _seed_from_hash(scenario: Scenario) -> Scenario:
    """An unseeded *segment* gets a seed every machine derives alike: from the scenario."""
    return replace(scenario, seed=int(scenario_hash(scenario)[:8], 16) % (2**31 - 1) + 1)
