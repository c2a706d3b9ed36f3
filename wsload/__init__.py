"""wsload: a Trio-based WebSocket close-handshake load tester.

The package is laid out along the path of one connection (see docs/architecture.md):
``scenario`` (parse) → ``runner`` (schedule + nursery) → ``engine`` (driver, owns the socket,
on top of the sans-IO ``core``) → ``metrics`` (HDR histograms) → ``report`` (pure renderers).
``server`` is the built-in target. Only ``cli`` touches argv and exit codes.
"""

from wsload._starting import guard as _guard_start

_guard_start()  # first: the command's signals while it imports (see wsload/_starting.py)

from wsload._compiled import select as _select_build  # noqa: E402

__all__ = ["__version__"]

__version__ = "0.1.0"

_select_build()  # before any compiled module is imported: see wsload/_compiled.py
