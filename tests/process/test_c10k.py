"""``benchmarks/c100k.py`` at 10,000: the storm and the deploy through the same code path.

The benchmark's 100,000 on this machine split over workers (file limit), server processes and
source addresses (ports); here a child with a file limit of 3,000 (``prlimit``) in its own
network namespace with 8,000 ephemeral ports (``unshare --net``) makes the same decisions for
10,000: 4 workers, 4 built-in server processes, 3 source addresses. The counts must be exact
(every connection clean, every swept client closed clean and reconnected); the timing goals
(saturation, release within 1 s) are the benchmark's, on a quiet machine, and not asserted
here. Slow: 10,000 connections twice, about 90 s on a busy 2-core machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("bounded_slow")]

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "c100k.py"
N = 10_000
NARROWED = 'ip link set lo up && echo "40000 47999" > /proc/sys/net/ipv4/ip_local_port_range'


def test_ten_thousand_storm_and_deploy_sized_by_the_plan(tmp_path: Path) -> None:
    for tool in ("unshare", "ip", "prlimit", "setpriv"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    if os.geteuid() != 0:
        pytest.skip("a network namespace of its own needs root")
    bench = [sys.executable, str(BENCH), "--connections", str(N), "--rate", "2000"]
    bench += ["--spread", "3", "--every", "0.5", "--json", "--out", str(tmp_path / "runs")]
    # the sweep 30 s after the planned opening (5 s), not 11 s: a busy machine opened only
    # 7,325 of the 10,000 by then, and a sweep of a half-open storm is not the deploy asked for
    bench += ["--sweep-after", "30"]
    limited = ["setpriv", "--bounding-set", "-sys_resource", "--", "prlimit", "--nofile=3000:3000"]
    prefix = ["unshare", "--net", "sh", "-c", f'{NARROWED} && exec "$@"', "sh", *limited]
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no network namespace here: {probe.stderr.strip()[:200]}")
    # no saved calibration: another test in this process may have saved a busy machine's
    env = {**os.environ, "WSLOAD_CALIBRATION": str(tmp_path / "none.json")}
    proc = subprocess.run([*prefix, *bench], capture_output=True, text=True, timeout=600, env=env)
    assert proc.stdout.strip(), proc.stderr[-3000:]
    results = json.loads(proc.stdout)
    storm, deploy = results["storm"], results["deploy"]
    for run in (storm, deploy):
        assert (run["workers"], run["server_processes"], run["source_addresses"]) == (4, 4, 3)
        assert run["goals"]["rss"], run["rss_peak_mb"]
        assert len(run["loop_lag_p99_us"]) == 4  # every worker's own figure
    assert storm["connections"] == storm["clean"] == N
    assert storm["goals"]["clean"]
    assert storm["release_to_last_close_us"] is not None
    assert deploy["open_at_signal"] == deploy["closed_clean"] == N
    assert deploy["reconnect"]["clients"] == deploy["reconnect"]["reconnected"] == N
    assert deploy["reconnect"]["gave_up"] == 0
