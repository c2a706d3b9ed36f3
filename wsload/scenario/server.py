"""``[target.server]`` → frozen ``ServerConfig`` (used only by the parser).

The built-in server's behaviour; ``wsload serve`` reads its flags through the same function, so
the two cannot disagree on a rule.
"""

from __future__ import annotations

from typing import Any, cast

from wsload.scenario._table import Table, close_reason, sendable_code
from wsload.scenario.compression import parse_server_compression
from wsload.scenario.model import ServerConfig

__all__ = ["SERVER_KEYS", "parse_server"]

SERVER_KEYS = (
    "messages", "close_reply", "close_reply_delay", "close_after", "close_after_messages",
    "close_code", "close_reason", "close_action", "close_timeout", "reject_share",
    "reject_status", "upgrade_delay", "shutdown_after", "shutdown_code", "shutdown_grace",
    "close_capacity", "compression", "app", "app_pushes", "app_push_interval",
    "app_bye_code",
)  # fmt: skip
"""Every key of ``[target.server]`` (merged into ``parse.TABLE_KEYS``; docs/scenarios.md)."""


def parse_server(t: Table) -> ServerConfig:
    """``[target.server]`` (or ``wsload serve``'s flags) → ``ServerConfig``."""
    t.allow(SERVER_KEYS)
    close_code = sendable_code(t, "close_code", 1000, "")
    shutdown_code = sendable_code(t, "shutdown_code", 1001, "")
    reject_share = t.number("reject_share", 0.0)
    if reject_share > 1:
        raise t.error("reject_share", f"must be a fraction between 0 and 1, got {reject_share}")
    reject_status = t.integer("reject_status", 503)
    if not 200 <= reject_status <= 599 or reject_status == 101:
        raise t.error(
            "reject_status", f"expected an HTTP status 200-599 other than 101, got {reject_status}"
        )
    config = ServerConfig(
        messages=cast(Any, t.choice("messages", ("echo", "sink"), "echo")),
        close_reply=cast(Any, t.choice("close_reply", ("normal", "never", "drop"), "normal")),
        close_reply_delay=t.delay("close_reply_delay"),
        close_after=t.opt_duration("close_after"),
        close_after_messages=t.opt_integer("close_after_messages", 1),
        close_code=close_code,
        close_reason=close_reason(t, "close_reason"),
        close_action=cast(Any, t.choice("close_action", ("close", "fin", "rst"), "close")),
        close_timeout=t.duration("close_timeout", 30.0, positive=True),
        reject_share=reject_share,
        reject_status=reject_status,
        upgrade_delay=t.delay("upgrade_delay"),
        shutdown_after=t.opt_duration("shutdown_after"),
        shutdown_code=shutdown_code,
        shutdown_grace=t.duration("shutdown_grace", 10.0),
        close_capacity=t.opt_number("close_capacity"),
        compression=parse_server_compression(t),
        app=cast(Any, t.choice("app", ("none", "pubsub"), "none")),
        app_pushes=t.integer("app_pushes", 5, minimum=0),
        app_push_interval=t.duration("app_push_interval", 0.1),
        app_bye_code=sendable_code(t, "app_bye_code", 4000, ""),
    )
    t.finish()
    return config
