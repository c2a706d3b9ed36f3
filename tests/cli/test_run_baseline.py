"""`wsload run --baseline` end to end: real runs against the built-in server compared with a
real baseline run; the CI files (JUnit, markdown, $GITHUB_STEP_SUMMARY) and the report carry
the verdict, and the exit code follows it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from verdicts import assert_passed_or_saturated

from wsload.cli import app

pytestmark = [pytest.mark.usefixtures("bounded_slow"), pytest.mark.slow]

SCENARIO = """
name = "gate"
seed = 3
[target]
url = "builtin"
[target.server]
close_reply_delay = "{delay}"
[load]
model = "arrival"
rate = 300
connections = 150
[[close]]
kind = "clean"
timeout = "2s"
"""
# noise guard: on a loaded 2-core box a p99 can move by a few ms; the delay moves by 199 ms
GATE = ["--metrics", "close_handshake", "--min-change", "10ms", "--max-regression", "50%"]


def _run(tmp_path: Path, name: str, delay: str, *args: str) -> tuple[int, Path, str]:
    scenario = tmp_path / f"{name}.toml"
    scenario.write_text(SCENARIO.replace("{delay}", delay), encoding="utf-8")
    out = tmp_path / name
    result = CliRunner().invoke(app, ["run", str(scenario), "--out", str(out), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, out, result.output


def _summary(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return data


def test_slower_closes_than_the_baseline_fail_the_run(tmp_path: Path, monkeypatch: Any) -> None:
    code, fast, _ = _run(tmp_path, "fast", "1ms", "--quiet", "--no-report")
    assert_passed_or_saturated(code, _summary(fast))
    assert not (fast / "report.html").exists()
    step = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    junit, md = tmp_path / "junit.xml", tmp_path / "gate.md"
    code, slow, output = _run(
        tmp_path, "slow", "200ms", "--baseline", str(fast), "--junit", str(junit),
        "--markdown", str(md), *GATE,
    )  # fmt: skip
    assert code == 1, output
    # nothing measured is lost: the run's own files are complete
    assert _summary(slow)["totals"]["attempted"] == 150
    reasons = {r["code"] for r in _summary(slow)["reasons"]}
    if reasons & {"saturated", "generator_slower"}:
        # A generator too busy to time 200 ms honestly judges nothing (docs/results.md,
        # "Verdict"): the run is inconclusive, exit 1, never a pass; the regression cannot be
        # asserted on such a machine.
        assert _summary(slow)["verdict"] == "inconclusive", output
        return
    assert "regressed  total/close_handshake.p50" in output
    assert "different scenarios" in output  # the server's delay is part of the scenario
    report = (slow / "report.html").read_text(encoding="utf-8")
    assert f"Compared with {fast}" in report and "different scenarios" in report
    cases = ET.parse(junit).getroot().findall(".//testcase")
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert ("compare.total", "close_handshake.p50") in failed
    text = md.read_text(encoding="utf-8")
    assert text.startswith("### ❌ wsload gate:") and "❌ regressed" in text
    assert step.read_text(encoding="utf-8") == text  # appended to the job summary as well

    # the other way round the closes got faster: improved, exit 0
    code, again, output = _run(tmp_path, "again", "1ms", "--baseline", str(slow), "--quiet", *GATE)
    assert_passed_or_saturated(code, _summary(again), output)


def test_bad_baseline_is_an_input_error_before_anything_runs(tmp_path: Path) -> None:
    code, out, output = _run(tmp_path, "x", "1ms", "--baseline", str(tmp_path / "missing"))
    assert code == 2 and "no such file" in output and "Traceback" not in output
    assert not out.exists()
    code, out, output = _run(tmp_path, "y", "1ms", "--baseline", ".", "--max-share-drop", "x")
    assert code == 2 and not out.exists()
