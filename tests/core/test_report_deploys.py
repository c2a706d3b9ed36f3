"""The deploy views of a summary: the events and reconnect tables in the terminal, and the
closes-after-the-signal figure (pure functions of summary.json)."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from wsload.report.deploys import closes_after_signal_figure, event_sections
from wsload.report.terminal import summary_table

pytestmark = pytest.mark.usefixtures("bounded_sync")

EVENT: dict[str, Any] = {
    "at_s": 4.0,
    "signal": "SIGTERM",
    "pid": 321,
    "exit_s": 0.514,
    "exit_status": 0,
    "open_at_signal": 1000,
    "closed_clean": 990,
    "closed_abnormal": 10,
    "still_open_at_exit": 0,
    "codes": {"1001": 990, "1006": 10},
    "close_events": [],
    "latency_us": {"close_received": {"p50": 61_000, "p99": 120_000}, "eof": {"p99": 256_000}},
    "closes_over_time": {"1001": [[2_000, 1], [120_000, 990]], "1006": [[5_000_000, 10]]},
}
RECONNECT: dict[str, Any] = {
    "clients": 1000,
    "reconnected": 998,
    "gave_up": 2,
    "attempts": {"p99": 5},
    "latency_us": {
        "reconnect_delay": {"p99": 613_000},
        "time_to_reconnect": {"p50": 1_030_000, "p99": 1_430_000},
    },
}


def render(summary: dict[str, Any]) -> str:
    console = Console(record=True, width=80)  # a terminal: every cell whole, none cut
    console.print(summary_table(summary))
    return console.export_text()


def test_terminal_shows_the_audit_and_the_reconnects() -> None:
    text = render({"events": [EVENT], "reconnect": RECONNECT})
    assert "Events (times from the signal)" in text
    assert "0: SIGTERM at 4s" in text
    assert "990 (99.0 %)" in text and "10 (1.0 %)" in text
    assert "120 ms" in text and "256 ms" in text and "0.514 s (0)" in text
    assert "Reconnects (logical clients)" in text
    assert "998 (99.8 %)" in text and "2 (0.2 %)" in text and "1.43 s" in text


def test_terminal_says_when_a_signal_could_not_be_sent() -> None:
    event = {**EVENT, "pid": None, "open_at_signal": 0, "exit_s": None}
    assert "(not running)" in render({"events": [event]})


def test_without_deploy_sections_nothing_is_added() -> None:
    text = render({})
    assert "Events" not in text and "Reconnects" not in text
    assert list(event_sections({})) == []


def test_closes_after_signal_figure_has_one_cumulative_curve_per_code() -> None:
    fig = closes_after_signal_figure(0, EVENT)
    assert [trace.name for trace in fig.data] == ["1001 Going Away", "1006 Abnormal Closure"]
    assert list(fig.data[0].x) == [2.0, 120.0] and list(fig.data[0].y) == [1, 990]
    assert fig.layout.xaxis.title.text == "ms after the signal"


def test_event_section_text_is_escaped() -> None:
    ((text, fig),) = [s for s in event_sections({"events": [{**EVENT, "signal": "<b>"}]}) if s[1]]
    assert "&lt;b&gt;" in text and "<b>" not in text
    assert fig is not None
