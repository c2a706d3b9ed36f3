"""Why connections failed: their detail texts, normalised and grouped, with counts.

Every non-expected ending (docs/design.md §3: the outcome a behaviour is not "clean when" or
deliberately ends with) carries a short detail text ("[Errno 111] Error connecting to
('127.0.0.1', 9): Connection refused", "HTTP 401 Unauthorized"). Kept per connection they would
grow with the run, so the collector folds them as they arrive into groups of one cause:

- addresses and ports are replaced by ``<addr>`` (one cause, whichever address was tried), and
  an OS error's "[Errno N] Error connecting to <addr>: " preamble is dropped: its cause is the
  text after it ("Connection refused");
- the remaining numbers (but not codes: an HTTP status, a close code, an errno name their
  cause) and long random-looking tokens (a Sec-WebSocket-Accept key) are taken out to form
  the group's *template*; one that differs between two members of a group reads ``<n>`` (a
  number) or ``<id>`` (a token), one that is the same in all of them is kept ("HTTP 401"
  stays 401, "within 2s" stays 2 unless another connection said 5).

Only non-expected outcomes get here, so a healthy run pays nothing, and a failing one pays one
regular-expression pass per failed connection. At most ``MAX_GROUPS`` groups per outcome are
kept per behaviour (hostile peers can make every detail different); later new causes are
counted as ``other``. Tallies add up exactly across processes (``merge``, ``to_wire``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from wsload.core.kinds import KINDS
from wsload.core.outcomes import Outcome

__all__ = [
    "EXPECTED_OUTCOMES",
    "MAX_GROUPS",
    "MAX_TEXT",
    "VARIES",
    "ErrorGroup",
    "ErrorTally",
    "folded",
    "normalise",
]

EXPECTED_OUTCOMES: dict[str, Outcome] = {kind.value: info.expected for kind, info in KINDS.items()}
"""Per close kind, the ending it is built for: these outcomes need no explanation."""

MAX_GROUPS = 64
"""Distinct causes kept per behaviour and outcome; the rest counts as ``other``."""

MAX_TEXT = 300
"""Detail texts are cut to this many characters before grouping (a hostile peer's reason)."""

_ADDRESS = re.compile(
    r"\(\s*'[^']*',\s*\d+(?:,\s*\d+)*\s*\)"  # ('127.0.0.1', 9) and ('::1', 9, 0, 0)
    r"|\[[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\](?::\d+)?"  # [::1]:9
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"  # 127.0.0.1:9
)
_OS_PREAMBLE = re.compile(r"^\[Errno \d+\] [^:]*<addr>: ")
_FIELD = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}|(?<!HTTP )(?<!code )(?<!Errno )(?<!\d)\d+")
_NUMBER_HOLE, _TOKEN_HOLE = "\x00", "\x01"  # a field's place in a template
_HOLE_RE = re.compile("([\x00\x01])")
VARIES = {_NUMBER_HOLE: "<n>", _TOKEN_HOLE: "<id>"}
"""How a number / a token that differs between the members of one group reads."""


def _hole(match: re.Match[str]) -> str:
    return _NUMBER_HOLE if match.group(0).isdigit() else _TOKEN_HOLE


def normalise(detail: str) -> tuple[str, tuple[str, ...]]:
    """The group template of ``detail`` and the fields (numbers, tokens) taken out of it.

    >>> normalise("[Errno 111] Error connecting to ('127.0.0.1', 9): Connection refused")
    ('Connection refused', ())
    >>> normalise("HTTP 401 Unauthorized")
    ('HTTP 401 Unauthorized', ())
    >>> normalise("no answer within 2s")
    ('no answer within \\x00s', ('2',))
    """
    text = _ADDRESS.sub("<addr>", detail[:MAX_TEXT].strip())
    text = _OS_PREAMBLE.sub("", text)
    fields = tuple(_FIELD.findall(text))
    return (_FIELD.sub(_hole, text) if fields else text), fields


def folded(detail: str) -> str:
    """``detail`` with every number and token read ``<n>`` / ``<id>`` (close reasons: one
    key per kind of reason, however many ids the server puts in them)."""
    template, fields = normalise(detail)
    if not fields:
        return template
    return _HOLE_RE.sub(lambda m: VARIES[m.group(0)], template)


