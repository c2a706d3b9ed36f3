"""``serve``, ``calibrate`` and ``version``: the built-in target server and the machine's
measure."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import typer

from wsload import __version__
from wsload._compiled import status
from wsload.cli.base import app, fail
from wsload.cli.options import option_group
from wsload.errors import UsageError, WsloadError

__all__ = ["ServerOptions", "calibrate", "serve", "version"]

_RANGES = ("close_reply_delay", "upgrade_delay")
"""Delays given as ``"10ms..50ms"``: a uniform random delay (``{min, max}`` in TOML)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ServerOptions:
    """``wsload serve``'s server behaviour, one option per ``[target.server]`` key (the field
    names are the keys): parsed by the scenario's own rules, so the flags and the TOML table
    cannot drift apart."""

    messages: Annotated[str, typer.Option(help="echo | sink")] = "echo"
    close_reply: Annotated[
        str, typer.Option(help="How a client's Close is answered: normal | never | drop")
    ] = "normal"
    close_reply_delay: Annotated[
        str, typer.Option(help='Delay before answering a Close: "20ms" or "10ms..50ms".')
    ] = "0s"
    close_after: Annotated[
        str | None, typer.Option(help="Server closes each connection this long after upgrade.")
    ] = None
    close_after_messages: Annotated[
        int | None, typer.Option(help="... or after this many data messages.")
    ] = None
    close_code: Annotated[int, typer.Option(help="Code of the server's Close.")] = 1000
    close_reason: Annotated[str, typer.Option(help="Reason of the server's Close.")] = ""
    close_action: Annotated[
        str, typer.Option(help="close | fin | rst (terminate without a Close)")
    ] = "close"
    close_timeout: Annotated[
        str, typer.Option(help="Wait for a client's answer to the server's Close.")
    ] = "30s"
    reject_share: Annotated[float, typer.Option(help="Share 0..1 of upgrades rejected.")] = 0.0
    reject_status: Annotated[int, typer.Option(help="HTTP status of rejections.")] = 503
    upgrade_delay: Annotated[
        str, typer.Option(help='Delay before answering the upgrade: "5ms" or "1ms..9ms".')
    ] = "0s"
    shutdown_after: Annotated[
        str | None, typer.Option(help="Shutdown storm this long after start (SIGUSR1: now).")
    ] = None
    shutdown_code: Annotated[int, typer.Option(help="Close code of the storm.")] = 1001
    shutdown_grace: Annotated[
        str, typer.Option(help="Storm: terminate stragglers after this (0 = hard).")
    ] = "10s"
    close_capacity: Annotated[
        float | None,
        typer.Option(help="At most this many Close replies per second; the excess queues."),
    ] = None
    compression: Annotated[
        str, typer.Option(help="deflate: accept permessage-deflate offers (none: refuse).")
    ] = "none"
    app: Annotated[
        str,
        typer.Option("--app", help="none | pubsub (an application protocol instead of echo)."),
    ] = "none"
    app_pushes: Annotated[int, typer.Option(help="pubsub: pushes after a subscribe.")] = 5
    app_push_interval: Annotated[str, typer.Option(help="pubsub: time between two pushes.")] = (
        "100ms"
    )
    app_bye_code: Annotated[
        int, typer.Option(help="pubsub: Close code answering a bye message.")
    ] = 4000

    def table(self) -> dict[str, Any]:
        """The options as a ``[target.server]`` table (None: not given)."""
        table: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in _RANGES:
                low, sep, high = value.partition("..")
                value = {"min": low, "max": high} if sep else value
            table[field.name] = value
        return table


DEFAULT_SERVER = ServerOptions()
"""The defaults, standing in for the option group in ``serve``'s signature."""


@app.command()
@option_group("server", ServerOptions)
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = 0,
    server: ServerOptions = DEFAULT_SERVER,
    seed: Annotated[int | None, typer.Option(help="Seed for random delays/rejections.")] = None,
    processes: Annotated[
        int, typer.Option(help="Server processes sharing the port (SO_REUSEPORT).")
    ] = 1,
) -> None:
    """Run the built-in target server until Ctrl-C; SIGUSR1 starts a shutdown storm.

    Prints "listening on ws://HOST:PORT" when ready and the server-side statistics on exit.
    """
    from wsload.process import serving_heap
    from wsload.scenario.parse import parse_server_options
    from wsload.server.server import run_server_cli

    try:
        config = parse_server_options(server.table())
        if processes < 1:
            raise UsageError(f"--processes: must be >= 1, got {processes}")
        if processes > 1:
            from wsload.server.multi import run_servers_cli

            summed = run_servers_cli(config, host, port, processes, typer.echo, seed=seed)
            typer.echo(json.dumps(summed, indent=2))
            return
        serving_heap()  # this process serves until it exits (as each --processes child does)
        stats = run_server_cli(config, host, port, typer.echo, seed=seed)
    except WsloadError as exc:
        raise fail(exc) from None
    typer.echo(stats.render())


@app.command()
def calibrate(
    cycles: Annotated[int, typer.Option(help="Clean-close cycles per measured run.")] = 2000,
    runs: Annotated[int, typer.Option(help="Measured runs (the median is reported).")] = 5,
    concurrency: Annotated[int, typer.Option(help="Connections in flight at once.")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Measure this machine's generator capacity against the built-in server.

    Prints the client CPU per clean-close cycle and "one process ≈ N cycles/s per core", and
    saves that figure (when every cycle ended clean) for ``wsload run`` to size its workers.
    """
    from wsload.runner.modes.calibrate import calibrate as measure
    from wsload.runner.modes.calibrate import render
    from wsload.runner.modes.machine import save_calibration

    try:
        if min(cycles, runs, concurrency) < 1:
            raise UsageError("--cycles, --runs and --concurrency must be >= 1")
        result = measure(cycles=cycles, runs=runs, concurrency=concurrency)
    except WsloadError as exc:
        raise fail(exc) from None
    saved: str | None = None
    if all(run.clean == run.cycles for run in result.runs) and result.cycles_per_s_per_core > 0:
        try:
            saved = str(save_calibration(result.cycles_per_s_per_core))
        except OSError as exc:
            typer.echo(f"wsload: warning: the figure was not saved: {exc}", err=True)
    if json_out:
        typer.echo(json.dumps({**result.as_dict(), "saved_to": saved}, indent=2))
        return
    typer.echo(render(result))
    if saved is not None:
        typer.echo(f"saved for wsload run to size its workers: {saved}")


def _version_line() -> str:
    return f"wsload {__version__}, {status()}"


@app.command()
def version() -> None:
    """Print the wsload version and which build runs (compiled with mypyc, or pure Python)."""
    typer.echo(_version_line())


def _print_version(value: bool) -> None:
    if value:
        typer.echo(_version_line())
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and which build runs (as `wsload version`), then exit.",
    ),
) -> None:
    """``wsload --version``; every command is a subcommand."""
