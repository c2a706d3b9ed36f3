"""``wsload serve --processes N``: N real server processes on one port (SO_REUSEPORT)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from wsload.runner.modes.execute import execute_run
from wsload.scenario.parse import parse_scenario
from wsload.server.multi import sum_stats

pytestmark = pytest.mark.usefixtures("bounded_sync")


def test_sum_stats_adds_numbers_and_nested_counters() -> None:
    a = {"connections_accepted": 3, "close_codes_received": {"1000": 2}, "name": "x"}
    b = {"connections_accepted": 4, "close_codes_received": {"1000": 1, "1001": 5}, "name": "y"}
    assert sum_stats([a, b]) == {
        "connections_accepted": 7,
        "close_codes_received": {"1000": 3, "1001": 5},
        "name": "x",
    }


def test_two_processes_serve_one_port_and_sum_their_statistics(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsload", "serve", "--processes", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(r"listening on ws://127\.0\.0\.1:(\d+) \(2 processes\)", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
        scenario = parse_scenario(
            f'name = "p"\nseed = 2\n[target]\nurl = "ws://127.0.0.1:{match[1]}/"\n'
            '[load]\nmodel = "storm"\nconcurrency = 120\n'
        )
        execute_run(scenario, out=tmp_path / "r", quiet=True)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    stats = json.loads(out)
    assert stats["connections_accepted"] == 120
    assert stats["close_codes_received"] == {"1000": 120}
    summary = json.loads((tmp_path / "r" / "summary.json").read_text(encoding="utf-8"))
    assert summary["outcomes"]["clean"] == 120
