"""The Typer app every command registers on, the one-line error, and the console script."""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from wsload.errors import UsageError, WsloadError
from wsload.exitcodes import EXIT_INTERRUPTED

__all__ = ["app", "duration_option", "err", "error", "fail", "main", "usage_error"]


class _OneLineErrors(TyperGroup):
    """The command group, with Click's usage errors (``--rate abc``, ``--metrics-port 70000``,
    an unknown option) printed as wsload prints every error: one line, exit 2, not Click's
    usage block."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except _CLICK_ERROR as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `wsload` alone: the help
                exc.show()
            else:
                err.print(f"wsload: error: {usage_error(exc)}", markup=False)
            sys.exit(exc.exit_code)
        except typer.Abort:
            _interrupted()
        sys.exit(code or 0)

    def invoke(self, ctx: Any) -> Any:
        """The command; a Ctrl-C (or SIGTERM, see :func:`main`) that reaches it is an Abort,
        said in one line by :meth:`main` (Typer's own handling differs between versions: a
        silent exit 130, or "Aborted!" and exit 1)."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise typer.Abort() from None


_CLICK_ERROR: type[Any] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)
"""Click's error base, from whichever Click Typer runs on (its own copy or the package)."""

_INVALID = re.compile(r"^Invalid value for '([^']+)': ")


def usage_error(exc: Any) -> str:
    """Click's message on one line, the option first: ``--rate: 'abc' is not a valid float``
    (and where to read more)."""
    text = _INVALID.sub(r"\1: ", " ".join(exc.format_message().split())).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    return f"{text} (see {ctx.command_path} --help)" if ctx is not None else text


app = typer.Typer(
    name="wsload",
    cls=_OneLineErrors,
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


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM before a run takes the signals over: the same as Ctrl-C (KeyboardInterrupt)."""
    raise KeyboardInterrupt


def _interrupted() -> NoReturn:
    """Say that a signal ended the command, and whether a run's results can exist: a signal
    that came before the run's own signal handling (``wsload.process.signals_deferred``)
    ended it before any load ran."""
    from wsload.process import signals_were_deferred

    load = sys.argv[1:2] in (["run"], ["search"])
    early = " before the run started: nothing measured, no results written"
    err.print(f"wsload: interrupted{early if load and not signals_were_deferred() else ''}")
    sys.exit(EXIT_INTERRUPTED)


def main() -> None:
    """Console-script entry point: never lets a traceback reach the user.

    SIGTERM is taken like SIGINT from the start (its default would kill the process without
    a word or exit 130) until a run installs its own handling; an ignored one stays ignored.
    """
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except KeyboardInterrupt:
        _interrupted()
    finally:  # all written: a Ctrl-C while the interpreter exits must not print a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
