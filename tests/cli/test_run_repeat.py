"""`wsload run --repeat` and the noise-aware gate end to end: real, short runs against the
built-in server, back to back; the same scenario twice is within noise, a server that answers
Close later is a regression, and a repeated baseline judges by its run-to-run spread.

The machine running the tests is shared: with other work on its two cores the close p50 of two
identical runs was seen to move from 7 to 16 ms. That is real run-to-run drift, which a
single-run baseline cannot know about (docs/ci.md) and which only a quiet machine keeps under
the default 500 µs floor: ``benchmarks/ci_gate.py`` measures the defaults there. These tests
check the same pipeline (real histograms.hlog intervals, verdicts, exit codes) with a floor
above such drift (``NOISE_GUARD``) and a change well beyond it (2 ms → 60 ms)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from wsload.cli import app
from wsload.report.results import read_hlog_intervals

pytestmark = [pytest.mark.usefixtures("bounded_slow"), pytest.mark.slow]

SCENARIO = """
name = "noise"
seed = 5
[target]
url = "builtin"
[target.server]
close_reply_delay = "{delay}"
[load]
model = "arrival"
rate = 200
connections = 120
[[close]]
kind = "clean"
timeout = "2s"
[[close]]
kind = "terminate"
weight = 0.2
"""


NOISE_GUARD = ("--min-change", "20ms")


def _scenario(tmp_path: Path, delay: str) -> Path:
    path = tmp_path / f"noise-{delay}.toml"
    path.write_text(SCENARIO.replace("{delay}", delay), encoding="utf-8")
    return path


def _invoke(*args: str) -> tuple[int, str]:
    code, output, _ = _invoke_streams(*args)
    return code, output


def _invoke_streams(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr together, stdout alone."""
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output, result.stdout


def _summary(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return data


def test_repeat_writes_the_merged_result_and_each_runs_figures(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    code, output, stdout = _invoke_streams(
        "run", str(_scenario(tmp_path, "2ms")), "--repeat", "3", "--out", str(out), "--quiet"
    )
    assert code == 0, output
    runs = [out / "runs" / str(i) for i in (1, 2, 3)]
    assert all((r / "summary.json").is_file() and (r / "histograms.hlog").is_file() for r in runs)
    assert not (runs[0] / "report.html").exists() and (out / "report.html").is_file()
    merged = _summary(out)
    per_run = [_summary(r) for r in runs]
    assert merged["totals"]["attempted"] == 360 == sum(s["totals"]["attempted"] for s in per_run)
    repeat = merged["repeat"]
    assert repeat["count"] == 3
    assert [r["directory"] for r in repeat["runs"]] == ["runs/1", "runs/2", "runs/3"]
    assert all(r["thresholds_ok"] and not r["interrupted"] for r in repeat["runs"])
    total = repeat["figures"]["total"]
    assert total["attempted"] == [120, 120, 120]
    assert total["latency_us"]["close_handshake"]["p50"] == [
        s["latency_us"]["close_handshake"]["p50"] for s in per_run
    ]
    clean = repeat["figures"]["behaviours"]["clean"]
    assert clean["clean"] == [s["behaviours"]["clean"]["clean"] for s in per_run]
    # the merged histograms are every run's samples; the runs follow one another in the log
    intervals = read_hlog_intervals(out / "histograms.hlog")["close_handshake"]
    assert (
        sum(i.histogram.get_total_count() for i in intervals)
        == (merged["latency_us"]["close_handshake"]["count"])
    )
    assert intervals[-1].t > intervals[0].t
    # stdout is the merged result's alone (each run's path went to stderr)
    assert stdout == f"{out}\n"

    # the repeated baseline against one more run of the same scenario: judged by its spread
    again = tmp_path / "again"
    code, output = _invoke("run", str(_scenario(tmp_path, "2ms")), "--out", str(again),
                           "--baseline", str(out), "--no-report", *NOISE_GUARD)  # fmt: skip
    verdict = json.loads((again / "summary.json").read_text(encoding="utf-8"))
    # a saturated generator (a busy machine) makes a judged run inconclusive, never a failure
    assert {r["code"] for r in verdict["reasons"]} <= {"saturated", "generator_slower"}, output
    assert code == (0 if verdict["verdict"] == "pass" else 1), output
    code, output, stdout = _invoke_streams("compare", str(out), str(again), "--json", *NOISE_GUARD)
    rows = {(r["scope"], r["name"]): r for r in json.loads(stdout)["rows"]}
    p50 = rows[("total", "close_handshake.p50")]
    # 3 runs: their band, unless it is wider than their median (then: too noisy, with the fix)
    assert p50["method"] == "spread", p50
    if p50["verdict"] == "baseline too noisy":
        assert "record it with --repeat 5 or more" in p50["detail"], p50
    else:
        assert p50["verdict"] == "within noise" and "3-run band" in p50["detail"], p50


def test_back_to_back_runs_are_within_noise_and_a_slower_close_reply_regresses(
    tmp_path: Path,
) -> None:
    first, second, slow = tmp_path / "first", tmp_path / "second", tmp_path / "slow"
    for out, delay in ((first, "2ms"), (second, "2ms"), (slow, "60ms")):
        code, output = _invoke("run", str(_scenario(tmp_path, delay)), "--out", str(out),
                               "--quiet", "--no-report")  # fmt: skip
        assert code == 0, output
    code, output = _invoke("compare", str(first), str(second), *NOISE_GUARD)
    if code == 0:
        assert ": ok" in output
    else:  # a busy machine slowed one run's generator: the product says so, not "regressed"
        # ("verdict: inconclusive: 4 regressions against ...; the load generator was saturated")
        verdict = output[output.index("verdict: ") :]
        assert code == 1 and verdict.startswith("verdict: inconclusive: "), output
        assert "load generator was saturated" in verdict or "generator slower" in verdict, output
    code, output = _invoke("compare", str(first), str(slow), *NOISE_GUARD)
    assert code == 1, output
    assert "regressed  total/close_handshake.p50" in output
    assert "intervals [" in output and "apart; +" in output and "beyond the floor 20 ms" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repeat", "0"], "--repeat: must be >= 2"),
        (["--repeat", "2", "--segment", "0/2"], "--repeat runs whole runs here"),
    ],
)
def test_bad_repeat_options_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    code, output = _invoke("run", str(_scenario(tmp_path, "2ms")), *args)
    assert code == 2 and message in output, output


def test_a_search_is_not_repeated(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    code, output = _invoke("run", str(root / "scenarios" / "search.toml"), "--repeat", "2")
    assert code == 2 and "--repeat does not apply to a capacity search" in output, output


STORM = """
name = "storms"
seed = 3
[target]
url = "builtin"
[load]
model = "storm"
concurrency = 20
rate = 200
open_deadline = "3s"
[[close]]
kind = "clean"
timeout = "2s"
"""


def test_repeated_storms_are_not_reported_as_segments_released_apart(tmp_path: Path) -> None:
    """Each run releases its own storm: the merged result keeps every close_start_lag sample
    but no segments' release spread (the runs' release offsets are not segments')."""
    path, out = tmp_path / "storms.toml", tmp_path / "out"
    path.write_text(STORM, encoding="utf-8")
    code, output = _invoke("run", str(path), "--repeat", "2", "--out", str(out), "--no-report")
    assert code == 0, output
    merged = _summary(out)
    assert merged["latency_us"]["close_start_lag"]["count"] == 40
    assert "storm_release_s" not in merged["generator"]
    assert all("storm_release_s" in _summary(out / "runs" / i)["generator"] for i in ("1", "2"))
    assert "released 40 closes in" in output and "segments released" not in output
