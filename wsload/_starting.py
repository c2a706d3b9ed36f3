"""The ``wsload`` command's signals while it imports itself, before its entry can catch them.

``wsload/__init__.py`` calls :func:`guard` first, before it chooses the build
(``wsload._compiled``: hashing the compiled modules' sources) and before anything else is
imported: tens of milliseconds, and more on a busy machine, in which a SIGTERM's default would
kill the command without a word or an exit code of its own, and a Ctrl-C would print a
``KeyboardInterrupt`` traceback. When this process is the command (``python -m wsload`` or the
console script; never when a program or a test imports the package), SIGTERM and SIGINT end it
here with one line and :data:`~wsload.exitcodes.EXIT_INTERRUPTED`, as a signal before the run
does later; ``wsload.__main__.entry`` then hands both to the command's own handling. Nothing
has started in this window (no child, no file), so there is nothing to stop or write. What
stays open is the interpreter's own start-up before wsload's first line, which no Python code
can cover: there the signal's default applies, with nothing started either. An ignored signal
stays ignored.
"""

from __future__ import annotations

import os
import signal
import sys

TYPE_CHECKING = False  # not ``typing``'s: importing it would widen the window this closes
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

__all__ = ["SAID", "guard", "hand_over", "is_the_command"]

SAID = "wsload: interrupted while starting: nothing done\n"
"""The one line a signal before the command line is read ends the command with."""

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_DEFAULTS = {signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}


def _starting(signum: int, frame: FrameType | None) -> None:
    from wsload.exitcodes import EXIT_INTERRUPTED  # only now: it imports ``typing``

    sys.stderr.write(SAID)
    raise SystemExit(EXIT_INTERRUPTED)


def is_the_command(argv: list[str], orig_argv: list[str]) -> bool:
    """Whether this process is the ``wsload`` command, while its package is being imported.

    Args:
        argv: ``sys.argv``: ``"-m"`` first while ``python -m`` imports the package, the console
            script's path otherwise.
        orig_argv: ``sys.orig_argv``, the interpreter's own command line (which module ``-m``
            names).
    """
    if argv[:1] == ["-m"]:
        at = orig_argv.index("-m") if "-m" in orig_argv else -1
        return (at >= 0 and orig_argv[at + 1 : at + 2] == ["wsload"]) or "-mwsload" in orig_argv
    return bool(argv) and os.path.basename(argv[0]) == "wsload"


def guard() -> None:
    """In the command only: SIGTERM and SIGINT, where they have their default, end it at once
    with one line and exit 130 (``_starting``)."""
    if not is_the_command(sys.argv, sys.orig_argv):
        return
    for sig in _SIGNALS:
        if signal.getsignal(sig) is _DEFAULTS[sig]:
            signal.signal(sig, _starting)


def hand_over(on_sigterm: Callable[[int, FrameType | None], None]) -> None:
    """The command's entry takes over: SIGTERM (where :func:`guard` took it, or at its default)
    goes to ``on_sigterm``, SIGINT back to Python's ``KeyboardInterrupt``; one after the other,
    so neither is ever at its default meanwhile."""
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, _starting):
        signal.signal(signal.SIGTERM, on_sigterm)
    if signal.getsignal(signal.SIGINT) is _starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)
