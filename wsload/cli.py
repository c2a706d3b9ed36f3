"""The ``wsload`` command line: load input, call the library, map errors to exit codes.

No logic lives here. Exit codes (README; defined in ``wsload.exitcodes``): 0 ok, 1 thresholds
or regression failed, 2 invalid input, 3 the tool could not run, 130 interrupted (results still
written).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from wsload import __version__
from wsload.errors import ScenarioError, UsageError, WsloadError
from wsload.exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK

if TYPE_CHECKING:
    from wsload.plan.segment import Segment
    from wsload.report.outputs import RunOutputs
    from wsload.runner.endpoint import MetricsEndpoint

__all__ = ["app", "main"]

app = typer.Typer(
    name="wsload",
    help=(
        "WebSocket close-handshake load tester.\n\n"
        "Examples:\n\n"
        "  wsload run scenarios/quickstart.toml\n\n"
        "  wsload run my.toml --duration 30s --rate 500 --out results/today\n\n"
        "  wsload run my.toml --set target.url=wss://staging.example/ws --set load.rate=500\n\n"
        "  wsload validate scenarios/*.toml\n\n"
        "  wsload search scenarios/search.toml\n\n"
        "  wsload compare results/baselines/ci results/ci-20261121T180000Z\n\n"
        "  wsload report results/quickstart-20261121T180000Z\n\n"
        "  wsload serve --port 9000 --close-reply-delay 20ms\n\n"
        "  wsload calibrate"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def _error(exc: WsloadError) -> None:
    """Print an error, secrets redacted (a bad URL or header may carry a token)."""
    from wsload.report.redact import redact_text

    _err.print(f"wsload: error: {redact_text(str(exc))}", markup=False)


def _fail(exc: WsloadError) -> typer.Exit:
    _error(exc)
    return typer.Exit(exc.exit_code)


def _duration_option(value: str | None, flag: str) -> float | None:
    from wsload.scenario.durations import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


# Comparison options, shared by `run --baseline` and `compare` (parsed in report/outputs.py).
MaxRegression = Annotated[
    str, typer.Option(help="Relative floor: smaller latency changes never count (10%).")
]
MetricTolerance = Annotated[
    list[str] | None,
    typer.Option(help="Per-metric allowance, repeatable: close_handshake.p99=20% or connect=50%."),
]
MaxShareDrop = Annotated[
    list[str] | None,
    typer.Option(help="Percentage points a share may fall, repeatable (default clean=0.5)."),
]
MaxShareRise = Annotated[
    list[str] | None,
    typer.Option(
        help="Points an error outcome's share may rise, repeatable: errors=0.5 (all, default) "
        "or close_timeout=1."
    ),
]
MinSamples = Annotated[
    int, typer.Option(help="Percentiles with fewer samples on either side are not judged.")
]
MinChange = Annotated[
    str, typer.Option(help='Absolute floor: smaller latency changes never count ("500us").')
]
ConfidenceOption = Annotated[
    str, typer.Option(help="Confidence of the intervals; 1 - it is the rank test's level.")
]
MetricsOption = Annotated[
    str | None,
    typer.Option(
        help="Latency metrics judged, comma-separated; others are informational (default: "
        "close_handshake,close_teardown,close_total,step.*)."
    ),
]
JunitOption = Annotated[
    Path | None, typer.Option("--junit", help="Write JUnit XML (each threshold/rule a test).")
]
MarkdownOption = Annotated[
    Path | None,
    typer.Option(help="Write a markdown summary (also appended to $GITHUB_STEP_SUMMARY if set)."),
]
OutOption = Annotated[
    Path | None, typer.Option(help="Results directory (default results/<name>-<UTC time>).")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the path.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")]
BaselineOption = Annotated[
    Path | None, typer.Option(help="Compare with this results dir or summary.json.")
]
NoReportOption = Annotated[bool, typer.Option("--no-report", help="Do not write report.html.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY.PATH=VALUE",
        help="Override a scenario key (repeatable): load.rate=500, close[0].timeout=2s, "
        "target.url='\"wss://staging/ws\"' (TOML value, or a plain string).",
    ),
]
MetricsPortOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=65535,
        help="Serve live Prometheus metrics on this port (/metrics) until the results are "
        "written; 0: any free port (docs/observability.md).",
    ),
]
MetricsHostOption = Annotated[str, typer.Option(help="Address --metrics-port listens on.")]
MetricsLingerOption = Annotated[
    str,
    typer.Option(help="At the end, wait this long at most for a scrape of the final figures."),
]


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    out: OutOption = None,
    set_: SetOption = None,
    duration: Annotated[
        str | None, typer.Option(help='Override load.duration ("30s", "2m").')
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Override load.rate (connections/s).")] = None,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
    workers: Annotated[
        str, typer.Option(help="Generator processes, one segment each: N or auto (= cores).")
    ] = "1",
    segment: Annotated[
        str | None, typer.Option(help="Run only share i/N of the scenario (0 <= i < N).")
    ] = None,
    start_at: Annotated[
        float | None, typer.Option(help="Start the schedule at this wall-clock epoch (s).")
    ] = None,
    cluster: Annotated[
        str | None, typer.Option(help="Run the segments on a Dask scheduler (tcp://host:8786).")
    ] = None,
    baseline: BaselineOption = None,
    max_regression: MaxRegression = "10%",
    metric_tolerance: MetricTolerance = None,
    max_share_drop: MaxShareDrop = None,
    max_share_rise: MaxShareRise = None,
    min_samples: MinSamples = 100,
    min_change: MinChange = "500us",
    metrics: MetricsOption = None,
    confidence: ConfidenceOption = "99%",
    junit: JunitOption = None,
    markdown: MarkdownOption = None,
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
    from wsload.runner.execute import execute_run
    from wsload.scenario.overrides import apply_overrides
    from wsload.scenario.parse import load_scenario

    try:
        loaded = load_scenario(scenario, set_ or ())
        loaded = apply_overrides(
            loaded, duration=_duration_option(duration, "--duration"), rate=rate
        )
        outputs = _run_outputs(
            baseline,
            max_regression,
            metric_tolerance,
            max_share_drop,
            max_share_rise,
            min_samples,
            min_change,
            metrics,
            confidence,
            junit,
            markdown,
            no_report,
        )
        if repeat != 1:
            from wsload.runner.repeat import execute_repeat

            split = segment or start_at is not None or cluster
            if split or record_connections or metrics_port is not None:
                raise UsageError(
                    "--repeat runs whole runs here: drop --segment/--start-at/--cluster/"
                    "--record-connections/--metrics-port"
                )
            code = execute_repeat(
                loaded, repeat, out=out, quiet=quiet, json_out=json_out,
                workers=_workers_option(workers), outputs=outputs,
            )  # fmt: skip
            raise typer.Exit(code)
        code = execute_run(
            loaded,
            out=out,
            quiet=quiet,
            json_out=json_out,
            workers=_workers_option(workers),
            segment=_segment_option(segment),
            start_at=start_at,
            cluster=cluster,
            outputs=outputs,
            record_connections=record_connections,
            metrics=_metrics_option(metrics_port, metrics_host, metrics_linger),
        )
    except WsloadError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)


def _run_outputs(
    baseline: Path | None,
    max_regression: str,
    metric_tolerance: list[str] | None,
    max_share_drop: list[str] | None,
    max_share_rise: list[str] | None,
    min_samples: int,
    min_change: str,
    metrics: str | None,
    confidence: str,
    junit: Path | None,
    markdown: Path | None,
    no_report: bool,
) -> RunOutputs:
    """What `run` and `search` write besides the results: report, comparison, CI files.

    The baseline is read here, before anything runs: a wrong path exits 2 at once.
    """
    from wsload.report.outputs import RunOutputs, parse_tolerances
    from wsload.report.results import load_histograms, load_summary

    return RunOutputs(
        baseline=load_summary(baseline) if baseline is not None else None,
        baseline_name=str(baseline),
        baseline_histograms=load_histograms(baseline) if baseline is not None else None,
        tolerances=parse_tolerances(
            max_regression=max_regression,
            metric_tolerance=metric_tolerance,
            max_share_drop=max_share_drop,
            max_share_rise=max_share_rise,
            min_samples=min_samples,
            min_change=min_change,
            metrics=metrics,
            confidence=confidence,
        ),
        junit=junit,
        markdown=markdown,
        report=not no_report,
    )


def _metrics_option(port: int | None, host: str, linger: str) -> MetricsEndpoint | None:
    """--metrics-port/-host/-linger as one endpoint (None without a port)."""
    if port is None:
        return None
    from wsload.runner.endpoint import MetricsEndpoint

    return MetricsEndpoint(port, host, _duration_option(linger, "--metrics-linger") or 0.0)


def _workers_option(value: str) -> int:
    import os

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
    quiet: QuietOption = False,
    json_out: JsonOption = False,
) -> None:
    """Merge the results of segments (--segment i/N runs) into one result directory.

    Histograms add exactly. Exit 1 when a threshold fails or no segment opened a connection,
    2 when the directories hold different scenarios or overlapping segments; missing segments
    only warn.
    """
    from wsload.runner.merge import merge_results

    try:
        code = merge_results(dirs, out, quiet=quiet, json_out=json_out)
    except WsloadError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)


@app.command()
def search(
    scenario: Annotated[Path, typer.Argument(help='Scenario TOML file with model = "search".')],
    out: OutOption = None,
    set_: SetOption = None,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
    baseline: BaselineOption = None,
    max_regression: MaxRegression = "10%",
    metric_tolerance: MetricTolerance = None,
    max_share_drop: MaxShareDrop = None,
    max_share_rise: MaxShareRise = None,
    min_samples: MinSamples = 100,
    min_change: MinChange = "500us",
    metrics: MetricsOption = None,
    confidence: ConfidenceOption = "99%",
    junit: JunitOption = None,
    markdown: MarkdownOption = None,
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
    from wsload.runner.execute import execute_run
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
        outputs = _run_outputs(
            baseline,
            max_regression,
            metric_tolerance,
            max_share_drop,
            max_share_rise,
            min_samples,
            min_change,
            metrics,
            confidence,
            junit,
            markdown,
            no_report,
        )
        code = execute_run(
            loaded,
            out=out,
            quiet=quiet,
            json_out=json_out,
            outputs=outputs,
            metrics=_metrics_option(metrics_port, metrics_host, metrics_linger),
        )
    except WsloadError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)


@app.command()
def compare(
    baseline: Annotated[Path, typer.Argument(help="Baseline results dir or summary.json.")],
    current: Annotated[Path, typer.Argument(help="Current results dir or summary.json.")],
    max_regression: MaxRegression = "10%",
    metric_tolerance: MetricTolerance = None,
    max_share_drop: MaxShareDrop = None,
    max_share_rise: MaxShareRise = None,
    min_samples: MinSamples = 100,
    min_change: MinChange = "500us",
    metrics: MetricsOption = None,
    confidence: ConfidenceOption = "99%",
    junit: JunitOption = None,
    markdown: MarkdownOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Compare a run with a baseline: per metric and behaviour, the change and a verdict.

    Latency up, clean share down and error-outcome shares up are worse. Exit 1 on a
    regression, 0 otherwise (insufficient samples do not fail), 2 on invalid input.
    """
    import json

    from wsload.report.outputs import compare_files, parse_tolerances
    from wsload.report.terminal import comparison_text

    try:
        tolerances = parse_tolerances(
            max_regression=max_regression,
            metric_tolerance=metric_tolerance,
            max_share_drop=max_share_drop,
            max_share_rise=max_share_rise,
            min_samples=min_samples,
            min_change=min_change,
            metrics=metrics,
            confidence=confidence,
        )
        result, verdict = compare_files(
            baseline, current, tolerances, junit=junit, markdown=markdown
        )
    except WsloadError as exc:
        raise _fail(exc) from None
    if json_out:
        typer.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        typer.echo(comparison_text(result), nl=False)
        if not verdict.passed:
            typer.echo(f"verdict: {verdict.headline()}")
    raise typer.Exit(EXIT_OK if verdict.passed else EXIT_FAILED)


