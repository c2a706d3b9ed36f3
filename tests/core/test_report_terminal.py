"""The terminal renderers: end-of-run tables from the summary dict, and the live panel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console, RenderableType
from rich.text import Text

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.metrics.collector import Collector
from wsload.metrics.histograms import record
from wsload.metrics.result import RunResult, SegmentResult, new_lag_histogram
from wsload.report.summary import attach_thresholds, build_summary
from wsload.report.terminal import LiveProgress, live_panel, summary_table
from wsload.report.thresholds import evaluate
from wsload.runner.load.loop import Progress
from wsload.scenario.model import Scenario
from wsload.scenario.parse import parse_scenario

TOML = """
name = "quick"
[load]
rate = 50
duration = "10s"
[[close]]
kind = "clean"
weight = 4
[[close]]
kind = "terminate"
weight = 1
[thresholds]
"close_handshake.p99" = "< 2ms"
"outcomes.clean" = "> 90%"
"""


def scenario() -> Scenario:
    return parse_scenario(TOML, source="quick.toml")


def _clean(seq: int, rtt: float, code: int = 1000) -> ConnectionRecord:
    return ConnectionRecord(
        seq=seq, label="clean", kind="clean", outcome=Outcome.CLEAN, scheduled=1.0,
        upgraded=1.001, close_initiated=1.01, close_sent=1.01, close_received=1.01 + rtt,
        eof=1.011 + rtt, socket_closed=1.0111 + rtt, code_sent=code, code_received=code,
        close_initiator=Side.CLIENT,
    )  # fmt: skip


def _collector() -> Collector:
    c = Collector(labels=("clean", "terminate"), start=0.0)
    for i in range(80):
        c.add(_clean(i, rtt=0.001 + i * 0.00001, code=1000 if i < 70 else 4001))
    for i in range(20):
        c.add(
            ConnectionRecord(
                seq=100 + i, label="terminate", kind="terminate", outcome=Outcome.TERMINATED,
                scheduled=1.0, upgraded=1.001, close_initiated=1.5, socket_closed=1.5001,
            )
        )  # fmt: skip
    c.add_dropped(2)
    return c


def _summary(saturated: bool = False) -> dict[str, Any]:
    lag = new_lag_histogram()
    record(lag, 45_000)
    result = RunResult(
        scenario=scenario(),
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        load=SegmentResult(
            duration_s=2.0, collector=_collector(), loop_lag=lag, saturated=saturated
        ),
    )
    data = build_summary(result)
    return attach_thresholds(data, evaluate(result.scenario.thresholds, data))


def render(renderable: RenderableType) -> str:
    console = Console(width=140, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    try:
        console.print(renderable)
        return console.export_text()
    finally:
        console.file.close()


def _row(text: str, first_cell: str) -> list[str]:
    for line in text.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in\n{text}")


def test_summary_table_rows() -> None:
    text = render(summary_table(_summary()))
    assert "quick: 100 connections in 2.00 s (50.0/s), 100 opened, 2 dropped" in text
    clean = _row(text, "clean")
    assert clean[1:5] == ["clean", "80", "100.0 %", "1000×70 4001×10"]
    assert clean[6:] == ["close_handshake", "1.39", "1.79", "1.79"]  # each kind's figure, ms
    terminate = _row(text, "terminate")
    assert terminate[1:4] == ["terminate", "20", "n/a"]
    assert terminate[4:] == ["-", "-", "close_total", "0.10", "0.10", "0.10"]  # not empty
    assert "close figure" in text  # the behaviours' figures differ: named per row
    total = _row(text, "total")
    assert total[2:4] == ["100", "80.0 %"]
    assert _row(text, "terminated")[1:] == ["20", "20.0 %"]
    assert _row(text, "close_handshake.p99")[1:] == ["< 2ms", "1.79 ms", "pass"]
    assert _row(text, "outcomes.clean")[1:] == ["> 90%", "80.0 % (80 of 100)", "FAIL"]
    assert "saturated" not in text


def test_headline_of_a_repeated_run_says_its_figures_are_merged() -> None:
    summary = {**_summary(), "repeat": {"count": 3, "runs": [], "figures": {}}}
    text = render(summary_table(summary))
    assert "100 opened, 3 runs merged (each in runs/<i>/), 2 dropped" in text


def test_saturation_warning_is_red() -> None:
    summary = _summary(saturated=True)
    group = summary_table(summary)
    warnings = [
        r for r in group.renderables
        if isinstance(r, Text) and "saturated" in r.plain
    ]  # fmt: skip
    assert len(warnings) == 1 and "red" in str(warnings[0].style)
    assert "event-loop lag p99 45 ms" in warnings[0].plain


@pytest.mark.parametrize(
    ("wait", "advice"),
    [
        (None, "add --workers"),  # the kernel did not say
        (0.01, "add --workers"),  # wsload's own work
        (0.8, "waited 0.80 s for a CPU taken by other processes"),  # the machine was busy
    ],
)
def test_saturation_warning_says_who_took_the_cpu(wait: float | None, advice: str) -> None:
    summary = _summary(saturated=True)
    summary["generator"]["cpu_wait_s"] = wait
    text = " ".join(r.plain for r in summary_table(summary).renderables if isinstance(r, Text))
    assert advice in text


def test_summary_table_of_an_empty_run() -> None:
    result = RunResult(
        scenario=scenario(),
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        load=SegmentResult(
            duration_s=0.0,
            collector=Collector(labels=("clean", "terminate")),
            loop_lag=new_lag_histogram(),
            interrupted=True,
        ),
    )
    text = render(summary_table(build_summary(result)))
    assert "quick: 0 connections in 0.00 s, 0 opened" in text
    assert _row(text, "clean")[2:4] == ["0", "-"]
    assert "interrupted" in text and "Outcomes" not in text


def test_live_panel_from_the_runners_progress() -> None:
    c = Collector(start=10.0)
    for i in range(40):
        c.add(_clean(i, rtt=0.002))
    progress = Progress(
        started=10.0, planned_s=10.0, attempted=240, dropped=3, in_flight=12,
        peak_in_flight=30, finished=228, intended=243, phase="running",
        last_interval=c.take_interval(in_flight=12, now=11.0),
        outcomes={Outcome.CLEAN: 200, Outcome.TERMINATED: 28},
    )  # fmt: skip
    typed: LiveProgress = progress  # the runner's Progress satisfies the panel's protocol
    text = render(live_panel(typed, scenario(), now=14.5))
    assert "wsload: quick" in text
    assert "4.5 s of 10.0 s (5.5 s left) · running" in text
    assert "intended 50.0/s, achieved 40.0/s" in text
    assert "240 attempted, 228 finished, 12 in flight (peak 30), 3 dropped" in text
    assert "clean 200  terminated 28" in text
    assert "p50 2.00 ms, p99 2.00 ms (last 1.0 s, 40 closes)" in text


def test_live_panel_shows_each_close_figure_and_its_censored_percentiles() -> None:
    c = Collector(start=10.0)
    for i in range(30):
        c.add(_clean(i, rtt=0.002))
    for i in range(30, 40):  # no Close reply within the clean timeout (10 s): censored
        c.add(
            ConnectionRecord(
                seq=i, label="clean", kind="clean", outcome=Outcome.CLOSE_TIMEOUT,
                scheduled=1.0, upgraded=1.001, close_initiated=1.01, close_sent=1.01,
                socket_closed=11.01, close_initiator=Side.CLIENT,
            )
        )  # fmt: skip
    progress = Progress(
        started=10.0, planned_s=10.0, attempted=40, dropped=0, in_flight=0, peak_in_flight=9,
        finished=40, intended=40, phase="running",
        last_interval=c.take_interval(in_flight=0, now=11.0),
        outcomes={Outcome.CLEAN: 30, Outcome.CLOSE_TIMEOUT: 10},
    )  # fmt: skip
    text = render(live_panel(progress, scenario(), now=11.5))
    assert "close_handshake" in text and "close_total" in text  # clean's and terminate's
    assert "p50 2.00 ms, p99 > 10 s (timeout) (last 1.0 s, 30 closes, 10 censored)" in text


def test_live_panel_before_the_first_interval() -> None:
    storm = parse_scenario(
        'name = "s"\n[load]\nmodel = "storm"\nconcurrency = 500\n', source="s.toml"
    )
    text = render(live_panel(Progress(started=5.0, phase="holding"), storm, now=6.0))
    assert "storm of 500" in text and "achieved -" in text and "1.0 s · holding" in text
    assert "close handshake" not in text


def test_browser_close_events_table_fits_80_columns() -> None:
    table = summary_table(_summary()).renderables[3]
    console = Console(width=80, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    try:
        console.print(table)
        text = console.export_text()
    finally:
        console.file.close()
    assert text.splitlines()[0].strip() == "Browser close events"
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 60
    assert _row(text, "1000 (Normal Closure)")[1:] == ["70", "0", "70.0 %"]
    assert _row(text, "1006 (Abnormal Closure)")[1:] == ["0", "20", "20.0 %"]
    assert _row(text, "4001 (Private Use)")[1:] == ["10", "0", "10.0 %"]


def test_close_events_table_names_the_servers_top_reason() -> None:
    data = _summary()
    data["close_reasons"] = {
        "1000": [{"reason": "", "count": 70}],
        "4001": [{"reason": "unsubscribed <n>", "count": 8}, {"reason": "bye", "count": 2}],
    }
    text = render(summary_table(data).renderables[3])
    assert _row(text, "4001 (Private Use)")[1:] == [
        "10",
        "0",
        "10.0 %",
        "unsubscribed <n> (+1 more)",
    ]
    assert _row(text, "1000 (Normal Closure)")[1:] == ["70", "0", "70.0 %", ""]
    assert "top reason" not in render(summary_table(_summary()).renderables[3])  # none: no column
