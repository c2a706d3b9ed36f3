"""``compare``, ``report`` and ``validate``: the commands that read results and scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wsload.cli.base import app, err, error, fail
from wsload.cli.options import DEFAULT_COMPARISON, Comparison, SetOption, option_group
from wsload.errors import ScenarioError, WsloadError
from wsload.exitcodes import EXIT_FAILED, EXIT_INVALID, EXIT_OK

__all__ = ["compare", "report", "validate"]


@app.command()
@option_group("comparison", Comparison)
def compare(
    baseline: Annotated[Path, typer.Argument(help="Baseline results dir or summary.json.")],
    current: Annotated[Path, typer.Argument(help="Current results dir or summary.json.")],
    comparison: Comparison = DEFAULT_COMPARISON,
    json_out: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Compare a run with a baseline: per metric and behaviour, the change and a verdict.

    Latency up, clean share down and error-outcome shares up are worse. Exit 1 on a
    regression or when the current run cannot be judged (interrupted, saturated: the verdict
    is inconclusive), 0 otherwise (insufficient samples do not fail), 2 on invalid input.
    """
    import json

    from wsload.report.outputs import compare_files
    from wsload.report.terminal import comparison_text

    try:
        result, verdict = compare_files(
            baseline,
            current,
            comparison.tolerances(),
            junit=comparison.junit,
            markdown=comparison.markdown,
        )
    except WsloadError as exc:
        raise fail(exc) from None
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
        raise fail(exc) from None
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
    from wsload.runner.modes.preflight import check_scenario
    from wsload.scenario.dump import scenario_to_toml
    from wsload.scenario.parse import load_scenario

    failed = False
    for path in scenarios:
        try:
            loaded = load_scenario(path, set_ or ())
        except ScenarioError as exc:
            error(exc)
            failed = True
            continue
        for warning in check_scenario(loaded, processes=1):
            err.print(f"wsload: warning: {path}: {warning}", markup=False)
        if quiet:
            typer.echo(f"{path}: ok")
        else:
            typer.echo(f"# {path}: ok")
            typer.echo(scenario_to_toml(redact_scenario(loaded)))
    raise typer.Exit(EXIT_INVALID if failed else EXIT_OK)
