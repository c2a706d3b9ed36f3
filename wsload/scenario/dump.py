"""``Scenario`` → the resolved scenario, as a TOML-shaped dict and as TOML text.

The resolved copy (every default filled in) goes into each results directory and into
summary.json, so a run can be repeated exactly and compared with what it claims to be. The
output parses back to an equal ``Scenario`` (tested), which is what makes it trustworthy.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from wsload.core.templates import Template
from wsload.scenario.close import CLOSE_KIND_KEYS
from wsload.scenario.compression import compression_to_toml
from wsload.scenario.durations import format_duration
from wsload.scenario.model import (
    CloseSpec,
    Delay,
    LoadConfig,
    ProcessConfig,
    ReconnectConfig,
    Scenario,
    SearchConfig,
    ServerConfig,
    SessionConfig,
    TargetConfig,
)
from wsload.scenario.rules import rules_to_list
from wsload.scenario.steps import ECHO_KEYS, steps_to_list

__all__ = ["scenario_hash", "scenario_to_dict", "scenario_to_toml"]

_CLOSE_FIELDS = CLOSE_KIND_KEYS
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
_DURATION_FIELDS = {
    "connect_timeout", "handshake_timeout", "close_after", "close_timeout", "shutdown_after",
    "shutdown_grace", "duration", "open_deadline", "drain", "message_interval",
    "message_timeout", "ping_interval", "timeout", "send_interval", "step_duration", "cooldown",
    "app_push_interval",
    "ready_timeout", "stop_timeout",
}  # fmt: skip


def _value(name: str, value: Any) -> Any:
    if isinstance(value, Delay):
        if value.min == value.max:
            return format_duration(value.min)
        return {"min": format_duration(value.min), "max": format_duration(value.max)}
    if isinstance(value, Template):
        return value.source
    if name in _DURATION_FIELDS and isinstance(value, float):
        return format_duration(value)
    return value


def _fields(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        if value is None:
            continue
        out[name] = _value(name, value)
    return out


_APP_FIELDS = ("app", "app_pushes", "app_push_interval", "app_bye_code")


def _server(server: ServerConfig) -> dict[str, Any]:
    """The server's keys; the application mode's only when it is on, so that the resolved copy
    and the hash of every echo-mode scenario stay what they were before it existed."""
    names: tuple[str, ...] = ServerConfig.__slots__
    if server.app == "none":
        names = tuple(n for n in names if n not in _APP_FIELDS)
    return _fields(server, names)


def _target(target: TargetConfig) -> dict[str, Any]:
    skip = ("headers", "server", "compression", "process", "require_subprotocol")
    out = _fields(target, tuple(n for n in TargetConfig.__slots__ if n not in skip))
    if target.require_subprotocol:  # only when set: older resolved copies hash the same
        out["require_subprotocol"] = True
    if target.compression is not None:
        out["compression"] = compression_to_toml(target.compression)
    out["headers"] = dict(target.headers)
    out["subprotocols"] = list(target.subprotocols)
    out["source_addresses"] = list(target.source_addresses)
    if target.is_builtin:
        out["server"] = _server(target.server)
    if target.process is not None:
        out["process"] = _process(target.process, builtin=target.is_builtin)
    return out


def _process(process: ProcessConfig, *, builtin: bool) -> dict[str, Any]:
    """``[target.process]``; for the built-in server only its events exist."""
    names = tuple(n for n in ProcessConfig.__slots__ if n not in ("command", "env", "events"))
    out: dict[str, Any] = {}
    if not builtin:
        out["command"] = list(process.command)
        out["env"] = dict(process.env)
        out.update(_fields(process, names))
    out["events"] = [
        {"at": format_duration(event.at), "signal": event.signal} for event in process.events
    ]
    return out


def _reconnect(reconnect: ReconnectConfig) -> dict[str, Any]:
    backoff = reconnect.backoff
    return {
        "on": list(reconnect.on),
        "backoff": {
            "initial": format_duration(backoff.initial),
            "max": format_duration(backoff.max),
            "multiplier": backoff.multiplier,
            "jitter": backoff.jitter,
        },
        "max_attempts": reconnect.max_attempts,
        **({} if reconnect.hold is None else {"hold": format_duration(reconnect.hold)}),
    }


def _load(load: LoadConfig) -> dict[str, Any]:
    names = tuple(n for n in LoadConfig.__slots__ if n not in ("stages", "search"))
    out = _fields(load, names)
    if load.search is not None:
        out["search"] = _search(load.search)
    if load.stages:
        out["stages"] = [
            _fields(stage, ("duration", "rate", "concurrency")) for stage in load.stages
        ]
    return out


def _search(search: SearchConfig) -> dict[str, Any]:
    """A storm size is a whole number of connections: written back as the integer it was."""
    out = _fields(search, SearchConfig.__slots__)
    if search.over == "storm_size":
        out["start"], out["max"] = int(search.start), int(search.max)
        out.pop("step_duration")
    return out


def _session(session: SessionConfig) -> dict[str, Any]:
    """Echo mode's keys, or (with a script) the shared keys and the steps."""
    skip = ("steps", "on", *ECHO_KEYS) if session.steps else ("steps", "on")
    out = _fields(session, tuple(n for n in SessionConfig.__slots__ if n not in skip))
    if session.steps:
        out["steps"] = steps_to_list(session.steps, session.message_timeout)
    if session.on:
        out["on"] = rules_to_list(session.on)
    return out


