"""Tables that fit the terminal without cutting a cell: ``FitTable``.

A rich ``Table`` narrower than its content shrinks its columns and cuts cells (``behav…``,
``1000×…``), or wraps a share onto two lines; in an 80-column CI log that loses exactly the
numbers people came for. A ``FitTable`` is laid out when it is printed, for the console's
width: every column is exactly as wide as its widest cell (headers wrap between words when
that makes the table fit), and when the columns do not fit side by side even so they are split
into several tables, each repeating the key columns (the row names). Only columns declared
``wrap`` (free text such as an error detail) may wrap, and they wrap whole words or fold, never
cut. On a console too narrow for even the key columns and one more, the rows are listed one
``header: value`` line per cell instead. Any terminal table (behaviours, outcomes, thresholds,
why, or a table added later) gets this by being built as a ``FitTable``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

__all__ = ["Col", "FitTable"]

_PAD = 2
"""Cell padding per column (one space each side), as rich draws ``show_edge=False`` tables."""

_MIN_WRAP = 12
"""A wrapping column gets at least this many characters (or its longest word, if wider)."""

Cell = str | Text


@dataclass(frozen=True, slots=True)
class Col:
    """One column of a ``FitTable``.

    Attributes:
        header: the column's heading (wraps between words, never cut).
        justify: cell alignment (numbers right).
        wrap: free text that may wrap onto several lines; every other column is one line.
    """

    header: str
    justify: Literal["left", "right"] = "left"
    wrap: bool = False


def _width(cell: Cell) -> int:
    text = cell.plain if isinstance(cell, Text) else cell
    return max((cell_len(line) for line in text.split("\n")), default=0)


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


class FitTable:
    """A table that fits the console's width whole (module docstring).

    Args:
        title: shown above the (first) table; the split-off parts say "(continued)".
        columns: the columns in order.
        keys: how many leading columns name the row; they are repeated in every part.
    """

    def __init__(self, title: str, columns: Sequence[Col], *, keys: int = 1) -> None:
        self.title = title
        self.columns = tuple(columns)
        self.keys = keys
        self.rows: list[tuple[Cell, ...]] = []
        self._sections: set[int] = set()

    def add_row(self, *cells: Cell) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(cells)

    def add_section(self) -> None:
        """A rule before the next row (the totals row)."""
        self._sections.add(len(self.rows))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.tables(options.max_width)

    # -- layout -------------------------------------------------------------------------------

    def _need(self, index: int, *, natural: bool) -> int:
        """Characters column ``index`` needs. ``natural``: its widest cell and its whole
        header on one line. Else the least it can do with: its widest cell and its longest
        header word; a wrapping column only its longest word (at least ``_MIN_WRAP``)."""
        column = self.columns[index]
        texts = [c.plain if isinstance(c, Text) else c for c in (row[index] for row in self.rows)]
        widest = max((_width(t) for t in texts), default=0)
        if natural:
            return max(widest, cell_len(column.header))
        header = _longest_word(column.header)
        if column.wrap:
            words = max((_longest_word(t) for t in texts), default=0)
            return max(header, words, min(_MIN_WRAP, widest))
        return max(widest, header)

    @staticmethod
    def _total(widths: Sequence[int]) -> int:
        return sum(w + _PAD for w in widths) + max(0, len(widths) - 1)

    def groups(self, width: int) -> list[tuple[list[int], list[int]]]:
        """The parts the table is split into for ``width``: (column indices, their widths)."""
        count = len(self.columns)
        natural = [self._need(i, natural=True) for i in range(count)]
        if self._total(natural) <= width or count <= self.keys:
            return [(list(range(count)), natural)]
        least = [self._need(i, natural=False) for i in range(count)]
        if self._total(least) <= width:  # one table, some headers wrapped between words
            return [(list(range(count)), self._widths(list(range(count)), natural, least, width))]
        # split: pack whole headers where they fit; free text at its least (takes what is left)
        packed = [least[i] if self.columns[i].wrap else natural[i] for i in range(count)]
        for i in range(count):
            if self._total([packed[j] for j in range(min(self.keys, count))] + [packed[i]]) > width:
                packed[i] = least[i]
        keys = list(range(min(self.keys, count)))
        parts: list[list[int]] = []
        current = list(keys)
        for i in range(len(keys), count):
            if len(current) > len(keys) and self._total([packed[j] for j in [*current, i]]) > width:
                parts.append(current)
                current = [*keys]
            current.append(i)
        parts.append(current)
        return [(part, self._widths(part, natural, least, width)) for part in parts]

    def _widths(
        self, part: list[int], natural: list[int], least: list[int], width: int
    ) -> list[int]:
        """From the least widths, grow wrapping columns, then headers, toward natural ones."""
        widths = [least[i] for i in part]
        spare = width - self._total(widths)
        order = sorted(range(len(part)), key=lambda k: not self.columns[part[k]].wrap)
        for k in order:
            if spare <= 0:
                break
            grown = min(natural[part[k]], widths[k] + spare)
            spare -= grown - widths[k]
            widths[k] = grown
        return widths

    def tables(self, width: int) -> Iterator[RenderableType]:
        """The rich tables to print for a console ``width`` characters wide."""
        groups = self.groups(width)
        if any(self._total(widths) > width for _, widths in groups):
            yield self._listed()
            return
        for n, (part, widths) in enumerate(groups):
            # the title as a line of its own: a table's title would wrap to the table's width
            yield Text(self.title if n == 0 else f"{self.title} (continued)", style="table.title")
            table = Table(show_edge=False, expand=False)
            for i, w in zip(part, widths, strict=True):
                column = self.columns[i]
                header = "\n".join(textwrap.wrap(column.header, w)) or column.header
                table.add_column(
                    header,
                    justify=column.justify,
                    width=w,
                    no_wrap=not column.wrap,
                    overflow="fold",
                )
            for index, row in enumerate(self.rows):
                if index in self._sections:
                    table.add_section()
                table.add_row(*(row[i] for i in part))
            yield table

    def _listed(self) -> Text:
        """Every row as ``header: value`` lines (a console narrower than two columns)."""
        out = Text(self.title, style="table.title")
        for row in self.rows:
            for i, (column, cell) in enumerate(zip(self.columns, row, strict=True)):
                out.append(f"\n{'' if i < self.keys else '  '}{column.header}: ")
                out.append(cell)
        out.overflow = "fold"
        return out
