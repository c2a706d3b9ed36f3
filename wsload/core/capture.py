"""Captured values: ``save = { NAME = "json:dotted.path" }`` or ``{ NAME = "regex:PATTERN" }``.

A capture reads one value out of a matched data message (a Socket.IO ``sid``, a login reply's
token, a subscription id) so that a later template can send it back as ``{var:NAME}``. Built
once when the scenario loads; :meth:`Capture.take` never raises: a message without the value
gives None, and the step that asked for it fails with a detail naming the capture.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Capture"]

_INDEX_RE = re.compile(r"^(0|[1-9][0-9]{0,8})$")


@dataclass(frozen=True, slots=True)
class Capture:
    """One ``NAME = "json:path"`` / ``"regex:pattern"`` entry of a ``save`` table.

    Attributes:
        name: the variable (``{var:NAME}``).
        kind: ``json`` (a dotted path into the message's JSON; digits index arrays) or
            ``regex`` (the first group of the pattern's first match, or the whole match).
        source: the text after ``json:`` / ``regex:``, as written.
    """

    name: str
    kind: Literal["json", "regex"]
    source: str
    _regex: re.Pattern[str] | None = None

    @classmethod
    def build(cls, name: str, spec: str) -> Capture:
        """Parse ``spec`` (``json:a.b.0`` or ``regex:"sid":"([^"]+)"``).

        Raises:
            ValueError: neither prefix, an empty path, or an invalid regex.
        """
        kind, sep, source = spec.partition(":")
        if not sep or kind not in ("json", "regex") or not source:
            raise ValueError(f'expected "json:dotted.path" or "regex:PATTERN", got {spec!r}')
        if kind == "json":
            if any(not part for part in source.split(".")):
                raise ValueError(f"empty part in the JSON path {source!r}")
            return cls(name, "json", source)
        try:
            regex = re.compile(source)
        except (re.error, RecursionError, OverflowError) as exc:
            raise ValueError(f"invalid regex {source!r}: {exc}") from None
        return cls(name, "regex", source, regex)

    @property
    def spec(self) -> str:
        """The value as written in the scenario (``json:sid``)."""
        return f"{self.kind}:{self.source}"

    def take(self, message: bytes | str) -> str | None:
        """The value in ``message`` (JSON strings as they are, other JSON values as JSON text),
        or None when it is not there."""
        if isinstance(message, bytes):
            try:
                message = message.decode("utf-8")
            except UnicodeDecodeError:
                return None
        if self._regex is not None:
            found = self._regex.search(message)
            if found is None:
                return None
            value: str | None = found.group(1) if self._regex.groups else found.group(0)
            return value  # None: the group took no part in the match
        try:
            node: Any = json.loads(message)
        except ValueError:
            return None
        for part in self.source.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and _INDEX_RE.match(part) and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node if isinstance(node, str) else json.dumps(node, separators=(",", ":"))
