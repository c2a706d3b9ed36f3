"""What an ``expect`` step waits for: a JSON subset, a regex, an exact text, or any message.

Matchers are built once when the scenario loads (the regex compiled, the JSON pattern kept as
data) and called for each complete data message while a step waits. A matcher never raises:
a message that is not JSON, not UTF-8 or of the wrong shape simply does not match (it is
counted as unmatched), because what the server sends is measured, never trusted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Matcher", "json_contains"]

MatchKind = Literal["json", "regex", "equals", "any"]


def json_contains(message: Any, pattern: Any) -> bool:
    """Whether every key of ``pattern`` is in ``message`` with an equal value (recursively).

    Tables compare as subsets at every level; other values (arrays too) compare with ``==``,
    except that ``1`` and ``true`` never equal each other (JSON keeps them apart).
    """
    if isinstance(pattern, dict):
        if not isinstance(message, dict):
            return False
        return all(k in message and json_contains(message[k], v) for k, v in pattern.items())
    if isinstance(pattern, bool) or isinstance(message, bool):
        return type(pattern) is type(message) and pattern == message
    return bool(message == pattern)


@dataclass(frozen=True, slots=True)
class Matcher:
    """One ``expect`` condition.

    Attributes:
        kind: ``json``, ``regex``, ``equals`` or ``any``.
        value: the JSON pattern (a dict), the regex source, or the exact text.
        needs_payload: False for ``any``: the message body need not be assembled.
    """

    kind: MatchKind
    value: Any = None
    _regex: re.Pattern[str] | None = None

    @classmethod
    def build(cls, kind: MatchKind, value: Any = None) -> Matcher:
        """The matcher of ``kind``; a regex is compiled here.

        Raises:
            ValueError: an invalid regex (``re.error`` text).
        """
        regex = None
        if kind == "regex":
            try:
                regex = re.compile(value)
            except (re.error, RecursionError, OverflowError) as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from None
        return cls(kind, value, regex)

    @property
    def needs_payload(self) -> bool:
        return self.kind != "any"

    def matches(self, payload: bytes | str) -> bool:
        """Whether one complete data message matches (binary messages are read as UTF-8)."""
        kind = self.kind
        if kind == "any":
            return True
        if isinstance(payload, bytes):
            try:
                payload = payload.decode("utf-8")
            except UnicodeDecodeError:
                return False
        if kind == "equals":
            return bool(payload == self.value)
        if kind == "regex":
            assert self._regex is not None
            return self._regex.search(payload) is not None
        try:
            message = json.loads(payload)
        except (ValueError, RecursionError):
            return False
        return json_contains(message, self.value)
