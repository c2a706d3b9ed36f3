"""One verdict, the same word in every output: every end state of a run through the real
``RunFrame.finish`` (summary.json, terminal, exit code, report.html, markdown, JUnit)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from wsload.metrics.collector import Collector
from wsload.metrics.histograms import record
from wsload.metrics.result import RunResult, SegmentResult, new_lag_histogram
from wsload.report.outputs import RunOutputs
from wsload.report.summary import attach_thresholds, build_summary
from wsload.report.thresholds import evaluate
from wsload.runner.frame import Output, RunFrame
from wsload.scenario.parse import parse_scenario

SCENARIO = """
name = "ends"
[load]
rate = 100
duration = "2s"
[[close]]
kind = "clean"
[thresholds]
"close_handshake.p99" = "< {limit}"
"""


def _summary(
    close_us: int = 1000, *, limit: str = "50ms", refused: bool = False, **load: Any
) -> dict[str, Any]:
    collector = Collector(labels=("clean",), start=0.0)
    for seq in range(1, 201):
        rtt = (close_us + seq) / 1e6
        if refused:
            record = ConnectionRecord(
                seq=seq, label="clean", kind="clean", outcome=Outcome.REFUSED, scheduled=0.0,
                connect_start=0.0, socket_closed=0.001, detail="Connection refused",
            )  # fmt: skip
        else:
            record = ConnectionRecord(
                seq=seq, label="clean", kind="clean", outcome=Outcome.CLEAN, scheduled=0.0,
                upgraded=0.001, close_initiated=1.0, close_sent=1.0, close_received=1.0 + rtt,
                eof=1.0 + rtt, code_sent=1000, code_received=1000, close_initiator=Side.CLIENT,
                socket_closed=1.0 + rtt,
            )  # fmt: skip
        collector.add(record)
    scenario = parse_scenario(SCENARIO.format(limit=limit))
    result = RunResult(
        scenario, datetime(2026, 1, 1, tzinfo=UTC), SegmentResult(collector, 2.0, **load)
    )
    data = build_summary(result)
    return attach_thresholds(data, evaluate(scenario.thresholds, data))


def _lagged(us: int) -> HdrHistogram:
    lag = new_lag_histogram()
    for _ in range(100):
        record(lag, us)
    return lag


def _crashed(data: dict[str, Any], *, stopped_by_wsload: bool = False) -> dict[str, Any]:
    run = {"pid": 4242, "started_s": -0.5, "ready_s": -0.4, "exit_s": 1.2, "exit_status": -11}
    run["stopped_by_wsload"] = stopped_by_wsload
    return {**data, "server_process": {"command": ["srv"], "port": 1, "restarts": 0, "runs": [run]}}


def _gave_up(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "reconnect": {"clients": 200, "reconnected": 150, "gave_up": 3}}


END_STATES: dict[str, tuple[Callable[[], dict[str, Any]], bool, str, str | None]] = {
    # name: (summary, interrupted, verdict, reason code)
    "pass": (lambda: _summary(), False, "pass", None),
    "thresholds": (lambda: _summary(limit="1ms"), False, "fail", "thresholds"),
    "regression": (lambda: _summary(5000), False, "fail", "regression"),
    "nothing_opened": (lambda: _summary(refused=True), False, "fail", "nothing_opened"),
    "interrupted": (lambda: _summary(interrupted=True), True, "inconclusive", "interrupted"),
    "saturated": (lambda: _summary(saturated=True), False, "inconclusive", "saturated"),
    "server_crashed": (lambda: _crashed(_summary()), False, "fail", "server_crashed"),
    "gave_up": (lambda: _gave_up(_summary()), False, "fail", "gave_up"),
    "generator_slower": (  # close p99 +3 ms beside a loop lag p99 of 8.6 ms (baseline 1.2 ms)
        lambda: _summary(4000, loop_lag=_lagged(8600)),
        False,
        "inconclusive",
        "generator_slower",
    ),
    # an --own-server segment stopped its server before another segment's load ended
    "stopped_by_wsload": (
        lambda: _crashed(_summary(), stopped_by_wsload=True),
        False,
        "pass",
        None,
    ),
    "saturated_and_crashed": (
        lambda: _crashed(_summary(saturated=True)),
        False,
        "fail",
        "server_crashed",
    ),
}


@pytest.mark.parametrize("state", END_STATES)
def test_every_output_prints_the_one_verdict(
    state: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, interrupted, word, code = END_STATES[state]
    out = tmp_path / "out"
    outputs = RunOutputs(
        baseline=_summary(loop_lag=_lagged(1200)),
        baseline_name="base",
        junit=tmp_path / "junit.xml",
        markdown=tmp_path / "summary.md",
    )
    with RunFrame("ends", Output(out=out, outputs=outputs)) as frame:
        frame.finish(make(), interrupted=interrupted)
    terminal = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    junit = ET.fromstring((tmp_path / "junit.xml").read_text(encoding="utf-8"))
    markdown = (tmp_path / "summary.md").read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")

    assert summary["verdict"] == word
    codes = [r["code"] for r in summary["reasons"]]
    assert codes == [] if code is None else code in codes
    assert f"verdict: {word.upper()}" in terminal
    expected = {"pass": EXIT_OK, "fail": EXIT_FAILED, "inconclusive": EXIT_FAILED}[word]
    assert frame.exit_code == (EXIT_INTERRUPTED if interrupted else expected)
    assert re.search(r'id="verdict">(\w+)</span>', page)[1] == word.upper()  # type: ignore[index]
    assert markdown.splitlines()[0].endswith(f"wsload ends: {word}")
    suite = junit.find("testsuite[@name='wsload.verdict.ends']")
    assert suite is not None
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert word in cases and cases[word].find("failure") is None
    assert (suite.get("failures") == "0") is (word == "pass")
    if code == "generator_slower":
        assert "generator slower than the baseline (loop lag p99 8.6" in markdown
    if code is not None:
        assert cases[code].find("failure") is not None
        for reason in summary["reasons"]:  # each reason in every output
            shown = f"{reason['verdict']} ({reason['code']})"
            assert shown in terminal, terminal
            assert f"<b>{shown}</b>" in page
            assert f"**{reason['code']}** ({reason['verdict']})" in markdown