@app.command()
def report(
    results_dir: Annotated[Path, typer.Argument(help="A results directory of `wsload run`.")],
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default RESULTS_DIR/report.html).")
    ] = None,
) -> None:
    """Write report.html: one self-contained page (works offline) with the run's charts."""
    from wsload.report.outputs import write_report

    try:
        path = write_report(results_dir, out=out)
    except WsloadError as exc:
        raise _fail(exc) from None
    typer.echo(str(path))


@app.command()
def validate(
    scenarios: Annotated[list[Path], typer.Argument(help="Scenario TOML files.")],
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only errors and 'ok' lines.")
    ] = False,
    set_: SetOption = None,
) -> None:
    """Check scenario files and print each one resolved (every default filled in).

    Also warns (stderr) when a plan does not fit this machine's file and port limits.
    """
    from wsload.report.redact import redact_scenario
    from wsload.runner.preflight import check_scenario
    from wsload.scenario.dump import scenario_to_toml
    from wsload.scenario.parse import load_scenario

    failed = False
    for path in scenarios:
        try:
            loaded = load_scenario(path, set_ or ())
        except ScenarioError as exc:
            _error(exc)
            failed = True
            continue
        for warning in check_scenario(loaded, processes=1):
            _err.print(f"wsload: warning: {path}: {warning}", markup=False)
        if quiet:
            typer.echo(f"{path}: ok")
        else:
            typer.echo(f"# {path}: ok")
            typer.echo(scenario_to_toml(redact_scenario(loaded)))
    raise typer.Exit(EXIT_INVALID if failed else EXIT_OK)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = 0,
    messages: Annotated[str, typer.Option(help="echo | sink")] = "echo",
    close_reply: Annotated[
        str, typer.Option(help="How a client's Close is answered: normal | never | drop")
    ] = "normal",
    close_reply_delay: Annotated[
        str, typer.Option(help='Delay before answering a Close: "20ms" or "10ms..50ms".')
    ] = "0s",
    close_after: Annotated[
        str | None, typer.Option(help="Server closes each connection this long after upgrade.")
    ] = None,
    close_after_messages: Annotated[
        int | None, typer.Option(help="... or after this many data messages.")
    ] = None,
    close_code: Annotated[int, typer.Option(help="Code of the server's Close.")] = 1000,
    close_reason: Annotated[str, typer.Option(help="Reason of the server's Close.")] = "",
    close_action: Annotated[
        str, typer.Option(help="close | fin | rst (terminate without a Close)")
    ] = "close",
    close_timeout: Annotated[
        str, typer.Option(help="Wait for a client's answer to the server's Close.")
    ] = "30s",
    reject_share: Annotated[float, typer.Option(help="Share 0..1 of upgrades rejected.")] = 0.0,
    reject_status: Annotated[int, typer.Option(help="HTTP status of rejections.")] = 503,
    upgrade_delay: Annotated[
        str, typer.Option(help='Delay before answering the upgrade: "5ms" or "1ms..9ms".')
    ] = "0s",
    shutdown_after: Annotated[
        str | None, typer.Option(help="Shutdown storm this long after start (SIGUSR1: now).")
    ] = None,
    shutdown_code: Annotated[int, typer.Option(help="Close code of the storm.")] = 1001,
    shutdown_grace: Annotated[
        str, typer.Option(help="Storm: terminate stragglers after this (0 = hard).")
    ] = "10s",
    seed: Annotated[int | None, typer.Option(help="Seed for random delays/rejections.")] = None,
    processes: Annotated[
        int, typer.Option(help="Server processes sharing the port (SO_REUSEPORT).")
    ] = 1,
    close_capacity: Annotated[
        float | None,
        typer.Option(help="At most this many Close replies per second; the excess queues."),
    ] = None,
    compression: Annotated[
        str, typer.Option(help="deflate: accept permessage-deflate offers (none: refuse).")
    ] = "none",
    app_mode: Annotated[
        str,
        typer.Option("--app", help="none | pubsub (an application protocol instead of echo)."),
    ] = "none",
    app_pushes: Annotated[int, typer.Option(help="pubsub: pushes after a subscribe.")] = 5,
    app_push_interval: Annotated[
        str, typer.Option(help="pubsub: time between two pushes.")
    ] = "100ms",
    app_bye_code: Annotated[
        int, typer.Option(help="pubsub: Close code answering a bye message.")
    ] = 4000,
) -> None:
    """Run the built-in target server until Ctrl-C; SIGUSR1 starts a shutdown storm.

    Prints "listening on ws://HOST:PORT" when ready and the server-side statistics on exit.
    """
    from wsload.scenario.parse import parse_server_options
    from wsload.server.server import run_server_cli

    options = {
        "messages": messages,
        "close_reply": close_reply,
        "close_reply_delay": _range(close_reply_delay),
        "close_after": close_after,
        "close_after_messages": close_after_messages,
        "app": app_mode,
        "app_pushes": app_pushes,
        "app_push_interval": app_push_interval,
        "app_bye_code": app_bye_code,
        "close_code": close_code,
        "close_reason": close_reason,
        "close_action": close_action,
        "close_timeout": close_timeout,
        "reject_share": reject_share,
        "reject_status": reject_status,
        "upgrade_delay": _range(upgrade_delay),
        "shutdown_after": shutdown_after,
        "shutdown_code": shutdown_code,
        "shutdown_grace": shutdown_grace,
        "close_capacity": close_capacity,
        "compression": compression,
    }
    try:
        config = parse_server_options(options)
        if processes < 1:
            raise UsageError(f"--processes: must be >= 1, got {processes}")
        if processes > 1:
            from wsload.server.multi import run_servers_cli

            summed = run_servers_cli(config, host, port, processes, typer.echo, seed=seed)
            typer.echo(json.dumps(summed, indent=2))
            return
        stats = run_server_cli(config, host, port, typer.echo, seed=seed)
    except WsloadError as exc:
        raise _fail(exc) from None
    typer.echo(stats.render())


