"""The small ones of issue 26 (Deliver 7): one-line errors for bad options, "did you mean" for
metric names, ``+N more`` close codes, calibrate's formatting and its saturated runs flagged,
and saturation advice the scenario accepts."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from wsload.cli import app
from wsload.report.terminal import summary_table
from wsload.runner.modes.calibrate import Calibration, CycleRun, render

SCENARIO = """
name = "small"
seed = 4
[target]
url = "builtin"
[load]
rate = 100
connections = 20
[[close]]
kind = "clean"
"""


@pytest.mark.parametrize(
    ("args", "first"),
    [
        (["run", "s.toml", "--rate", "abc"], "wsload: error: --rate: "),
        (["run", "s.toml", "--metrics-port", "70000"], "wsload: error: --metrics-port: "),
        (["run", "s.toml", "--bogus"], "wsload: error: No such option: --bogus"),
        (["runn"], "wsload: error: No such command 'runn'. Did you mean 'run'?"),
        (["compare", "a", "b", "--min-samples", "x"], "wsload: error: --min-samples: "),
        (["serve", "--port", "p"], "wsload: error: --port: "),
    ],
)
def test_a_bad_option_is_one_line_and_exit_2(args: list[str], first: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(first), result.output
    assert lines[0].endswith("--help)")


def test_a_misspelt_metric_gets_a_did_you_mean(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["compare", str(tmp_path), str(tmp_path), "--metrics", "close_handshak"]
    )
    assert result.exit_code == 2
    assert "did you mean 'close_handshake'?" in result.output


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("small")
    (tmp / "s.toml").write_text(SCENARIO, encoding="utf-8")
    out = tmp / "out"
    result = CliRunner().invoke(app, ["run", str(tmp / "s.toml"), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return data


def _shown(summary: dict[str, Any]) -> str:
    console = Console(width=200, file=io.StringIO())
    console.print(summary_table(summary))
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_close_codes_beyond_the_top_two_are_counted_not_dropped(summary: dict[str, Any]) -> None:
    changed = copy.deepcopy(summary)
    sent = {"1000": 60, "999": 30, "1005": 3, "1015": 2, "5000": 1}
    changed["behaviours"]["clean"]["close_codes"]["sent"] = sent
    assert "1000×60 999×30 +3 more" in _shown(changed)
    assert "+" not in _shown(summary).split("Close behaviours")[1].splitlines()[2]


def test_saturation_advice_is_one_the_scenario_accepts(summary: dict[str, Any]) -> None:
    saturated = copy.deepcopy(summary)
    saturated["generator"].update(saturated=True, cpu_wait_s=0.0)  # not starved by others
    assert "add --workers, or lower the load" in _shown(saturated)
    saturated["scenario"]["reconnect"] = {"max_attempts": 3}  # a deploy splits too
    assert "add --workers, or lower the load" in _shown(saturated)
    saturated["scenario"]["load"]["model"] = "search"
    shown = _shown(saturated)
    assert "--workers" not in shown
    assert "lower the load (this scenario runs in one generator process)" in shown


def _cycle_run(lag_p99: int) -> CycleRun:
    return CycleRun(
        cycles=2000, clean=2000, user_s=0.5, sys_s=0.2, wall_s=1.0, loop_lag={"p99": lag_p99}
    )


def test_calibrate_formats_the_lag_and_flags_saturated_runs() -> None:
    result = Calibration("builtin", 20, None, (_cycle_run(21_375), _cycle_run(25_000)))
    text = render(result)
    assert "loop lag p99 21.4 ms (SATURATED)" in text
    assert "21375" not in text
    assert "warning: every run was over the saturation line" in text
    calm = render(Calibration("builtin", 20, None, (_cycle_run(800), _cycle_run(25_000))))
    assert "loop lag p99 800 µs\n" in calm
    assert "warning: 1 runs were over the saturation line" in calm


def test_connect_and_upgrade_latencies_are_shown(summary: dict[str, Any]) -> None:
    shown = _shown(summary)
    assert "Connection setup" in shown
    assert "TCP connect" in shown and "upgrade (HTTP 101)" in shown
    assert summary["latency_us"]["connect"]["count"] == 20
