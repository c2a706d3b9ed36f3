"""wsload: a Trio-based WebSocket close-handshake load tester.

The package is laid out along the path of one connection (see docs/architecture.md):
``scenario`` (parse) → ``runner`` (schedule + nursery) → ``engine`` (driver, owns the socket,
on top of the sans-IO ``core``) → ``metrics`` (HDR histograms) → ``report`` (pure renderers).
``server`` is the built-in target. Only ``cli`` touches argv and exit codes.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
