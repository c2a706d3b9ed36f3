"""``--workers`` as a user runs it: a real ``wsload run`` process, real signals, a real crash.

Ctrl-C reaches the parent, which stops every worker gracefully and still writes the merged
result (exit 130). A worker killed mid-run is reported; the other worker's results are kept and
``generator.segment`` names what the result holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers import WebsocketsPeer

SCENARIO = """
name = "workers"
seed = 8
[target]
url = "{url}"
[load]
model = "arrival"
rate = 100
duration = "60s"
drain = "3s"
shutdown_grace = "2s"
[session]
hold = "200ms"
"""


@pytest.fixture(scope="module")
def ws_peer() -> Iterator[WebsocketsPeer]:
    with WebsocketsPeer(close_timeout=0.5) as peer:
        yield peer


def _start(tmp_path: Path, url: str) -> tuple[subprocess.Popen[str], Path]:
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(url=url), encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wsload",
            "run",
            str(path),
            "--workers",
            "2",
            "--out",
            str(out),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    log = out / "histograms.hlog"
    while not log.exists() or "Tag=" not in log.read_text(encoding="utf-8"):  # intervals flow
        assert time.monotonic() < deadline, "run did not start"
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    return proc, out


def _workers(pid: int) -> list[int]:
    """The worker processes of ``pid`` (spawned children; not the resource tracker)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():  # per thread: spawned from a Trio thread
        try:
            children += (task / "children").read_text().split()
        except FileNotFoundError:  # that thread just ended
            continue
    out = []
    for child in children:
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            out.append(int(child))
    return sorted(out)


def _finish(proc: subprocess.Popen[str]) -> str:
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return err


def test_sigint_stops_every_worker_and_writes_the_merged_run(
    tmp_path: Path, ws_peer: WebsocketsPeer
) -> None:
    proc, out = _start(tmp_path, f"ws://127.0.0.1:{ws_peer.port}/echo")
    workers = _workers(proc.pid)
    assert len(workers) == 2
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    err = _finish(proc)
    assert proc.returncode == 130, err
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["interrupted"] is True
    assert summary["generator"]["processes"] == 2
    assert summary["totals"]["attempted"] >= 100
    assert sum(summary["outcomes"].values()) == summary["totals"]["attempted"]
    assert summary["duration_s"] < 20
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or b"Z" in Path(f"/proc/{pid}/stat").read_bytes()


def test_a_dead_worker_is_reported_and_the_rest_kept(
    tmp_path: Path, ws_peer: WebsocketsPeer
) -> None:
    proc, out = _start(tmp_path, f"ws://127.0.0.1:{ws_peer.port}/echo")
    victim = _workers(proc.pid)[1]
    signal_sent = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    err = _finish(proc)
    assert time.monotonic() - signal_sent < 30
    assert proc.returncode == 130, err
    assert "wsload: warning: worker 1/2" in err
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["generator"]["segment"] == "0/2"
    assert summary["generator"]["processes"] == 1
    assert summary["totals"]["attempted"] >= 50
    assert sorted(p.name for p in (out / "segments").iterdir()) == ["0of2", "1of2"]
    assert (out / "segments" / "0of2" / "summary.json").exists()
    assert not (out / "segments" / "1of2" / "summary.json").exists()  # only its time series
