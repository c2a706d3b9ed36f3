"""``[target.process]`` and ``[reconnect]`` → frozen config (used only by the parser).

Kept apart from ``parse.py`` so the deploy feature's rules live in one place: the managed
server process (argv, never a shell; ``{port}`` substitution), its timed signal events, and the
reconnect policy of logical clients. docs/deploys.md explains how they work together.
"""

from __future__ import annotations

import re
from typing import Any, cast

from wsload.core.outcomes import Outcome
from wsload.scenario._table import Table, either, hint, show
from wsload.scenario.model import (
    EVENT_SIGNALS,
    JITTERS,
    RECONNECT_ON,
    Backoff,
    ProcessConfig,
    ProcessEvent,
    ReconnectConfig,
)

__all__ = ["DEPLOY_TABLE_KEYS", "parse_process", "parse_reconnect"]

DEPLOY_TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "target.process": (
        "command", "env", "port", "ready_timeout", "ready_line", "restart", "max_restarts",
        "stop_signal", "stop_timeout", "events",
    ),
    "target.process.events": ("at", "signal"),
    "reconnect": ("on", "backoff", "max_attempts", "hold"),
    "reconnect.backoff": ("initial", "max", "multiplier", "jitter"),
}  # fmt: skip
"""Every key of the deploy tables (merged into ``parse.TABLE_KEYS``; docs/scenarios.md)."""

_MAX_MULTIPLIER = 100.0


def parse_process(t: Table, url: str) -> ProcessConfig:
    """Read ``[target.process]`` (``t``) for ``target.url`` = ``url``.

    With ``url = "builtin"`` only ``events`` is allowed: wsload starts the built-in server
    itself, and each event asks it for its shutdown storm.
    """
    t.allow(DEPLOY_TABLE_KEYS["target.process"])
    events = _events(t, builtin=url == "builtin")
    if url == "builtin":
        for key in t.data:
            if key != "events":
                raise t.error(
                    key,
                    'not used with url = "builtin" (wsload runs the built-in server itself; '
                    "only events apply to it)",
                )
        t.finish()
        return ProcessConfig(events=events)
    if not t.has("command"):
        raise t.error("command", 'required: the server\'s argv, like ["node", "server.js"]')
    command = t.string_list("command")
    if not command or not command[0]:
        raise t.error("command", "expected a non-empty argv list (the program first)")
    for i, arg in enumerate(command):
        if "\0" in arg:
            raise t.error(f"command[{i}]", "contains a NUL character (no argv can)")
    env_table = t.table("env")
    env: list[tuple[str, str]] = []
    for name, value in env_table.data.items():
        env_table.known.append(name)
        if not name or "=" in name or "\0" in name:
            raise env_table.error(name, "not a valid environment variable name")
        if not isinstance(value, str) or "\0" in value:
            # the value is not echoed: environment values are often secrets
            raise env_table.error(name, "expected a string without NUL (the value is not shown)")
        env.append((name, value))
    port = t.integer("port", 0, minimum=0)
    if port > 65535:
        raise t.error("port", f"must be 0-65535, got {port}")
    if port == 0 and "{port}" not in url:
        raise t.error(
            "port",
            "0 lets wsload pick a free port: write {port} in target.url (and in command) "
            "or give the server's fixed port",
        )
    ready_line = t.opt_string("ready_line")
    if ready_line is not None:
        try:
            re.compile(ready_line)
        except re.error as exc:
            raise t.error("ready_line", f"invalid regular expression: {exc}") from None
    config = ProcessConfig(
        command=command,
        env=tuple(env),
        port=port,
        ready_timeout=t.duration("ready_timeout", 10.0, positive=True),
        ready_line=ready_line,
        restart=t.boolean("restart", False),
        max_restarts=t.integer("max_restarts", 10, minimum=0),
        stop_signal=cast(Any, t.choice("stop_signal", EVENT_SIGNALS, "SIGTERM")),
        stop_timeout=t.duration("stop_timeout", 10.0),
        events=events,
    )
    t.finish()
    return config


def _events(t: Table, *, builtin: bool) -> tuple[ProcessEvent, ...]:
    raw = t.get("events")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise t.error("events", 'expected [[target.process.events]] tables like { at = "10s" }')
    events: list[ProcessEvent] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise t.error(f"events[{i}]", f"expected a table, got {show(item)}")
        et = Table(t.source, t.key(f"events[{i}]"), item)
        et.allow(DEPLOY_TABLE_KEYS["target.process.events"])
        if not et.has("at"):
            raise et.error("at", 'required: when, from the start of the load (like "10s")')
        at = et.duration("at", 0.0)
        signal = et.choice("signal", EVENT_SIGNALS, "SIGTERM")
        if builtin and signal == "SIGKILL":
            raise et.error(
                "signal",
                "the built-in server answers an event with its shutdown storm; SIGKILL has no "
                "storm (use a managed process to audit a kill)",
            )
        if events and at < events[-1].at:
            raise et.error("at", f"events must be in time order (events[{i - 1}] is later)")
        et.finish()
        events.append(ProcessEvent(at=at, signal=cast(Any, signal)))
    return tuple(events)


def parse_reconnect(t: Table) -> ReconnectConfig:
    """Read ``[reconnect]`` (``t``): which outcomes reconnect, the backoff, the attempt cap."""
    t.allow(DEPLOY_TABLE_KEYS["reconnect"])
    names = tuple(o.value for o in Outcome if o is not Outcome.INTERRUPTED)
    on = t.string_list("on") if t.has("on") else RECONNECT_ON
    for i, name in enumerate(on):
        if name not in names:
            raise t.error(
                f"on[{i}]",
                f"expected an outcome, one of {either(names)}, got {name!r}{hint(name, names)}",
            )
    if t.has("on") and not on:
        raise t.error("on", "expected at least one outcome (or leave [reconnect] out)")
    bt = t.table("backoff")
    bt.allow(DEPLOY_TABLE_KEYS["reconnect.backoff"])
    initial = bt.duration("initial", 0.1, positive=True)
    top = bt.duration("max", max(10.0, initial), positive=True)
    if top < initial:
        raise bt.error("max", f"must be >= initial ({show(bt.data.get('initial'))})")
    multiplier = bt.number("multiplier", 2.0)
    if not 1.0 <= multiplier <= _MAX_MULTIPLIER:
        raise bt.error("multiplier", f"must be 1-{_MAX_MULTIPLIER:g}, got {show(multiplier)}")
    backoff = Backoff(
        initial=initial,
        max=top,
        multiplier=multiplier,
        jitter=cast(Any, bt.choice("jitter", JITTERS, "full")),
    )
    bt.finish()
    config = ReconnectConfig(
        hold=t.opt_duration("hold"),
        on=tuple(dict.fromkeys(on)),
        backoff=backoff,
        max_attempts=t.integer("max_attempts", 20, minimum=1),
    )
    t.finish()
    return config
