"""``[session]`` → frozen ``SessionConfig`` (used only by the parser).

The session's simple keys; its ``[[session.steps]]`` script is read by ``steps.py``.
"""

from __future__ import annotations

from pathlib import Path

from wsload.scenario._table import Table
from wsload.scenario.model import SessionConfig, TargetConfig
from wsload.scenario.rules import parse_rules
from wsload.scenario.steps import Resolve, session_steps

__all__ = ["SESSION_KEYS", "parse_session"]

SESSION_KEYS = (
    "messages", "message_size", "binary", "message_interval", "await_echo", "message_timeout",
    "hold", "ping_interval", "reflect", "steps", "on",
)  # fmt: skip
"""Every key of ``[session]`` (merged into ``parse.TABLE_KEYS``; docs/scenarios.md)."""


def parse_session(
    t: Table,
    target: TargetConfig,
    base_dir: Path | None,
    resolve: Resolve,
    columns: tuple[str, ...] = (),
) -> SessionConfig:
    """``[session]`` → ``SessionConfig``: what each connection does before its close."""
    t.allow(SESSION_KEYS)
    size = t.integer("message_size", 64, minimum=0)
    if size > target.max_message_size:
        raise t.error(
            "message_size", f"{size} exceeds target.max_message_size ({target.max_message_size})"
        )
    timeout = t.duration("message_timeout", 10.0, positive=True)
    config = SessionConfig(
        messages=t.integer("messages", 1, minimum=0),
        message_size=size,
        binary=t.boolean("binary", False),
        message_interval=t.duration("message_interval", 0.0),
        await_echo=t.boolean("await_echo", True),
        message_timeout=timeout,
        hold=t.delay("hold"),
        ping_interval=t.duration("ping_interval", 0.0),
        reflect=t.boolean("reflect", False),
        steps=session_steps(t, target.engine, timeout, base_dir, resolve, columns),
        on=parse_rules(t, resolve, columns),
    )
    t.finish()
    return config
