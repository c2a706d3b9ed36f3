"""The shipped deploy scenarios against the shipped Node ``ws`` server (scenarios/servers/),
scaled down to 100 clients: the soft sweep's clean 1001s, the hard sweep's dropped handshakes,
the restart and the reconnect herd. Skipped without node and npm."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from verdicts import assert_passed_or_saturated

pytestmark = [
    pytest.mark.usefixtures("bounded_slow", "shipped_node_servers"),
    pytest.mark.slow,
    pytest.mark.node,
]

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
CLIENTS = 100


def run_shipped(name: str, tmp_path: Path) -> dict[str, Any]:
    """``scenarios/<name>.toml`` with 100 clients (opened at 200/s, the deploy at 1.5 s)."""
    text = (ROOT / "scenarios" / f"{name}.toml").read_text(encoding="utf-8")
    for old, new in (
        ("concurrency = 1000", f"concurrency = {CLIENTS}"),
        ("rate = 500 ", "rate = 200 "),
        ('at = "4s"', 'at = "1.5s"'),
        ('timeout = "6s"', 'timeout = "2s"'),
    ):
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "wsload", "run", str(path), "--out", str(out), "--quiet"],
        cwd=ROOT,  # the scenario's command is relative to the repository root
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    # its latency thresholds make a saturated run inconclusive (exit 1) on a busy machine
    assert_passed_or_saturated(done.returncode, summary, done.stderr)
    log = (out / "server.log").read_text(encoding="utf-8")
    assert log.count("every client gone, exiting") == 2  # the deploy and wsload's own stop
    return summary


def _reconnected_after_one_restart(summary: dict[str, Any]) -> None:
    process = summary["server_process"]
    assert process["restarts"] == 1
    assert [run["exit_status"] for run in process["runs"]] == [0, 0]
    reconnect = summary["reconnect"]
    assert (reconnect["clients"], reconnect["reconnected"], reconnect["gave_up"]) == (
        CLIENTS,
        CLIENTS,
        0,
    )
    assert reconnect["latency_us"]["time_to_reconnect"]["count"] == CLIENTS
    assert reconnect["latency_us"]["reconnect_delay"]["max"] <= 5_000_000 * 1.001
    assert summary["totals"]["opened"] == 2 * CLIENTS
    assert summary["totals"]["attempted"] == sum(summary["outcomes"].values())


def test_soft_deploy_every_client_gets_a_clean_1001_and_reconnects(tmp_path: Path) -> None:
    summary = run_shipped("deploy_soft", tmp_path)
    (event,) = summary["events"]
    assert event["open_at_signal"] == CLIENTS
    assert event["codes"] == {"1001": CLIENTS}
    assert event["closed_clean"] == CLIENTS and event["closed_abnormal"] == 0
    assert event["still_open_at_exit"] == 0
    # everyone answered: the second sweep, 5 s (the grace) after the signal, had nobody to
    # terminate, and the server exited before it
    assert event["latency_us"]["eof"]["max"] < 5_000_000
    assert event["exit_status"] == 0 and event["exit_s"] < 5.0
    # its latency thresholds are judged only by a run that was not saturated
    passed = summary["verdict"] == "pass"
    judged = [t for t in summary["thresholds"] if passed or t.get("unit") != "us"]
    assert all(t["ok"] for t in judged), summary["thresholds"]
    _reconnected_after_one_restart(summary)


def test_hard_deploy_drops_everyone_at_once_and_they_reconnect(tmp_path: Path) -> None:
    summary = run_shipped("deploy_hard", tmp_path)
    (event,) = summary["events"]
    assert event["open_at_signal"] == CLIENTS
    assert set(event["codes"]) <= {"1001", "1006"}
    assert sum(sum(c.values()) for c in event["close_events"].values()) == CLIENTS
    assert event["latency_us"]["eof"]["max"] < 1_000_000
    assert event["exit_status"] == 0 and event["exit_s"] < 1.0
    _reconnected_after_one_restart(summary)


BENCH = ROOT / "benchmarks" / "c100k.py"


def test_c100k_node_deploy_path_at_two_thousand(tmp_path: Path) -> None:
    """``benchmarks/c100k.py --server node`` (the 100,000 deploy against Node ``ws`` in several
    processes sharing the port) at 2,000, in a child whose file limit of 1,500 splits it as the
    100,000 are split: 2 generator processes, 2 Node processes; every swept client closed
    clean with 1001 and reconnected after the cluster's restart."""
    n = 2_000
    limited = ["prlimit", "--nofile=1500:1500"]
    if os.geteuid() == 0 and shutil.which("setpriv") is not None:  # root could raise it again
        limited = ["setpriv", "--bounding-set", "-sys_resource", "--", *limited]
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit not installed")
    bench = [sys.executable, str(BENCH), "--connections", str(n), "--rate", "2000", "--spread"]
    bench += ["2", "--every", "0.5", "--only", "deploy", "--server", "node", "--json"]
    bench += ["--out", str(tmp_path / "runs")]
    env = {**os.environ, "WSLOAD_CALIBRATION": str(tmp_path / "none.json")}
    done = subprocess.run(
        [*limited, *bench], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    deploy = json.loads(done.stdout)["deploy"]
    assert (deploy["workers"], deploy["server_processes"]) == (2, 2), deploy["decisions"]
    assert deploy["open_at_signal"] == deploy["closed_clean"] == n
    reconnect = deploy["reconnect"]
    assert reconnect["clients"] == reconnect["reconnected"] == n and reconnect["gave_up"] == 0
    assert deploy["echo_timeouts"] == 0
    assert (deploy["restarts"], deploy["exit_statuses"]) == (1, [0, 0])
    assert deploy["goals"]["rss"] and deploy["goals"]["restarted"]
    log = (tmp_path / "runs" / "deploy" / "server.log").read_text(encoding="utf-8")
    assert log.count("deploy_server: all 2 processes exited") == 2  # the deploy and the stop
