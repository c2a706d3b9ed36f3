"""Command-line changes to a scenario: ``--set KEY.PATH=VALUE`` and ``--duration/--rate``.

``--set`` works on the TOML document *before* the parser reads it, so a set value goes through
exactly the checks a value in the file does, and the resolved scenario.toml, summary.json and
the scenario hash show the final values; a mistake names ``--set`` and the key. Nothing is
evaluated: a value is TOML, or a plain string.

``--duration/--rate`` work on the frozen model after parsing; their mistakes are the user's
flags (``UsageError``), not the scenario file's.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from wsload.errors import ScenarioError, UsageError
from wsload.scenario._table import key_name
from wsload.scenario.model import Scenario

__all__ = [
    "Setting",
    "apply_overrides",
    "apply_settings",
    "blame_settings",
    "parse_setting",
    "show_path",
]


def apply_overrides(
    scenario: Scenario, *, duration: float | None = None, rate: float | None = None
) -> Scenario:
    """Apply ``wsload run --duration/--rate`` to a parsed scenario (``UsageError`` on misuse).

    ``--duration`` ends the run early or late; stages keep their shape (after the last stage its
    rate holds). ``--rate`` replaces the stages with one constant rate; a run that only the
    stages ended keeps their total length as its duration, so it still ends.
    """
    load = scenario.load
    if load.model == "search" and (duration is not None or rate is not None):
        flag = "--duration" if duration is not None else "--rate"
        raise UsageError(f"{flag} does not apply to the search model (it sets each step's load)")
    if duration is not None:
        if not (duration > 0 and math.isfinite(duration)):
            raise UsageError(f"--duration must be a finite duration > 0, got {duration}")
        if load.model == "storm":
            raise UsageError(
                "--duration does not apply to the storm model (it ends when its connections close)"
            )
        load = replace(load, duration=duration)
    if rate is not None:
        if not (rate > 0 and math.isfinite(rate)):
            raise UsageError(f"--rate must be a finite number > 0, got {rate}")
        if load.model == "concurrency":
            raise UsageError("--rate does not apply to the concurrency model (it is closed loop)")
        if load.stages and load.duration is None and load.connections is None:
            load = replace(load, duration=sum(stage.duration for stage in load.stages))
        load = replace(load, rate=rate, stages=())
    return replace(scenario, load=load)


# -- --set KEY.PATH=VALUE ----------------------------------------------------------------------

_SEGMENT = re.compile(
    r'(?:"(?P<quoted>[^"\n]*)"|(?P<bare>[A-Za-z0-9_-]+))(?P<indices>(?:\[[0-9]{1,9}\])*)'
)
_INDEX = re.compile(r"\[([0-9]+)\]")
_QUOTES = ('"', "'", "[", "{")
_PATH_HELP = (
    'expected KEY.PATH=VALUE, like load.rate=500, close[0].timeout=2s or target.headers."X-Id"=abc'
)

Step = str | int
"""One step of a key path: a table key, or an array index."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One parsed ``--set``: where (``steps``), the path as shown in messages, and the value."""

    steps: tuple[Step, ...]
    path: str
    value: Any


def parse_setting(source: str, text: str) -> Setting:
    """``load.rate=500`` → ``Setting(("load", "rate"), "load.rate", 500)``.

    The value is TOML (``500``, ``"2s"``, ``true``, ``["chat"]``), or, when it is not TOML and
    cannot be mistaken for it (no quote or bracket in front, one line, not empty), the string
    as typed (``wss://staging.example/ws``, ``2s``).

    Raises:
        ScenarioError: naming ``--set`` and the key: a malformed key path or value.
    """
    split = _split(text)
    if split is None:
        raise ScenarioError(source, "--set", f"{_PATH_HELP}; got {text!r}")
    key_text, value_text = split
    steps = _steps(key_text)
    if steps is None:
        raise ScenarioError(source, f"--set {key_text!r}", f"not a key path: {_PATH_HELP}")
    path = show_path(steps)
    return Setting(steps, path, _value(source, path, value_text))


def show_path(steps: tuple[Step, ...]) -> str:
    """``("close", 0, "timeout")`` → ``close[0].timeout``: the parser's spelling of key paths."""
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += f".{key_name(step)}" if out else key_name(step)
    return out


