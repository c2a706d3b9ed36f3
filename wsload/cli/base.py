"""The Typer app every command registers on, the one-line error, and the console script."""

from __future__ import annotations

import signal
import sys

import typer
from rich.console import Console

from wsload.errors import UsageError, WsloadError
from wsload.exitcodes import EXIT_INTERRUPTED

__all__ = ["app", "duration_option", "err", "error", "fail", "main"]

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

err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def error(exc: WsloadError) -> None:
    """Print an error, secrets redacted (a bad URL or header may carry a token)."""
    from wsload.report.redact import redact_text

    err.print(f"wsload: error: {redact_text(str(exc))}", markup=False)


def fail(exc: WsloadError) -> typer.Exit:
    """Print ``exc`` on one line; the exit to raise (its exit code)."""
    error(exc)
    return typer.Exit(exc.exit_code)


def duration_option(value: str | None, flag: str) -> float | None:
    """A duration option's seconds (None when not given); a bad one names ``flag``."""
    from wsload.scenario.durations import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def main() -> None:
    """Console-script entry point: never lets a traceback reach the user."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("wsload: interrupted")
        sys.exit(EXIT_INTERRUPTED)
    finally:  # all written: a Ctrl-C while the interpreter exits must not print a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
