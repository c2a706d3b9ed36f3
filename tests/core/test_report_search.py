"""The search section and its terminal table: pure functions of a summary, checked exactly."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console, RenderableType

from wsload.report.search import level_entry, search_section, search_table

pytestmark = pytest.mark.usefixtures("bounded_sync")


def render(renderable: RenderableType) -> str:
    console = Console(width=120, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _summary(p99: int | None, clean: int | None, attempted: int, ok: bool, **gen: Any) -> dict:
    return {
        "duration_s": 1.5,
        "totals": {"attempted": attempted, "clean": clean},
        "latency_us": {"close_handshake": {"count": attempted, "p99": p99}},
        "generator": {"saturated": False, "loop_lag_us": {"p99": 900}, **gen},
        "thresholds": [{"expr": "close_handshake.p99", "ok": ok, "value": p99}],
    }


def test_a_level_entry_is_cut_from_its_summary() -> None:
    summary = _summary(61_000, 297, 300, False, cpu_wait_s=0.4)
    entry = level_entry(120.0, summary, started_s=4.25)
    assert entry == {
        "level": 120.0,
        "ok": False,
        "saturated": False,
        "close_p99_us": 61_000,
        "clean_share": 0.99,
        "attempted": 300,
        "thresholds": [{"expr": "close_handshake.p99", "ok": False, "value": 61_000}],
        "interrupted": False,
        "loop_lag_p99_us": 900,
        "start_lag_p99_us": None,
        "cpu_wait_s": 0.4,
        "started_s": 4.25,
        "duration_s": 1.5,
        "few_samples": [
            "close_handshake.p99 rests on 300 samples; 528 are needed to bound it at 99 % "
            "(raise load.search.max_step_duration)"
        ],
    }


def test_a_level_passes_only_with_verdicts_all_ok_and_not_interrupted() -> None:
    passing = _summary(3_000, 100, 100, True)
    assert level_entry(50.0, passing, started_s=0)["ok"] is True
    assert level_entry(50.0, passing, started_s=0, interrupted=True)["ok"] is False
    assert level_entry(50.0, {**passing, "thresholds": []}, started_s=0)["ok"] is False
    empty = level_entry(50.0, _summary(None, None, 0, False), started_s=0)
    assert empty["clean_share"] is None and empty["close_p99_us"] is None
    saturated = _summary(3_000, 100, 100, True, saturated=True)
    assert level_entry(50.0, saturated, started_s=0)["saturated"] is True


def test_the_table_lists_levels_verdicts_and_the_capacity() -> None:
    levels = [
        level_entry(50.0, _summary(2_400, 75, 75, True), started_s=0),
        level_entry(100.0, _summary(61_000, 150, 150, False), started_s=2),
        level_entry(75.0, _summary(8_000, 112, 112, True), started_s=4),
        level_entry(87.5, _summary(9_000, 131, 131, True, saturated=True), started_s=6),
    ]
    section = search_section(
        "rate", levels, 75.0, "saturated", "the load generator saturated at 87.5",
        max_levels=9, worst_case_s=36.0, main_level=75.0,
    )  # fmt: skip
    assert section["capacity"] == 75.0 and section["levels"] == levels
    text = render(search_table(section))
    rows = [line for line in text.splitlines() if "/s" in line and "│" in line]
    assert [row.split("│")[2].strip() for row in rows] == ["50/s", "100/s", "75/s", "87.5/s"]
    assert "pass" in rows[0] and "2.4 ms" in rows[0] and "100.00 %" in rows[0]
    assert "fail (close_handshake.p99)" in rows[1] and "61 ms" in rows[1]
    assert "saturated" in rows[3]
    assert "capacity: 75/s" in text
    assert "the load generator saturated at 87.5" in text


def test_no_capacity_and_storm_sizes_read_as_such() -> None:
    section = search_section(
        "storm_size", [], None, "first_failed", "the first level (10) already failed",
        max_levels=5, worst_case_s=10.0, main_level=None,
    )  # fmt: skip
    text = render(search_table(section))
    assert "storm size" in text and "capacity: -" in text