def apply_settings(source: str, data: dict[str, Any], settings: Sequence[Setting]) -> None:
    """Write each setting into the TOML document ``data`` (in order; a later one wins).

    Missing tables on the way are created (``target.server.close_after`` without a
    ``[target.server]``); arrays are never grown: an index must name an existing entry.

    Raises:
        ScenarioError: naming ``--set`` and the key, when the path runs into a value that is
            not a table (or not an array, for an index) or past an array's end.
    """
    for setting in settings:
        node: Any = data
        for i, step in enumerate(setting.steps):
            where = show_path(setting.steps[:i]) or "the scenario"
            last = i == len(setting.steps) - 1
            if isinstance(step, int):
                if not isinstance(node, list):
                    raise _bad(source, setting, f"{where} is {_what(node)}, not an array")
                if step >= len(node):
                    raise _bad(source, setting, f"{where} has {len(node)} entries (0-based index)")
            elif not isinstance(node, dict):
                hint = f"; pick an entry, like {where}[0]" if isinstance(node, list) else ""
                raise _bad(source, setting, f"{where} is {_what(node)}, not a table{hint}")
            if last:
                node[step] = setting.value
            elif isinstance(step, str) and step not in node:
                if isinstance(setting.steps[i + 1], int):
                    raise _bad(source, setting, f"{show_path(setting.steps[: i + 1])} is not set")
                node[step] = {}
                node = node[step]
            else:
                node = node[step]


def blame_settings(exc: ScenarioError, settings: Sequence[Setting]) -> ScenarioError:
    """The parser's error, saying which ``--set`` it comes from when one set that key (or a key
    of the same table): ``s.toml: --set load.rate: must be > 0``; else ``exc`` unchanged."""
    best: Setting | None = None
    for setting in settings:
        path = setting.path
        if exc.key == path or exc.key.startswith((path + ".", path + "[")):
            return ScenarioError(exc.source, f"--set {exc.key}", exc.message)
        if path.startswith((exc.key + ".", exc.key + "[")) or _table(path) == _table(exc.key):
            best = setting
    if best is None:
        return exc
    return ScenarioError(exc.source, f"{exc.key} (after --set {best.path})", exc.message)


def _what(node: object) -> str:
    """What a value is, never the value (it may be a token)."""
    if isinstance(node, dict):
        return "a table"
    if isinstance(node, list):
        return "an array"
    if isinstance(node, str):
        return "a string"
    if isinstance(node, bool):
        return "a boolean"
    return "a number" if isinstance(node, int | float) else "a date/time"


def _table(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _bad(source: str, setting: Setting, message: str) -> ScenarioError:
    return ScenarioError(source, f"--set {setting.path}", message)


def _split(text: str) -> tuple[str, str] | None:
    """``KEY=VALUE`` at the first ``=`` outside double quotes (a quoted key may hold one)."""
    quoted = False
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == "=" and not quoted:
            return text[:i].strip(), text[i + 1 :]
    return None


def _steps(text: str) -> tuple[Step, ...] | None:
    steps: list[Step] = []
    pos = 0
    while True:
        match = _SEGMENT.match(text, pos)
        if match is None:
            return None
        steps.append(match["quoted"] if match["quoted"] is not None else match["bare"])
        steps.extend(int(n) for n in _INDEX.findall(match["indices"]))
        pos = match.end()
        if pos == len(text):
            return tuple(steps)
        if text[pos] != ".":
            return None
        pos += 1


def _value(source: str, path: str, text: str) -> Any:
    try:
        document = tomllib.loads(f"v = {text}\n")
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        problem: str = str(exc) if isinstance(exc, tomllib.TOMLDecodeError) else "nested too deeply"
    else:
        if list(document) == ["v"]:
            return document["v"]
        problem = "more than one value"
    if not text.strip():
        raise ScenarioError(source, f"--set {path}", "no value; an empty string is '\"\"'")
    if text.lstrip().startswith(_QUOTES) or "\n" in text or "\r" in text:
        raise ScenarioError(source, f"--set {path}", f"not a TOML value ({problem})")
    return text