@dataclass(slots=True)
class ErrorGroup:
    """One cause: its template, the fields all its members share (None where they differ),
    how many connections had it, and the lowest ``seq`` among them (an example to look up in
    ``--record-connections``)."""

    template: str
    fields: list[str | None]
    count: int
    example_seq: int

    @property
    def text(self) -> str:
        """The readable detail: shared fields restored, differing ones as ``<n>`` / ``<id>``."""
        if not self.fields:
            return self.template or "(no detail)"
        pieces = _HOLE_RE.split(self.template)  # text, hole, text, hole, ..., text
        out = [pieces[0]]
        for field, hole, piece in zip(self.fields, pieces[1::2], pieces[2::2], strict=True):
            out.append(VARIES[hole] if field is None else field)
            out.append(piece)
        return "".join(out)

    def absorb(self, fields: tuple[str, ...] | list[str | None], count: int, seq: int) -> None:
        self.count += count
        self.example_seq = min(self.example_seq, seq)
        self.fields = [a if a == b else None for a, b in zip(self.fields, fields, strict=True)]


class ErrorTally:
    """Grouped details of one behaviour: outcome → template → ``ErrorGroup``, plus ``other``."""

    __slots__ = ("groups", "other")

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, ErrorGroup]] = {}
        self.other: dict[str, int] = {}

    def add(self, outcome: str, detail: str, seq: int) -> None:
        """Count one connection's ending (the collector's hot path, failures only)."""
        template, fields = normalise(detail)
        self._add(outcome, template, fields, 1, seq)

    def _add(
        self,
        outcome: str,
        template: str,
        fields: tuple[str, ...] | list[str | None],
        count: int,
        seq: int,
    ) -> None:
        groups = self.groups.setdefault(outcome, {})
        group = groups.get(template)
        if group is not None:
            group.absorb(fields, count, seq)
        elif len(groups) < MAX_GROUPS:
            groups[template] = ErrorGroup(template, list(fields), count, seq)
        else:
            self.other[outcome] = self.other.get(outcome, 0) + count

    def merge(self, other: ErrorTally) -> None:
        """Add ``other``'s groups into this tally (same cause: counts add, fields compared)."""
        for outcome, groups in other.groups.items():
            for group in groups.values():
                self._add(outcome, group.template, group.fields, group.count, group.example_seq)
        for outcome, n in other.other.items():
            self.other[outcome] = self.other.get(outcome, 0) + n

    def outcomes(self) -> Iterator[str]:
        """Outcomes with anything counted."""
        yield from {*self.groups, *self.other}

    def top(self, outcome: str, n: int) -> tuple[list[ErrorGroup], int]:
        """The ``n`` most frequent groups of ``outcome`` (ties: lowest example first) and the
        count of every other connection with that outcome."""
        ranked = sorted(
            self.groups.get(outcome, {}).values(), key=lambda g: (-g.count, g.example_seq)
        )
        rest = sum(g.count for g in ranked[n:]) + self.other.get(outcome, 0)
        return ranked[:n], rest

    def to_wire(self) -> dict[str, Any]:
        return {
            "groups": {
                outcome: [[g.template, g.fields, g.count, g.example_seq] for g in groups.values()]
                for outcome, groups in self.groups.items()
            },
            "other": dict(self.other),
        }

    @classmethod
    def from_wire(cls, data: Any, where: str) -> ErrorTally:
        """Raises: ValueError naming ``where`` when ``data`` is not a ``to_wire`` form."""
        out = cls()
        try:
            groups: Mapping[str, Any] = data.get("groups", {})
            for outcome, items in groups.items():
                for template, fields, count, seq in items:
                    holes = len(_HOLE_RE.findall(template)) if isinstance(template, str) else -1
                    if holes != len(fields):
                        raise ValueError("template and fields disagree")
                    kept = [None if n is None else str(n) for n in fields]
                    out._add(str(outcome), template, kept, int(count), int(seq))
            out.other = {str(k): int(n) for k, n in data.get("other", {}).items()}
        except (AttributeError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: malformed error groups ({exc})") from None
        return out
