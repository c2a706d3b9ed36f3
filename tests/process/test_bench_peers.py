"""``benchmarks/cycle.py --compare picows,tsung``: the peers run for real, or are skipped with
the reason, never a traceback.

picows comes from the ``bench`` extra (absent from CI's ``test`` install: there the check is
the skip). Tsung is installed by the benchmark itself (apt-get, as root) and runs in a network
namespace the harness makes and deletes; where that cannot be (not root, no apt-get), the check
is the skip too. Small counts: what is checked is that every cycle of every client ran and
ended clean and that the figures are real measurements, not their size.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CYCLE = ROOT / "benchmarks" / "cycle.py"

pytestmark = pytest.mark.slow


def _cycle(*args: str) -> tuple[dict[str, Any], str, int]:
    """Run the harness (built-in target, one run, no held connections): (report, stderr, pid)."""
    cmd = [sys.executable, str(CYCLE), "--target", "builtin", "--runs", "1", "--held", "0"]
    proc = subprocess.Popen(
        [*cmd, *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=1200)  # installing Tsung may take minutes
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    report: dict[str, Any] = json.loads(out)
    return report, err, proc.pid


def _clean(
    report: dict[str, Any], kind: str, cycles: int, *, positive: bool = True
) -> dict[str, Any]:
    client: dict[str, Any] = report["clients"][kind]
    (run,) = client["runs"]
    assert "error" not in run, run
    assert run["cycles"] == cycles and run["clean"] == cycles, run
    assert run["cpu_us_per_cycle"] > 0 or not positive
    assert run["cpu_us_per_cycle"] == pytest.approx(
        run["user_us_per_cycle"] + run["sys_us_per_cycle"], abs=0.2
    )
    return client


def test_picows_runs_the_same_cycle_or_is_skipped_with_the_reason() -> None:
    report, err, _pid = _cycle("--compare", "raw-trio,picows", "--cycles", "200")
    _clean(report, "wsload", 200)
    if importlib.util.find_spec("picows") is None or importlib.util.find_spec("uvloop") is None:
        assert "picows" not in report["clients"]
        assert "not installed (pip install -e '.[bench]')" in report["skipped"]["picows"]
        assert "# picows skipped: " in err
        assert [row["peer"] for row in report["side_by_side"]] == ["raw-trio"]
        return
    picows = _clean(report, "picows", 200)
    assert picows["ratio_to_wsload"] > 0
    rows = {row["peer"]: row for row in report["side_by_side"]}
    assert rows["picows"]["goal"] == "< 1.0" and rows["picows"]["ratio"] > 0
    assert rows["raw-trio"]["goal"] == "<= 1.3"
    assert report["load_average"]["start"] and report["load_average"]["end"]


def test_tsung_runs_in_its_own_namespace_next_to_wsload_open_loop_or_is_skipped() -> None:
    report, err, pid = _cycle("--compare", "tsung", "--cycles", "150", "--tsung-rate", "300")
    _clean(report, "wsload", 150)
    if "tsung" in report["skipped"]:
        assert report["skipped"]["tsung"], "a skip says why"
        assert "tsung" not in report["clients"] and "wsload-open" not in report["clients"]
        assert "# tsung skipped: " in err
        return
    # Tsung's figure is the difference of two runs: exactly the extra sessions, all upgraded.
    # Its sign is not checked: at 150 sessions the difference (≈ 60 ms of CPU) is inside the
    # Erlang VM's start-up noise (≈ 1 s of CPU per run; it once came out -82 µs per cycle).
    tsung = _clean(report, "tsung", 150, positive=False)
    assert not [k for k in tsung["runs"][0]["tsung_counts"] if k.startswith("error")]
    # wsload open loop at the same rate, in the same namespace, against the same server
    wsload_open = _clean(report, "wsload-open", 150)
    assert wsload_open["runs"][0]["cycles_per_s"] > 0
    assert tsung["median_run_ratio_to_wsload"] == pytest.approx(
        tsung["runs"][0]["cpu_us_per_cycle"] / wsload_open["runs"][0]["cpu_us_per_cycle"],
        abs=0.01,
    )
    (row,) = report["side_by_side"]
    assert (row["wsload"], row["peer"], row["goal"]) == ("wsload-open", "tsung", "< 1.0")
    # the namespace and everything started in it are gone
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert f"wsload-bench-{pid}" not in names.stdout
