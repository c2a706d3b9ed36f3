"""Abort on fail (issue 26, Deliver 5): a threshold with ``abort = true`` stops a run against a
server slowed on purpose at the first interval after its ``after``; the results are complete,
the verdict is fail (exit 1) and summary.json says which threshold stopped it, and when."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wsload.cli import app
from wsload.report.outputs import write_report
from wsload.scenario.dump import scenario_to_toml
from wsload.scenario.parse import parse_scenario

SCENARIO = """
name = "abort"
seed = 2
[target]
url = "builtin"
[target.server]
close_reply_delay = "60ms"
[load]
rate = 40
duration = "60s"
[[close]]
kind = "clean"
timeout = "5s"
[thresholds]
"outcomes.clean" = "> 90%"
"close_handshake.p99" = { condition = "< 20ms", abort = true, after = "2s" }
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_abort_threshold_stops_a_failing_run_early(tmp_path: Path, workers: str) -> None:
    scenario = tmp_path / "abort.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["run", str(scenario), "--out", str(out), "-q", "--workers", workers]
    )
    assert result.exit_code == 1, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    aborted = summary["aborted"]
    assert aborted["threshold"] == "close_handshake.p99"
    assert aborted["condition"] == "< 20ms"
    assert aborted["reason"].startswith("aborted at ")
    assert "close_handshake.p99 < 20ms failed" in aborted["reason"]
    # at the first interval that ends after 2 s of load: the one before it ended earlier
    ends = [
        entry["t"] + entry["length"]
        for entry in map(json.loads, (out / "timeline.jsonl").read_text("utf-8").splitlines())
    ]
    first_due = next(end for end in ends if end >= 2.0)
    assert aborted["at_s"] == pytest.approx(first_due, abs=0.002)
    assert summary["interrupted"] is False
    assert summary["duration_s"] < 30  # of 60 s planned: stopped early
    attempted = summary["totals"]["attempted"]
    assert attempted == sum(summary["outcomes"].values()) > 0  # complete: every one counted
    assert "close_handshake.p99" in aborted["reason"]
    html = write_report(out).read_text(encoding="utf-8")
    assert 'id="verdict">FAIL' in html and "aborted at" in html
    assert summary["verdict"] == "fail"
    assert [r["code"] for r in summary["reasons"]][:1] == ["aborted"]


def test_abort_tables_parse_dump_and_refuse_bad_keys() -> None:
    scenario = parse_scenario(SCENARIO)
    threshold = scenario.thresholds[1]
    assert (threshold.abort, threshold.after_s, threshold.text) == (True, 2.0, "< 20ms")
    assert parse_scenario(scenario_to_toml(scenario)) == scenario
    bad = SCENARIO.replace("after = ", "afterr = ")
    with pytest.raises(Exception, match="did you mean 'after'"):
        parse_scenario(bad)
    codes = SCENARIO.replace('"close_handshake.p99" = {', '"close_codes.sent.1000" = {')
    with pytest.raises(Exception, match="abort = true applies to"):
        parse_scenario(codes.replace('"< 20ms"', '"> 5"'))
