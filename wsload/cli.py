"""The ``wsload`` command line: load input, call the library, map errors to exit codes.

No logic lives here. Exit codes (README): 0 ok, 1 thresholds or regression failed, 2 invalid
input, 3 the tool could not run, 130 interrupted (results still written).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from wsload import __version__
from wsload.errors import ScenarioError, UsageError, WsloadError

__all__ = ["app", "main"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_TOOL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

app = typer.Typer(
    name="wsload",
    help=(
        "WebSocket close-handshake load tester.\n\n"
        "Examples:\n\n"
        "  wsload run scenarios/quickstart.toml\n\n"
        "  wsload run my.toml --duration 30s --rate 500 --out results/today\n\n"
        "  wsload validate scenarios/*.toml\n\n"
        "  wsload serve --port 9000 --close-reply-delay 20ms"
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


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    out: Annotated[
        Path | None, typer.Option(help="Results directory (default results/<name>-<UTC time>).")
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help='Override load.duration ("30s", "2m").')
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Override load.rate (connections/s).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the path.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")] = False,
    record_connections: Annotated[
        Path | None,
        typer.Option(help="Also stream one JSON line per connection to FILE (redacted)."),
    ] = None,
) -> None:
    """Run a scenario and write results/<name>-<time>/ (summary.json, histograms.hlog, ...).

    Exit 0 when every threshold holds, 1 when one fails, 2 on invalid input, 3 when wsload
    could not run, 130 when interrupted (results are still written).
    """
    from wsload.runner.execute import execute_run
    from wsload.scenario.parse import apply_overrides, load_scenario

    try:
        loaded = load_scenario(scenario)
        loaded = apply_overrides(
            loaded, duration=_duration_option(duration, "--duration"), rate=rate
        )
        code = execute_run(
            loaded,
            out=out,
            quiet=quiet,
            json_out=json_out,
            record_connections=record_connections,
        )
    except WsloadError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)


@app.command()
def validate(
    scenarios: Annotated[list[Path], typer.Argument(help="Scenario TOML files.")],
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only errors and 'ok' lines.")
    ] = False,
) -> None:
    """Check scenario files and print each one resolved (every default filled in)."""
    from wsload.report.redact import redact_scenario
    from wsload.scenario.dump import scenario_to_toml
    from wsload.scenario.parse import load_scenario

    failed = False
    for path in scenarios:
        try:
            loaded = load_scenario(path)
        except ScenarioError as exc:
            _error(exc)
            failed = True
            continue
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
    }
    try:
        config = parse_server_options(options)
        stats = run_server_cli(config, host, port, typer.echo, seed=seed)
    except WsloadError as exc:
        raise _fail(exc) from None
    typer.echo(stats.render())


def _range(text: str) -> str | dict[str, str]:
    """``"10ms..50ms"`` → a uniform random delay table; anything else stays a duration."""
    low, sep, high = text.partition("..")
    return {"min": low, "max": high} if sep else text


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
