"""``wsload calibrate`` and the benchmark harness, run for real with small cycle counts.

The figures themselves depend on the machine; what is checked is that every cycle really ran
and ended clean, that the CPU figure is a real measurement (positive, consistent with the
per-core rate), and that the one-command harness prints what it promises.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from server_clients import running
from typer.testing import CliRunner

from wsload.cli import app
from wsload.runner.load.lag import SATURATION_US
from wsload.runner.modes.calibrate import Calibration, CycleRun, measure_cycles, pin_cpus, render

ROOT = Path(__file__).resolve().parents[2]


async def test_measure_cycles_records_every_cycle_clean() -> None:
    with trio.fail_after(60):
        async with running() as target:
            run = await measure_cycles(target.url, 150, concurrency=10)
    assert run.cycles == 150
    assert run.clean == 150
    assert run.user_s + run.sys_s > 0
    assert run.cpu_us_per_cycle == pytest.approx((run.user_s + run.sys_s) * 1e6 / 150)
    assert run.wall_s > 0 and run.cycles_per_s == pytest.approx(150 / run.wall_s)
    assert run.loop_lag["count"] >= 0
    data = run.as_dict()
    assert data["cycles"] == 150 and data["clean"] == 150
    text = render(Calibration("builtin", 10, None, (run,)))
    assert "150/150 clean" in text and "cycles/s per core" in text
    assert "did not end clean" not in text
    # a busy machine may saturate the loop: then, and only then, the text says so
    lag_p99 = run.loop_lag.get("p99")
    saturated = lag_p99 is not None and lag_p99 > SATURATION_US
    assert ("over the saturation line" in text) is saturated, text


async def test_measure_cycles_open_loop_keeps_its_rate() -> None:
    """With ``rate`` the same cycles run open loop: 60 at 200/s take ≈ 0.3 s, all clean."""
    with trio.fail_after(60):
        async with running() as target:
            run = await measure_cycles(target.url, 60, concurrency=10, rate=200.0)
    assert run.cycles == 60 and run.clean == 60
    assert run.wall_s >= 59 / 200  # the schedule, not the closed loop's as-fast-as-possible


@pytest.mark.usefixtures("bounded_sync")
def test_render_warns_when_cycles_were_not_clean() -> None:
    run = CycleRun(cycles=10, clean=7, user_s=0.002, sys_s=0.001, wall_s=0.01)
    text = render(Calibration("builtin", 5, 1, (run,)))
    assert "warning: 3 cycles did not end clean" in text
    assert "300.0 µs client CPU per cycle" in text
    assert "3,333 clean-close cycles/s per core" in text


@pytest.mark.usefixtures("bounded_sync")
def test_calibrate_cli_json() -> None:
    result = CliRunner().invoke(
        app, ["calibrate", "--cycles", "120", "--runs", "2", "--concurrency", "8", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["target"] == "builtin" and data["concurrency"] == 8
    assert [run["cycles"] for run in data["runs"]] == [120, 120]
    assert [run["clean"] for run in data["runs"]] == [120, 120]
    cpu = data["cpu_us_per_cycle"]
    assert cpu > 0
    assert data["cycles_per_s_per_core"] == pytest.approx(1e6 / cpu, rel=0.01)


@pytest.mark.usefixtures("bounded_sync")
def test_calibrate_cli_text() -> None:
    result = CliRunner().invoke(app, ["calibrate", "--cycles", "60", "--runs", "1"])
    assert result.exit_code == 0, result.output
    assert "60/60 clean" in result.output
    assert "one process ≈" in result.output


@pytest.mark.usefixtures("bounded_sync")
@pytest.mark.parametrize("flag", ["--cycles", "--runs", "--concurrency"])
def test_calibrate_rejects_non_positive_counts(flag: str) -> None:
    result = CliRunner().invoke(app, ["calibrate", flag, "0"])
    assert result.exit_code == 2
    assert "must be >= 1" in result.output
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("bounded_sync")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin")
def test_pin_cpus_puts_target_and_client_on_different_cpus() -> None:
    saved = os.sched_getaffinity(0)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        cpu = pin_cpus(child.pid)
        cpus = sorted(saved)
        assert cpu == cpus[1]
        assert os.sched_getaffinity(0) == {cpus[1]}
        assert os.sched_getaffinity(child.pid) == {cpus[0]}
    finally:
        os.sched_setaffinity(0, saved)
        child.kill()
        child.wait(10)


def test_benchmark_harness_prints_everything_as_json() -> None:
    """benchmarks/cycle.py end to end: built-in target, wsload + a floor, held connections
    without and with permessage-deflate."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "cycle.py"),
            "--target",
            "builtin",
            "--runs",
            "1",
            "--cycles",
            "100",
            "--compare",
            "wsload-arrival,raw-trio",
            "--rate",
            "400",
            "--held",
            "100",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["target"].startswith("wsload built-in server")
    wsload = report["clients"]["wsload"]
    assert wsload["runs"][0]["clean"] == 100
    assert wsload["median_cpu_us_per_cycle"] > 0
    assert wsload["runs"][0]["loop_lag_us"]["count"] >= 0
    floor = report["clients"]["raw-trio"]
    assert floor["median_cpu_us_per_cycle"] > 0 and floor["ratio_to_wsload"] > 0
    assert floor["median_run_ratio_to_raw_trio"] == 1.0
    assert wsload["median_run_ratio_to_raw_trio"] > 0
    arrival = report["clients"]["wsload-arrival"]
    assert arrival["runs"][0]["clean"] == 100 and arrival["median_run_ratio_to_wsload"] > 0
    # without and with compression, and with a session script
    for kind, deflated in (
        ("held", 0),
        ("held-deflate", 100),
        ("held-lean", 100),
        ("held-script", 0),
    ):
        held = report["held"][kind]
        assert held["held"] == 100 and held["clean"] == 100, kind
        assert held["deflated"] == deflated, kind
        assert held["rss_held_bytes"] > 0 and held["rss_before_bytes"] > 0
        assert "rss_per_connection_bytes" in held
        # the storm release: every Close after the release, the last not before the first
        assert 0 <= held["release_to_first_close_ms"] <= held["release_to_last_close_ms"], kind
        assert held["release_to_last_close_ms"] <= held["release_to_all_ended_ms"], kind
        assert held["release_cpu_us_per_connection"] > 0, kind
