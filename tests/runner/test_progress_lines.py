"""Progress lines when not on a terminal (issue 26, Deliver 1): their times under Trio's
autojump clock, their content from real interval snapshots, and ``wsload run | cat``."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import trio
import trio.testing
from typer.testing import CliRunner

from wsload.cli import app
from wsload.metrics.histograms import new_histogram, record
from wsload.metrics.snapshots import IntervalSnapshot
from wsload.report.progress import progress_line
from wsload.runner.frame import ProgressLines
from wsload.runner.load.loop import Progress
from wsload.scenario.parse import parse_scenario

SCENARIO = parse_scenario(
    """
name = "p"
[target]
url = "builtin"
[load]
rate = 100
duration = "30s"
[[close]]
kind = "clean"
"""
)


def _snapshot(index: int, closes_us: list[int], lag_us: int = 200) -> IntervalSnapshot:
    close = new_histogram()
    for us in closes_us:
        record(close, us)
    lag = new_histogram()
    record(lag, lag_us)
    return IntervalSnapshot(
        index=index,
        start=float(index),
        end=float(index + 1),
        in_flight=2,
        attempted=len(closes_us),
        opened=len(closes_us),
        dropped=0,
        outcomes={"clean": len(closes_us)},
        histograms={"close_handshake": close},
        by_label={},
        overflow={},
        loop_lag=lag,
    )


def test_the_line_says_time_rate_in_flight_outcomes_close_p99_and_lag() -> None:
    progress = Progress(started=100.0, planned_s=30.0, in_flight=3)
    progress.outcomes.update({"clean": 180, "abnormal": 1, "refused": 2, "close_timeout": 3})
    window = [_snapshot(0, [1_000] * 99 + [9_000]), _snapshot(1, [2_000] * 100, lag_us=50_000)]
    line = progress_line(progress, SCENARIO, 110.0, window)
    assert line == (
        "wsload: 10 s of 30 s · 100.0/s (intended 100.0/s) · in flight 3 · 186 done: "
        "clean 180, close_timeout 3, refused 2 +1 more · close p99 2 ms (last 2 s) · "
        "loop lag p99 50 ms"
    )
    saturated = dataclasses.replace(_snapshot(2, [1_000]), saturated=True)
    assert "SATURATED" in progress_line(progress, SCENARIO, 111.0, [saturated])
    assert "close p99 - (last 0 s)" in progress_line(progress, SCENARIO, 111.0, [])


async def test_a_line_every_interval_from_the_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every 10 s exactly: the lines of a 35 s run are at 10, 20 and 30 s, and each covers
    the snapshots since the previous one."""
    autojump_clock.jump(100.0)  # a run clock never reads 0 (0.0 is "not started yet")
    stream = io.StringIO()
    lines = ProgressLines(stream, 10.0)
    progress = Progress(started=trio.current_time(), planned_s=30.0)
    on_interval = lines.watch(lambda snapshot: None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lines.run, progress, SCENARIO)
        for second in range(35):
            await trio.sleep(1.0)
            on_interval(_snapshot(second, [1_000] * 100))
        nursery.cancel_scope.cancel()
    printed = stream.getvalue().splitlines()
    assert [line.split(" · ")[0] for line in printed] == [
        "wsload: 10 s of 30 s",
        "wsload: 20 s of 30 s",
        "wsload: 30 s of 30 s",
    ]
    assert all("100.0/s (intended 100.0/s)" in line for line in printed)


def _run(tmp_path: Path, *args: str) -> list[str]:
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'name = "p"\n[target]\nurl = "builtin"\n[load]\nrate = 50\nduration = "2.5s"\n'
        '[[close]]\nkind = "clean"\n',
        encoding="utf-8",
    )
    out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
    result = CliRunner().invoke(
        app, ["run", str(scenario), "--out", str(out), "--no-report", *args]
    )
    assert result.exit_code == 0, result.output
    return [line for line in result.output.splitlines() if line.startswith("wsload: ")]


def test_run_not_on_a_terminal_prints_lines_at_the_interval(tmp_path: Path) -> None:
    """CliRunner's output is no terminal (as ``| cat``): lines at 1 s and 2 s at least, in
    order; none with --quiet or --progress-interval 0."""
    lines = _run(tmp_path, "--progress-interval", "1s")
    seconds = [
        int(m.group(1)) for m in (re.match(r"wsload: (\d+) s of 2 s", x) for x in lines) if m
    ]
    assert len(seconds) == len(lines) >= 2, lines
    assert seconds == sorted(seconds) and seconds[0] >= 1
    assert _run(tmp_path, "--progress-interval", "0") == []
    assert _run(tmp_path, "--progress-interval", "1s", "--quiet") == []
