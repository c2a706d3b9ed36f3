"""One exception tree for the whole tool.

User mistakes and tool failures are exceptions; target misbehaviour never is (it becomes an
``Outcome`` on the connection's record and the run goes on)::

    WsloadError                      base; the CLI maps each branch to an exit code
    ├── ScenarioError                invalid input (exit 2): names file, key path, expectation
    ├── UsageError                   invalid command-line values (exit 2)
    ├── ToolError                    wsload itself could not run (exit 3): port in use, ...
    └── ProtocolViolation            raised inside the sans-IO core only; the driver turns it
                                     into an outcome (``handshake_invalid``/``protocol_error``)
"""

from __future__ import annotations

__all__ = [
    "ProtocolViolation",
    "ScenarioError",
    "ToolError",
    "UsageError",
    "WsloadError",
]


class WsloadError(Exception):
    """Base of every error wsload raises on purpose."""

    exit_code = 3


class ScenarioError(WsloadError):
    """A scenario file is wrong. ``str()`` reads ``file: key.path: what was expected``."""

    exit_code = 2

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + message)


class UsageError(WsloadError):
    """A command-line value is wrong (exit 2)."""

    exit_code = 2


class ToolError(WsloadError):
    """wsload could not do its job for a reason outside the scenario (exit 3)."""

    exit_code = 3


class ProtocolViolation(WsloadError):
    """The peer broke the protocol; ``outcome`` names how the driver classifies it."""

    def __init__(self, message: str, outcome: str = "protocol_error") -> None:
        self.outcome = outcome
        super().__init__(message)
