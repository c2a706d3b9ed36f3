"""``python -m wsload`` and the ``wsload`` console script (``entry``).

SIGTERM is taken like Ctrl-C (KeyboardInterrupt) from the first line on, before the command
line's imports (a fifth of a second and more on a busy machine): a signal that early still
ends the command as "interrupted" with exit 130 (``wsload.cli.base.main``) instead of killing
it without a word. An ignored SIGTERM stays ignored.
"""

import signal
import sys

from wsload.exitcodes import EXIT_INTERRUPTED


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def entry() -> None:
    """Signals first, then the command line."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        from wsload.cli import main
    except KeyboardInterrupt:
        sys.stderr.write("wsload: interrupted while starting: nothing done\n")
        sys.exit(EXIT_INTERRUPTED)
    main()


if __name__ == "__main__":
    entry()
