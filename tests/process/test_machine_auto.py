"""``wsload run`` sizing itself to the machine, for real: child ``wsload run`` processes started
with a small RLIMIT_NOFILE (``prlimit``) or in their own network namespace with a narrowed
ephemeral port range (``unshare --net``), so a plan of a few hundred connections is over the
limits and the runs take seconds. Without the sizing these plans fail connections with EMFILE
and EADDRNOTAVAIL (``local_resource``); with it every connection is ``clean``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("bounded_slow")]

CONNECTIONS = 400
NOFILE = 300  # 236 connections per process after the 64 reserved: 400 need 2 processes
PORTS = "40000 40399"  # 400 ports, 180 planned per source address: 400 need 3 addresses

SCENARIO = f"""
name = "sized"
seed = 3
[target]
url = "builtin"
connect_timeout = "10s"
handshake_timeout = "10s"
[load]
model = "storm"
concurrency = {CONNECTIONS}
rate = 400
open_deadline = "30s"
drain = "20s"
[session]
messages = 1
[[close]]
kind = "clean"
timeout = "10s"
"""


def _need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} (util-linux / iproute2) not installed")


def _run(tmp_path: Path, prefix: list[str], *extra: str) -> tuple[dict[str, Any], str]:
    scenario = tmp_path / "sized.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    out = tmp_path / "out"
    wsload = [sys.executable, "-m", "wsload", "run", str(scenario), "--out", str(out)]
    proc = subprocess.run(
        [*prefix, *wsload, "--quiet", "--no-report", *extra],
        # no saved calibration: another test in this process may have saved a busy machine's
        env={**os.environ, "WSLOAD_CALIBRATION": str(tmp_path / "none.json")},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if not (out / "summary.json").exists():
        raise AssertionError(f"no result (exit {proc.returncode}): {proc.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return summary, proc.stderr


def _small_file_limit() -> list[str]:
    """``prlimit`` to NOFILE, and CAP_SYS_RESOURCE dropped where this process has it (root:
    the sizing would raise the hard limit instead of splitting)."""
    _need("prlimit")
    prefix = ["prlimit", f"--nofile={NOFILE}:{NOFILE}", "--"]
    if os.geteuid() == 0:
        _need("setpriv")
        prefix = ["setpriv", "--bounding-set", "-sys_resource", "--", *prefix]
    return prefix


def test_a_plan_over_the_file_limit_gets_workers_and_server_processes(tmp_path: Path) -> None:
    summary, stderr = _run(tmp_path, _small_file_limit())
    assert "wsload: 2 generator processes (--workers 2)" in stderr, stderr
    assert "over one process's file limit of 300" in stderr
    assert "the built-in server in 2 processes" in stderr
    assert "warning" not in stderr, stderr
    generator = summary["generator"]
    assert (generator["workers"], generator["processes"], generator["file_limit"]) == (2, 2, 300)
    assert any("generator processes" in note for note in generator["decisions"])
    assert summary["target"]["server_processes"] == 2
    assert summary["outcomes"]["clean"] == CONNECTIONS
    assert summary["server"]["peak_open"] >= CONNECTIONS  # the sum of both processes' peaks


def test_workers_1_keeps_one_process(tmp_path: Path) -> None:
    summary, stderr = _run(tmp_path, _small_file_limit(), "--workers", "1")
    assert "generator processes" not in stderr
    assert "use --workers 2 or more" in stderr  # the pre-flight still says what to do
    assert summary["generator"]["workers"] == summary["generator"]["processes"] == 1
    assert summary["outcomes"]["local_resource"] > 0  # EMFILE: the limit bit, as warned


def test_a_plan_over_one_address_ports_gets_source_addresses(tmp_path: Path) -> None:
    _need("unshare", "ip")
    narrowed = (
        'ip link set lo up && echo "$0" > /proc/sys/net/ipv4/ip_local_port_range && exec "$@"'
    )
    prefix = ["unshare", "--net", "sh", "-c", narrowed, PORTS]
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no network namespace here: {probe.stderr.strip()}")
    summary, stderr = _run(tmp_path, prefix)
    assert "wsload: source addresses 127.0.0.1-127.0.0.3" in stderr, stderr
    assert "180 per address (40000-40399" in stderr
    assert summary["target"]["source_addresses"] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert summary["scenario"]["target"]["source_addresses"] == []  # the scenario as given
    assert summary["generator"]["workers"] == 1
    assert summary["outcomes"]["clean"] == CONNECTIONS
