"""The ``wsload`` command line: load input, call the library, map errors to exit codes.

No logic lives here. Exit codes (README; defined in ``wsload.exitcodes``): 0 ok, 1 thresholds
or regression failed, 2 invalid input, 3 the tool could not run, 130 interrupted (results still
written).

- ``base``: the Typer app, the one-line error, ``main`` (the console script);
- ``options``: option definitions shared by several commands, and option groups (one
  dataclass of options exposed on every command that takes it);
- ``load``: ``run``, ``merge``, ``search`` (commands that generate load and write results);
- ``results``: ``compare``, ``report``, ``validate`` (commands that read files);
- ``tools``: ``serve``, ``calibrate``, ``version``.

Importing the command modules registers their commands on ``app``, in the order ``--help``
lists them.
"""

from wsload.cli import load, results, tools
from wsload.cli.base import app, main

__all__ = ["app", "load", "main", "results", "tools"]