def _range(text: str) -> str | dict[str, str]:
    """``"10ms..50ms"`` → a uniform random delay table; anything else stays a duration."""
    low, sep, high = text.partition("..")
    return {"min": low, "max": high} if sep else text


@app.command()
def calibrate(
    cycles: Annotated[int, typer.Option(help="Clean-close cycles per measured run.")] = 2000,
    runs: Annotated[int, typer.Option(help="Measured runs (the median is reported).")] = 5,
    concurrency: Annotated[int, typer.Option(help="Connections in flight at once.")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Measure this machine's generator capacity against the built-in server.

    Prints the client CPU per clean-close cycle and "one process ≈ N cycles/s per core".
    """
    import json

    from wsload.runner.calibrate import calibrate as measure
    from wsload.runner.calibrate import render

    try:
        if min(cycles, runs, concurrency) < 1:
            raise UsageError("--cycles, --runs and --concurrency must be >= 1")
        result = measure(cycles=cycles, runs=runs, concurrency=concurrency)
    except WsloadError as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps(result.as_dict(), indent=2) if json_out else render(result))


@app.command()
def version() -> None:
    """Print the wsload version."""
    typer.echo(f"wsload {__version__}")


def main() -> None:
    """Console-script entry point: never lets a traceback reach the user."""
    try:
        app()
    except KeyboardInterrupt:
        _err.print("wsload: interrupted")
        sys.exit(EXIT_INTERRUPTED)
    finally:  # all written: a Ctrl-C while the interpreter exits must not print a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
