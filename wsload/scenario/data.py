"""``[data]`` → frozen ``DataConfig``: the per-client rows, read once when the scenario loads.

A CSV file (a header line, then one row per line) or a JSON Lines file (one object per line,
the first object's keys are the columns; numbers and booleans become their JSON text). Every
row must have every column: a ragged file is an error naming the line, never a silently empty
``{data:COLUMN}`` in a payload. The values of ``secret_columns`` join ``Scenario.secrets``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any, cast

from wsload.core.templates import TemplateError, data_column
from wsload.scenario._table import Table
from wsload.scenario.model import DATA_ORDERS, DataConfig

__all__ = ["DATA_KEYS", "data_holes", "parse_data"]

DATA_KEYS = ("file", "order", "secret_columns")
"""Every key of ``[data]`` (merged into ``parse.TABLE_KEYS``; docs/scenarios.md)."""

_MAX_DATA_BYTES = 64 * 1024 * 1024
"""Largest ``[data]`` file read (it is held in memory and sent to every worker)."""

_COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_DATA_HOLE_RE = re.compile(r"\{data(?::([^{}]*))?\}")


def parse_data(t: Table, base_dir: Path | None, secrets: list[str]) -> DataConfig:
    """The ``[data]`` table ``t``: its file read and checked; secret values appended to
    ``secrets``."""
    t.allow(DATA_KEYS)
    if not t.has("file"):
        raise t.error("file", 'required: the rows\' file, e.g. file = "users.csv" (or .jsonl)')
    written = t.string("file", "")
    path = Path(written) if base_dir is None else base_dir / written
    order = t.choice("order", DATA_ORDERS, "sequential")
    wanted = t.string_list("secret_columns")
    try:
        if not path.is_file():  # a directory, a device, a pipe: never read
            raise t.error("file", f"no such file: {str(path)!r}")
        if path.stat().st_size > _MAX_DATA_BYTES:
            raise t.error("file", f"{str(path)!r} is larger than {_MAX_DATA_BYTES >> 20} MiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise t.error("file", f"no such file: {str(path)!r}") from None
    except UnicodeDecodeError:
        raise t.error("file", f"{str(path)!r} is not UTF-8 text") from None
    except OSError as exc:
        raise t.error("file", f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    columns, rows = _jsonl(t, text) if jsonl else _csv(t, text)
    if not rows:
        raise t.error("file", f"{str(path)!r} has no rows")
    for i, column in enumerate(wanted):
        if column not in columns:
            raise t.error(
                f"secret_columns[{i}]", f"no column {column!r} (columns: {', '.join(columns)})"
            )
        index = columns.index(column)
        secrets.extend(row[index] for row in rows if row[index])
    t.finish()
    return DataConfig(
        file=str(path.resolve()),
        order=cast(Any, order),
        secret_columns=wanted,
        columns=columns,
        rows=rows,
    )


def _checked_columns(t: Table, columns: list[str]) -> tuple[str, ...]:
    for name in columns:
        if not _COLUMN_RE.match(name):
            raise t.error(
                "file",
                f"column {name!r}: a column name is 1-64 letters, digits, '_' or '-' and starts "
                "with a letter or '_' (it is used as {data:COLUMN})",
            )
    if len(set(columns)) != len(columns):
        raise t.error("file", f"a column name appears twice: {', '.join(columns)}")
    return tuple(columns)


def _csv(t: Table, text: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise t.error("file", "empty: a CSV data file starts with a header line")
        columns = _checked_columns(t, [c.strip() for c in header])
        rows = []
        for row in reader:
            if not row:
                continue  # a blank line
            if len(row) != len(columns):
                raise t.error(
                    "file",
                    f"line {reader.line_num}: {len(row)} values for {len(columns)} columns",
                )
            rows.append(tuple(row))
    except csv.Error as exc:
        raise t.error("file", f"line {reader.line_num}: invalid CSV: {exc}") from None
    return columns, tuple(rows)


def _jsonl(t: Table, text: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    columns: tuple[str, ...] = ()
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise t.error("file", f"line {number}: invalid JSON: {exc}") from None
        if not isinstance(item, dict):
            raise t.error("file", f"line {number}: expected a JSON object")
        if not columns:
            columns = _checked_columns(t, list(item))
        if set(item) != set(columns):
            raise t.error(
                "file", f"line {number}: keys {sorted(item)} differ from line 1's {list(columns)}"
            )
        rows.append(tuple(_text(t, number, item[c]) for c in columns))
    return columns, tuple(rows)


def _text(t: Table, number: int, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    raise t.error("file", f"line {number}: values must be strings, numbers or booleans")


def data_holes(t: Table, key: str, text: str, data: DataConfig | None, *, url: bool) -> None:
    """Check the ``{data:COLUMN}`` holes of an upgrade-request value (URL, header, origin).

    Every row's value for such a column must fit where it goes: single-line ISO-8859-1 text,
    and in a URL no whitespace (percent-encode the file's values). Messages never show a value.
    """
    for match in _DATA_HOLE_RE.finditer(text):
        try:
            index = data_column(
                match.group(0), match.group(1), () if data is None else data.columns
            )
        except TemplateError as exc:
            raise t.error(key, str(exc)) from None
        assert data is not None
        for number, row in enumerate(data.rows, 1):
            value = row[index]
            bad = any(c in value for c in "\r\n\0") or (url and any(c.isspace() for c in value))
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                bad = True
            if bad:
                where = "percent-encoded text without spaces" if url else "single-line ISO-8859-1"
                raise t.error(
                    key,
                    f"{match.group(0)}: row {number}'s value is not {where} (value not shown)",
                )
