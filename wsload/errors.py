"""One exception tree for the whole tool, with four roots that never mix.

Who is to blame decides where an exception sits, and so what happens to it::

    WsloadError                      raised to the user; ``exit_code`` is what the CLI exits with
    ├── UserError                    a user mistake (exit 2): fix the input and run again
    │   ├── ScenarioError            a scenario file: names file, key path, expectation
    │   └── UsageError               a command-line value
    └── ToolError                    the environment failed wsload (exit 3): port in use,
                                     missing dependency, no worker produced a result

    ProtocolViolation                the peer misbehaved: carries its ``Outcome`` and, for a
    └── FrameError (core.frames)     framing error, the Close ``code`` to fail with; raised in
                                     the sans-IO core, caught by the driver, which records the
                                     outcome: never escapes to the user, never an exit code

    WsloadBug                        wsload broke its own rules: a traceback worth a bug report
    └── IllegalTransition            (core.closing) an event the close state machine forbids

``ProtocolViolation`` and ``WsloadBug`` are deliberately not ``WsloadError``: the CLI turns a
``WsloadError`` into a one-line message, and neither a misbehaving target (an outcome, the run
goes on) nor a bug in wsload (which must show its traceback) may be reduced to that. Both are
raised in the sans-IO core and live there (:mod:`wsload.core.faults`), so the core imports
nothing above it.
"""

from __future__ import annotations

from wsload.exitcodes import EXIT_INVALID, EXIT_TOOL

__all__ = ["ScenarioError", "ToolError", "UsageError", "UserError", "WsloadError"]


class WsloadError(Exception):
    """Base of every error wsload raises to the user on purpose."""

    exit_code: int = EXIT_TOOL


class UserError(WsloadError):
    """The user's input is wrong (exit 2): the message says what to change."""

    exit_code = EXIT_INVALID


class ScenarioError(UserError):
    """A scenario file is wrong. ``str()`` reads ``file: key.path: what was expected``."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + message)


class UsageError(UserError):
    """A command-line value is wrong (exit 2)."""


class ToolError(WsloadError):
    """wsload could not do its job for a reason outside the scenario (exit 3)."""

    exit_code = EXIT_TOOL
