"""``Table``: typed, key-tracking access to one TOML table (used only by the parser).

``allow()`` rejects unknown keys up front, with a "did you mean" hint, before any rule that
involves several keys; each getter records the key it was asked for and ``finish()`` rejects
every other key, so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from wsload.core.codes import is_sendable
from wsload.errors import ScenarioError
from wsload.scenario.durations import parse_duration
from wsload.scenario.model import Delay

__all__ = ["Table", "close_reason", "either", "hint", "key_name", "sendable_code", "show"]

T = TypeVar("T")

_MAX_REASON_BYTES = 123

# Keys shown bare in messages (dots for threshold expressions, [i] for array items).
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.-]+(\[[0-9]+\])?$")


class Table:
    """A TOML table being read: typed getters that remember which keys were asked for.

    ``finish()`` then rejects every key nobody asked for, with a "did you mean" hint, so a
    typo (``max_inflight``) is an error rather than a silently ignored setting.
    """

    def __init__(self, source: str, path: str, data: Mapping[str, Any]) -> None:
        self.source = source
        self.path = path
        self.data = data
        self.known: list[str] = []

    def key(self, name: str) -> str:
        """The key path of ``name`` in messages: ``load.rate``, ``target.headers."X Y"``."""
        name = key_name(name)
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, message: str) -> ScenarioError:
        return ScenarioError(self.source, self.key(name), message)

    def get(self, name: str) -> Any:
        self.known.append(name)
        return self.data.get(name)

    def has(self, name: str) -> bool:
        return name in self.data

    def allow(self, names: Iterable[str]) -> None:
        """Reject every key not in ``names`` now, before any cross-key rule runs.

        Checking first means a misspelt key is reported as a typo (with a hint) rather than as
        the missing setting it was meant to be ("load.rate: required" for ``[load] rat = 5``).
        """
        allowed = tuple(names)
        for name in self.data:
            if name not in allowed:
                raise self.unknown(name, allowed)

    def unknown(self, name: str, allowed: Iterable[str]) -> ScenarioError:
        """The error for a key nobody reads here: a "did you mean" hint and the allowed keys."""
        known = sorted(set(allowed))
        listing = ", ".join(known)
        return self.error(name, f"unknown key{hint(name, known)} (allowed here: {listing})")

    def typed(self, name: str, kind: type[T], default: T, what: str) -> T:
        value = self.get(name)
        if value is None:
            return default
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:  # TOML integers are unbounded in tomllib
                raise self.error(name, f"must be finite, got {show(value)}") from None
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.error(name, f"expected {what}, got {show(value)}")
        return value

    def string(self, name: str, default: str) -> str:
        return self.typed(name, str, default, "a string")

    def opt_string(self, name: str) -> str | None:
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(name, f"expected a string, got {show(value)}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        return self.typed(name, bool, default, "true or false")

    def integer(self, name: str, default: int, minimum: int | None = None) -> int:
        value = self.typed(name, int, default, "an integer")
        if minimum is not None and value < minimum:
            raise self.error(name, f"must be >= {minimum}, got {value}")
        return value

    def opt_integer(self, name: str, minimum: int) -> int | None:
        if self.data.get(name) is None:
            self.known.append(name)
            return None
        return self.integer(name, 0, minimum)

    def number(self, name: str, default: float, *, positive: bool = False) -> float:
        value = self.typed(name, float, default, "a number")
        if not math.isfinite(value):
            raise self.error(name, f"must be finite, got {value}")
        if positive and value <= 0:
            raise self.error(name, f"must be > 0, got {show(self.data.get(name))}")
        if value < 0:
            raise self.error(name, f"must be >= 0, got {show(self.data.get(name))}")
        return value

    def opt_number(self, name: str) -> float | None:
        if self.data.get(name) is None:
            self.known.append(name)
            return None
        return self.number(name, 0.0, positive=True)

    def duration(self, name: str, default: float, *, positive: bool = False) -> float:
        value = self.get(name)
        if value is None:
            return default
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise self.error(name, str(exc)) from None
        if positive and seconds <= 0:
            raise self.error(name, f"must be > 0, got {show(value)}")
        return seconds

    def opt_duration(self, name: str) -> float | None:
        if self.data.get(name) is None:
            self.known.append(name)
            return None
        return self.duration(name, 0.0, positive=True)

    def delay(self, name: str) -> Delay:
        """A duration, or ``{ min = "1s", max = "5s" }`` for a uniform random one."""
        value = self.get(name)
        if value is None:
            return Delay()
        if isinstance(value, dict):
            sub = Table(self.source, self.key(name), value)
            sub.allow(("min", "max"))
            low = sub.duration("min", 0.0)
            high = sub.duration("max", low)
            sub.finish()
            if high < low:
                raise sub.error("max", f"must be >= min ({show(value.get('min'))})")
            return Delay(low, high)
        seconds = self.duration(name, 0.0)
        return Delay(seconds, seconds)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(name, default)
        if value not in choices:
            raise self.error(
                name, f"expected one of {either(choices)}, got {value!r}{hint(value, choices)}"
            )
        return value

    def table(self, name: str) -> Table:
        value = self.get(name)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.error(name, f"expected a table, got {show(value)}")
        return Table(self.source, self.key(name), value)

    def string_list(self, name: str) -> tuple[str, ...]:
        value = self.get(name)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(name, f"expected a list of strings, got {show(value)}")
        return tuple(value)

    def finish(self) -> None:
        for name in self.data:
            if name not in self.known:
                raise self.unknown(name, self.known)


def key_name(name: str) -> str:
    """One key as messages show it: plain, or quoted like TOML when it has spaces, a newline
    or nothing at all (so that it still reads as one key on one line)."""
    if _PLAIN_KEY.match(name):
        return name
    return json.dumps(name, ensure_ascii=False).replace("\x7f", "\\u007f")


def show(value: object) -> str:
    """A TOML value as the user wrote it (roughly), for "got ..." in messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime.date | datetime.time):
        return f"the date/time {value.isoformat()}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def either(choices: tuple[str, ...] | list[str]) -> str:
    return ", ".join(repr(c) for c in choices)


def hint(word: str, candidates: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def sendable_code(t: Table, name: str, default: int, more: str) -> int:
    """A close code an endpoint may put on the wire (``is_sendable``)."""
    code = t.integer(name, default)
    if not is_sendable(code):
        raise t.error(
            name,
            f"{code} may not be sent in a Close frame (RFC 6455 §7.4: use 1000-1003, 1007-1014 "
            f"or 3000-4999{more})",
        )
    return code


def close_reason(t: Table, name: str) -> str:
    """A Close reason that fits in a control frame (at most 123 UTF-8 bytes)."""
    reason = t.string(name, "")
    if len(reason.encode("utf-8")) > _MAX_REASON_BYTES:
        raise t.error(
            name, f"must be at most {_MAX_REASON_BYTES} UTF-8 bytes, got {len(reason.encode())}"
        )
    return reason
