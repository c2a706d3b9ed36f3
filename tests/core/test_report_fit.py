"""FitTable: laid out for the console's width, split (key columns repeated) rather than cut."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from wsload.report.fit import Col, FitTable

pytestmark = pytest.mark.usefixtures("bounded_sync")

COLUMNS = (
    Col("behaviour"),
    Col("kind"),
    Col("conns", "right"),
    Col("codes received", "right"),
    Col("close p50 ms", "right"),
    Col("p99 ms", "right"),
    Col("why it ended", wrap=True),
)
ROWS = [
    ("graceful-shutdown-clients", "await_server_close", "1,000,000", "1000×999,999 1001×1",
     "12,345.67", "99,999.99", "the server closed TCP without a Close frame (1006) " * 3),
    ("t", "terminate", "5", "-", "-", "-", "x"),
]  # fmt: skip


def render(table: FitTable, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=False, color_system=None).print(table)
    return out.getvalue()


@pytest.mark.parametrize("width", [40, 60, 80, 120, 300])
def test_every_cell_whole_and_every_line_within_the_width(width: int) -> None:
    table = FitTable("Close behaviours", COLUMNS)
    for row in ROWS:
        table.add_row(*row)
    text = render(table, width)
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width, text
    assert "…" not in text
    for row in ROWS:
        for cell in row[:-1]:  # one-line cells appear whole, on one line
            assert any(cell in line for line in lines), (cell, text)
    words = " ".join(text.split())  # the wrapping column: every word, in order
    assert "the server closed TCP without a Close frame (1006)" in words.replace(" │ ", " ")
    parts = text.count("Close behaviours")
    if width == 40:  # not even the key and one more column fit: header: value lines
        assert parts == 1 and "┃" not in text and "  kind: await_server_close" in lines
        return
    assert (parts == 1) == (width >= 300)
    assert text.count("graceful-shutdown-clients") == parts  # the key column in every part


def test_rows_must_match_the_columns() -> None:
    with pytest.raises(ValueError, match="2 cells for 7 columns"):
        FitTable("x", COLUMNS).add_row("a", "b")
