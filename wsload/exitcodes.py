"""The process exit codes of every ``wsload`` command, defined here and nowhere else.

The README documents them; ``wsload.errors`` attaches one to each error a user can meet, the
runner's modes return them, and the CLI exits with them. A CI job keys on these numbers, so
they never change meaning.
"""

from __future__ import annotations

from typing import Final

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_INVALID", "EXIT_OK", "EXIT_TOOL"]

EXIT_OK: Final = 0
"""The command did what was asked; every threshold held, no regression."""
EXIT_FAILED: Final = 1
"""A threshold failed, a search found no capacity, a baseline comparison regressed, or the
result opened no connection at all (nothing measured is never a pass)."""
EXIT_INVALID: Final = 2
"""A user mistake: the scenario file or a command-line value is wrong."""
EXIT_TOOL: Final = 3
"""The environment stopped wsload: a port in use, a missing dependency, every worker lost."""
EXIT_INTERRUPTED: Final = 130
"""Ctrl-C / SIGTERM: stopped early, what was measured is still written."""
