"""``run``, ``merge`` and ``search``: the commands that generate load and write a result."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wsload.cli.base import app, duration_option, fail
from wsload.cli.options import (
    DEFAULT_COMPARISON,
    BaselineOption,
    Comparison,
    ForceOption,
    JsonOption,
    MetricsHostOption,
    MetricsLingerOption,
    MetricsPortOption,
    NoReportOption,
    OutOption,
    ProgressOption,
    QuietOption,
    SetOption,
    option_group,
)
from wsload.errors import ScenarioError, UsageError, WsloadError

if TYPE_CHECKING:
    from wsload.plan.segment import Segment
    from wsload.runner.endpoint import MetricsEndpoint

__all__ = ["merge", "run", "search"]


@app.command()
@option_group("comparison", Comparison)
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    out: OutOption = None,
    set_: SetOption = None,
    duration: Annotated[
        str | None, typer.Option(help='Override load.duration ("30s", "2m").')
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Override load.rate (connections/s).")] = None,
    force: ForceOption = False,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
    progress_interval: ProgressOption = "10s",
    workers: Annotated[
        str | None,
        typer.Option(
            help="Generator processes, one segment each: N or auto (= cores). "
            "Default: as many as the plan needs on this machine (1 when it fits one)."
        ),
    ] = None,
    segment: Annotated[
        str | None, typer.Option(help="Run only share i/N of the scenario (0 <= i < N).")
    ] = None,
    start_at: Annotated[
        float | None, typer.Option(help="Start the schedule at this wall-clock epoch (s).")
    ] = None,
    own_server: Annotated[
        bool,
        typer.Option(
            "--own-server",
            help="With --segment: this segment starts [target.process] and fires its events.",
        ),
    ] = False,
    cluster: Annotated[
        str | None,
        typer.Option(help="Run the segments on a Dask scheduler (tls://host:8786, tcp://...)."),
    ] = None,
    cluster_ca: Annotated[
        Path | None, typer.Option(help="tls:// cluster: the CA file (default: Dask config).")
    ] = None,
    cluster_cert: Annotated[
        Path | None, typer.Option(help="tls:// cluster: this client's certificate (PEM).")
    ] = None,
    cluster_key: Annotated[
        Path | None, typer.Option(help="tls:// cluster: its key, if not in the certificate file.")
    ] = None,
    baseline: BaselineOption = None,
    comparison: Comparison = DEFAULT_COMPARISON,
    no_report: NoReportOption = False,
    record_connections: Annotated[
        Path | None,
        typer.Option(help="Also stream one JSON line per connection to FILE (redacted)."),
    ] = None,
    repeat: Annotated[
        int, typer.Option(help="Run N times: one results dir, merged, with each run's figures.")
    ] = 1,
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = "127.0.0.1",
    metrics_linger: MetricsLingerOption = "5s",
) -> None:
    """Run a scenario and write results/<name>-<time>/ (summary.json, histograms.hlog, ...).

    Exit 0 when every threshold holds (and no regression against --baseline), 1 when one
    fails or no connection was opened at all, 2 on invalid input, 3 when wsload could not run,
    130 when interrupted (results are still written).
    """
    from wsload.runner.executors.cluster import ClusterTLS
    from wsload.runner.modes.execute import execute_run
    from wsload.runner.options import RunOptions
    from wsload.scenario.overrides import apply_overrides
    from wsload.scenario.parse import load_scenario

    try:
        loaded = load_scenario(scenario, set_ or ())
        loaded = apply_overrides(
            loaded, duration=duration_option(duration, "--duration"), rate=rate
        )
        outputs = comparison.run_outputs(baseline, report=not no_report, out=out)
        options = RunOptions(
            workers=_workers_option(workers or "1"),
            plan_workers=workers is None,
            segment=_segment_option(segment),
            start_at=start_at,
            own_server=own_server,
            cluster=cluster,
            cluster_tls=ClusterTLS(cluster_ca, cluster_cert, cluster_key),
            record_connections=record_connections,
            metrics=_metrics_option(metrics_port, metrics_host, metrics_linger),
            repeat=repeat,
        )
        if repeat != 1:
            from wsload.runner.modes.repeat import execute_repeat

            options.check(loaded)
            code = execute_repeat(
                loaded, repeat, out=out, quiet=quiet, json_out=json_out,
                workers=options.workers, outputs=outputs, force=force,
            )  # fmt: skip
            raise typer.Exit(code)
        code = execute_run(
            loaded,
            options,
            out=out,
            quiet=quiet,
            json_out=json_out,
            outputs=outputs,
            progress_s=_progress_option(progress_interval),
            force=force,
        )
    except WsloadError as exc:
        raise fail(exc) from None
    raise typer.Exit(code)


def _metrics_option(port: int | None, host: str, linger: str) -> MetricsEndpoint | None:
    """--metrics-port/-host/-linger as one endpoint (None without a port)."""
    if port is None:
        return None
    from wsload.runner.endpoint import MetricsEndpoint

    return MetricsEndpoint(port, host, duration_option(linger, "--metrics-linger") or 0.0)


def _progress_option(value: str) -> float:
    """``--progress-interval``: a duration, or 0 for no progress lines."""
    if value.strip() == "0":
        return 0.0
    return duration_option(value, "--progress-interval") or 0.0


def _workers_option(value: str) -> int:
    if value == "auto":
        return os.cpu_count() or 1
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"--workers: expected a number or auto, got {value!r}") from None


def _segment_option(value: str | None) -> Segment:
    from wsload.plan.segment import WHOLE, parse_segment

    return WHOLE if value is None else parse_segment(value)


@app.command()
def merge(
    dirs: Annotated[list[Path], typer.Argument(help="Results directories of segments.")],
    out: Annotated[Path, typer.Option(help="Directory for the merged result.")],
    force: ForceOption = False,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
) -> None:
    """Merge the results of segments (--segment i/N runs) into one result directory.

    Histograms add exactly. Exit 1 when a threshold fails or no segment opened a connection,
    2 when the directories hold different scenarios or overlapping segments; missing segments
    only warn.
    """
    from wsload.runner.modes.merge import merge_results

    try:
        code = merge_results(dirs, out, quiet=quiet, json_out=json_out, force=force)
    except WsloadError as exc:
        raise fail(exc) from None
    raise typer.Exit(code)


@app.command()
@option_group("comparison", Comparison)
def search(
    scenario: Annotated[Path, typer.Argument(help='Scenario TOML file with model = "search".')],
    out: OutOption = None,
    set_: SetOption = None,
    force: ForceOption = False,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
    baseline: BaselineOption = None,
    comparison: Comparison = DEFAULT_COMPARISON,
    no_report: NoReportOption = False,
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = "127.0.0.1",
    metrics_linger: MetricsLingerOption = "5s",
) -> None:
    """Find the highest load that meets every threshold ([load] model = "search").

    Same as `wsload run` on a search scenario; refuses any other scenario. With --baseline
    (another search's results) the capacity found is compared too (lower is worse). Exit 0
    when a capacity was found (and did not regress), 1 when no level passed, it regressed or
    no connection was opened, 2 on invalid input, 3 when wsload could not run, 130 when
    interrupted (the levels measured so far are written).
    """
    from wsload.runner.modes.execute import execute_run
    from wsload.runner.options import RunOptions
    from wsload.scenario.parse import load_scenario

    try:
        loaded = load_scenario(scenario, set_ or ())
        if loaded.load.model != "search":
            raise ScenarioError(
                str(scenario),
                "load.model",
                f'wsload search needs model = "search" and a [load.search] table, '
                f'got "{loaded.load.model}"',
            )
        outputs = comparison.run_outputs(baseline, report=not no_report, out=out)
        options = RunOptions(metrics=_metrics_option(metrics_port, metrics_host, metrics_linger))
        code = execute_run(
            loaded, options, out=out, quiet=quiet, json_out=json_out, outputs=outputs, force=force
        )
    except WsloadError as exc:
        raise fail(exc) from None
    raise typer.Exit(code)
