"""``python -m wsload`` and the ``wsload`` console script (``entry``).

SIGTERM is taken like Ctrl-C (KeyboardInterrupt) from the entry's first line on, before the
command line's imports (a fifth of a second and more on a busy machine): a signal that early
still ends the command as "interrupted" with exit 130 (``wsload.cli.base.main``) instead of
killing it without a word. Before the entry, while the package itself is imported,
``wsload._starting`` holds both signals. An ignored SIGTERM stays ignored.
"""

import sys

from wsload._starting import SAID, hand_over
from wsload.exitcodes import EXIT_INTERRUPTED


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def entry() -> None:
    """Signals first, then the command line."""
    hand_over(_interrupt)
    try:
        from wsload.cli import main
    except KeyboardInterrupt:
        sys.stderr.write(SAID)
        sys.exit(EXIT_INTERRUPTED)
    main()


if __name__ == "__main__":
    entry()