def _close(spec: CloseSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": spec.kind.value, "name": spec.label, "weight": spec.weight}
    out.update(_fields(spec, _CLOSE_FIELDS[spec.kind]))
    return out


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The resolved scenario with the file's key names; durations as strings ("250ms")."""
    out: dict[str, Any] = {"name": scenario.name}
    if scenario.seed is not None:
        out["seed"] = scenario.seed
    if scenario.description:
        out["description"] = scenario.description
    out["target"] = _target(scenario.target)
    out["load"] = _load(scenario.load)
    out["session"] = _session(scenario.session)
    out["close"] = [_close(spec) for spec in scenario.close]
    out["thresholds"] = {t.expr: t.text for t in scenario.thresholds}
    if scenario.reconnect is not None:
        out["reconnect"] = _reconnect(scenario.reconnect)
    if scenario.data is not None:
        data = scenario.data
        out["data"] = {"file": data.file, "order": data.order}
        if data.secret_columns:
            out["data"]["secret_columns"] = list(data.secret_columns)
    return out


def scenario_hash(scenario: Scenario) -> str:
    """A short stable digest of what the scenario does (name excluded), for ``compare``."""
    data = scenario_to_dict(scenario)
    data.pop("name", None)
    data.pop("description", None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return f"{int(value)}.0"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_string(text: str) -> str:
    """A TOML basic string. Not ``json.dumps``: TOML forbids a raw DEL (U+007F), JSON not."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    # TOML bare keys are ASCII only; str.isalnum() would also pass "é".
    if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key):
        return key
    return _toml_string(key)


def _table(lines: list[str], header: str, data: dict[str, Any]) -> None:
    lines.append("")
    lines.append(header)
    for key, value in data.items():
        if not (header == "[target]" and key in ("server", "process")) and not (
            header == "[target.process]" and key == "events"
        ):
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")


def scenario_to_toml(scenario: Scenario) -> str:
    """The resolved scenario as TOML text that ``parse_scenario`` reads back to an equal object."""
    data = scenario_to_dict(scenario)
    lines = ["# Resolved by wsload: every default filled in."]
    for key in ("name", "seed", "description"):
        if key in data:
            lines.append(f"{key} = {_toml_value(data[key])}")
    _table(lines, "[target]", data["target"])
    if "server" in data["target"]:
        _table(lines, "[target.server]", data["target"]["server"])
    process = data["target"].get("process")
    if process is not None:
        _table(lines, "[target.process]", process)
        for event in process["events"]:
            _table(lines, "[[target.process.events]]", event)
    _table(lines, "[load]", data["load"])
    session = dict(data["session"])
    steps = session.pop("steps", [])
    rules = session.pop("on", [])
    _table(lines, "[session]", session)
    for step in steps:
        _table(lines, "[[session.steps]]", step)
    for rule in rules:
        _table(lines, "[[session.on]]", rule)
    for close in data["close"]:
        _table(lines, "[[close]]", close)
    if data["thresholds"]:
        _table(lines, "[thresholds]", data["thresholds"])
    if "reconnect" in data:
        _table(lines, "[reconnect]", data["reconnect"])
    if "data" in data:
        _table(lines, "[data]", data["data"])
    return "\n".join(lines) + "\n"
