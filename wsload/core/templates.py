"""Payload templates, compiled once: ``{seq}``, ``{uuid}``, ``{now_ms}``, ``{random:N}``...

A template is parsed when the scenario loads into a tuple of literal pieces and holes, so a
send only joins strings (no per-send parsing); a payload without holes is encoded once and
reused. Two holes take their value from the connection rather than the send: ``{data:COLUMN}``
(the connection's row of the ``[data]`` file, looked up by column index) and ``{var:NAME}`` (a
value an ``expect`` captured earlier on the same connection). ``{env:NAME}`` is different: it
is resolved once at load time (:func:`resolve_env`), from an explicit mapping, and its values
are secrets. Nothing else is ever expanded: braces
that do not spell one of these (``{"op": 1}``, ``${HOME}`` without a known name) stay as they
are, and a name that looks like a template but is not one (``{sequence}``) is an error, so a
typo is never sent to the server silently.
"""

from __future__ import annotations

import random
import re
import string
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["HOLES", "Template", "TemplateError", "data_column", "resolve_env"]

HOLES = ("seq", "uuid", "now_ms", "random:N", "step", "data:COLUMN", "var:NAME")
"""The per-send holes a session payload may hold (``env:NAME`` is resolved at load time)."""

_HOLE_RE = re.compile(r"\{([a-z_]+)(?::([^{}]*))?\}")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VAR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_ALPHANUMERIC = string.ascii_letters + string.digits
_MAX_RANDOM = 65536

_SEQ, _UUID, _NOW_MS, _RANDOM, _STEP, _DATA, _VAR = range(7)
_KINDS = {"seq": _SEQ, "uuid": _UUID, "now_ms": _NOW_MS, "step": _STEP}


class TemplateError(ValueError):
    """A template spelled wrong, or an ``{env:NAME}`` whose variable is not set."""


def resolve_env(text: str, environ: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """``text`` with every ``{env:NAME}`` replaced by ``environ[NAME]``; and those values.

    The values are returned so that every output can redact them (they are secrets). Only the
    exact ``{env:NAME}`` form is expanded: no ``$NAME``, ``${NAME}`` or ``$(...)``.

    Raises:
        TemplateError: a variable is not set, or ``{env:...}`` does not hold a valid name.
            The message names the variable, never a value.
    """
    if "{env:" not in text:
        return text, ()
    found: list[str] = []

    def value(match: re.Match[str]) -> str:
        if match.group(1) != "env":
            return match.group(0)
        name = match.group(2) or ""
        if not _ENV_NAME_RE.match(name):
            raise TemplateError(f"{{env:{name}}}: expected {{env:NAME}} with a variable name")
        if name not in environ:
            raise TemplateError(f"environment variable {name} is not set (used as {{env:{name}}})")
        got = environ[name]
        if got:
            found.append(got)
        return got

    return _HOLE_RE.sub(value, text), tuple(found)


@dataclass(frozen=True, slots=True)
class Template:
    """A payload with holes, parsed once (:meth:`compile`) and rendered per send.

    Attributes:
        source: the text as written (after ``{env:...}`` resolution).
        parts: literal strings and ``(kind, argument)`` holes, in order.
        constant: the encoded payload when there are no holes (rendered once), else None.
        names: the ``{var:NAME}`` names it reads (a ``_VAR`` hole's argument indexes them).
    """

    source: str
    parts: tuple[str | tuple[int, int], ...]
    constant: bytes | None
    names: tuple[str, ...] = ()

    @classmethod
    def compile(cls, text: str, columns: tuple[str, ...] = ()) -> Template:
        """Parse ``text``; every ``{name}`` or ``{name:arg}`` must be a known hole.

        Args:
            text: the payload as written.
            columns: the ``[data]`` file's columns (``{data:COLUMN}`` must name one).

        Raises:
            TemplateError: an unknown hole, a bad ``{random:N}``, a ``{data:...}`` naming no
                column or a ``{var:...}`` without a valid name.
        """
        parts: list[str | tuple[int, int]] = []
        names: list[str] = []
        pos = 0
        for match in _HOLE_RE.finditer(text):
            name, arg = match.group(1), match.group(2)
            if name == "data":
                hole = (_DATA, data_column(match.group(0), arg, columns))
            elif name == "var":
                if arg is None or not _VAR_NAME_RE.match(arg):
                    raise TemplateError(f"{match.group(0)}: expected {{var:NAME}} with a name")
                if arg not in names:
                    names.append(arg)
                hole = (_VAR, names.index(arg))
            elif name == "random":
                if arg is None or not arg.isdigit() or not 1 <= int(arg) <= _MAX_RANDOM:
                    raise TemplateError(
                        f"{match.group(0)}: expected {{random:N}} with N 1-{_MAX_RANDOM}"
                    )
                hole = (_RANDOM, int(arg))
            elif name in _KINDS and arg is None:
                hole = (_KINDS[name], 0)
            elif name == "env":
                raise TemplateError(f"{match.group(0)}: {{env:NAME}} is resolved at load time")
            else:
                raise TemplateError(
                    f"unknown template {match.group(0)} (known: "
                    + ", ".join(f"{{{h}}}" for h in HOLES)
                    + ", {env:NAME})"
                )
            if match.start() > pos:
                parts.append(text[pos : match.start()])
            parts.append(hole)
            pos = match.end()
        if pos < len(text):
            parts.append(text[pos:])
        constant = None if any(isinstance(p, tuple) for p in parts) else text.encode("utf-8")
        return cls(text, tuple(parts), constant, tuple(names))

    def render(
        self,
        seq: int,
        step: int,
        row: tuple[str, ...] = (),
        variables: Mapping[str, str] | None = None,
    ) -> bytes:
        """The payload (UTF-8) for connection ``seq``'s ``step``-th send (both 1-based).

        ``row``: the connection's ``[data]`` row; ``variables``: its captured values (a name
        not captured yet renders as the empty text).
        """
        if self.constant is not None:
            return self.constant
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            kind, arg = part
            if kind == _DATA:
                out.append(row[arg])
            elif kind == _VAR:
                out.append("" if variables is None else variables.get(self.names[arg], ""))
            elif kind == _SEQ:
                out.append(str(seq))
            elif kind == _STEP:
                out.append(str(step))
            elif kind == _UUID:
                out.append(str(uuid.uuid4()))
            elif kind == _NOW_MS:
                out.append(str(time.time_ns() // 1_000_000))  # wall clock, as the issue asks
            else:
                out.append("".join(random.choices(_ALPHANUMERIC, k=arg)))  # not a secret: load
        return "".join(out).encode("utf-8")


def data_column(hole: str, name: str | None, columns: tuple[str, ...]) -> int:
    """The index of ``{data:NAME}``'s column in ``columns`` (the ``[data]`` file's header).

    Raises:
        TemplateError: no ``[data]`` file, or no such column (the message lists them).
    """
    if not columns:
        raise TemplateError(f"{hole}: needs a [data] file (its columns fill {{data:COLUMN}})")
    if name not in columns:
        raise TemplateError(
            f"{hole}: no such column in the [data] file (columns: {', '.join(columns)})"
        )
    return columns.index(name)
