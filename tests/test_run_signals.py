"""Ctrl-C on `wsload run`: a real subprocess, a real SIGINT, results still written, exit 130."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

SCENARIO = """
name = "sig"
[target]
url = "builtin"
[load]
model = "arrival"
rate = 100
duration = "60s"
[session]
hold = "200ms"
"""


def test_sigint_stops_gracefully_and_keeps_results(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsload", "run", str(path), "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while (
            not (out / "histograms.hlog").exists() or (out / "histograms.hlog").stat().st_size < 200
        ):
            assert time.monotonic() < deadline, "run did not start"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        time.sleep(1.0)
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        elapsed = time.monotonic() - stopped_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert elapsed < 10  # shutdown_grace is 2 s; plus the server's exit
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["interrupted"] is True
    attempted = summary["totals"]["attempted"]
    assert attempted > 0
    assert sum(summary["outcomes"].values()) == attempted
