"""A search's results lead with the capacity (issue 26, Deliver 3): the capacity line first in
the terminal, the markdown and report.html, the chart's levels sorted by load with the visit
order as labels, nice share ticks, and levels judged on too few samples warned about."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from wsload.errors import ScenarioError
from wsload.report.charts import search_figure
from wsload.report.markdown import markdown_report
from wsload.report.search import capacity_line, few_samples, min_samples, search_table
from wsload.report.terminal import summary_table
from wsload.runner.modes.search_levels import (
    max_levels,
    step_duration_at,
    step_scenario,
    worst_case_seconds,
)
from wsload.scenario.parse import parse_scenario

VISITED = (40, 80, 160, 120, 100, 110)


def _summary() -> dict[str, Any]:
    levels = [
        {
            "level": level,
            "ok": level <= 100,
            "saturated": False,
            "close_p99_us": level * 300,
            "clean_share": 1.0,
            "attempted": level,
            "thresholds": [],
            "few_samples": few_samples(_level_summary(level)),
        }
        for level in VISITED
    ]
    return {
        "scenario": {
            "name": "search",
            "thresholds": {
                "close_handshake.p99": "< 50ms",
                "outcomes.clean": {"condition": "> 99%", "abort": True, "after": "0s"},
            },
        },
        "duration_s": 1.0,
        "totals": {"attempted": 100, "opened": 100},
        "thresholds": [],
        "behaviours": {},
        "search": {"parameter": "rate", "capacity": 100, "reason": "converged", "levels": levels},
    }


def _level_summary(level: int) -> dict[str, Any]:
    return {
        "thresholds": [{"expr": "close_handshake.p99", "ok": True}],
        "latency_us": {"close_handshake": {"count": level}},
    }


def test_the_capacity_comes_first_in_every_output() -> None:
    summary = _summary()
    line = "capacity 100/s (SLO: close_handshake.p99 < 50ms, outcomes.clean > 99%)"
    assert capacity_line(summary) == line
    console = Console(width=200, file=io.StringIO())
    console.print(summary_table(summary))
    assert console.file.getvalue().splitlines()[0] == line  # type: ignore[attr-defined]
    assert markdown_report(summary).splitlines()[0].endswith(line)
    summary["search"]["capacity"] = None
    assert capacity_line(summary).startswith("capacity none (no level passed)")  # type: ignore[union-attr]
    assert capacity_line({"scenario": {}}) is None  # not a search


def test_the_chart_plots_levels_sorted_by_load_labelled_by_visit_order() -> None:
    figure = search_figure(_summary()["search"])
    p99 = figure.data[0]
    assert list(p99.x) == sorted(VISITED)
    assert list(p99.text) == ["#1", "#2", "#5", "#6", "#4", "#3"]
    assert list(figure.layout.yaxis2.tickvals) == [0, 20, 40, 60, 80, 100]


def test_levels_on_too_few_samples_are_warned_about() -> None:
    assert [min_samples(k) for k in ("p50", "p90", "p99", "p999")] == [8, 51, 528, 5296]
    assert few_samples(_level_summary(600)) == []
    warned = few_samples(_level_summary(160))
    assert warned == [
        "close_handshake.p99 rests on 160 samples; 528 are needed to bound it at 99 % "
        "(raise load.search.max_step_duration)"
    ]
    console = Console(width=300, file=io.StringIO())
    console.print(search_table(_summary()["search"]))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "warning: level 160/s: close_handshake.p99 rests on 160 samples" in text


def test_a_rate_step_is_lengthened_to_the_samples_its_percentiles_need() -> None:
    """p99 needs 528 samples: at 400/s a 1 s step is lengthened to 1.25 × 528 / 400 = 1.65 s;
    at 40/s it would need 16.5 s and stops at max_step_duration; p50 (8) needs nothing more."""
    text = """
name = "s"
[target]
url = "builtin"
[load]
model = "search"
[load.search]
over = "rate"
start = 40
max = 400
step_duration = "1s"
max_step_duration = "{longest}"
[[close]]
kind = "clean"
[thresholds]
"close_handshake.{stat}" = "< 50ms"
"""
    p99 = parse_scenario(text.format(longest="4s", stat="p99"))
    assert step_duration_at(p99, 400) == pytest.approx(1.65)
    assert step_duration_at(p99, 40) == 4.0
    assert step_scenario(p99, 400).load.duration == pytest.approx(1.65)
    search, load = p99.load.search, p99.load
    assert search is not None
    per_level = 4.0 + load.drain + search.cooldown  # at its longest
    assert worst_case_seconds(load) == pytest.approx(max_levels(search) * per_level)
    assert step_duration_at(parse_scenario(text.format(longest="4s", stat="p50")), 40) == 1.0
    assert step_duration_at(parse_scenario(text.format(longest="1s", stat="p99")), 40) == 1.0
    with pytest.raises(ScenarioError, match="max_step_duration: must be >= step_duration"):
        parse_scenario(text.format(longest="500ms", stat="p99"))
