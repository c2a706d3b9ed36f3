"""``--workers`` as a user runs it: a real ``wsload run`` process, real signals, a real crash.

Ctrl-C (to the parent, or to the whole process group) and a group-wide SIGTERM reach the
parent, which stops every worker gracefully and still writes the merged result (exit 130); the
workers ignore both signals from their first instruction, so a signal during their start-up
kills none of them, and a stop before the start still ends in a (near-empty) written result.
A worker killed mid-run is reported; the other worker's results are kept and
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
from typing import Any

import pytest
from children import wait_for_load
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


def _launch(tmp_path: Path, url: str) -> tuple[subprocess.Popen[str], Path]:
    """``wsload run --workers 2`` in its own session (a signal can go to its whole process
    group, as a terminal's Ctrl-C does)."""
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
        start_new_session=True,
    )
    return proc, out


def _start(tmp_path: Path, url: str, started: int = 1) -> tuple[subprocess.Popen[str], Path]:
    """``_launch``, returning once the interval log shows ``started`` connections started."""
    proc, out = _launch(tmp_path, url)
    wait_for_load(proc, out, started=started)
    return proc, out


def _workers(pid: int) -> list[int]:
    """The worker processes of ``pid`` (spawned children; not the resource tracker)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():  # per thread: whichever thread spawned
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
    proc, out = _start(tmp_path, f"ws://127.0.0.1:{ws_peer.port}/echo", started=100)
    workers = _workers(proc.pid)
    assert len(workers) == 2
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
    log = out / "segments" / "1of2" / "histograms.hlog"
    deadline = time.monotonic() + 30
    while not (log.exists() and "Tag=" in log.read_text(encoding="utf-8")):  # it measured
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
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
    # the dead one is named, with what the parent had received of it before it died
    (dead,) = summary["failed_segments"]
    assert dead["segment"] == "1/2" and "exited with code -9" in dead["error"]
    assert dead["intervals"] >= 1 and dead["attempted"] > 0
    # and the verdict names it with those figures (docs/scale-out.md), beside the interruption
    assert summary["verdict"] == "inconclusive"
    (reason,) = [r for r in summary["reasons"] if r["code"] == "segment_failed"]
    assert "1/2 (exited with code -9" in reason["message"]
    assert (
        f"it had measured {dead['attempted']:,} connections in {dead['intervals']} s"
        in reason["message"]
    )
    assert sorted(p.name for p in (out / "segments").iterdir()) == ["0of2", "1of2"]
    assert (out / "segments" / "0of2" / "summary.json").exists()
    assert not (out / "segments" / "1of2" / "summary.json").exists()  # only its time series


def _stopped_summary(out: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["interrupted"] is True
    assert sum(summary["outcomes"].values()) == summary["totals"]["attempted"]
    return summary


def test_sigterm_to_the_group_stops_every_worker_gracefully(
    tmp_path: Path, ws_peer: WebsocketsPeer
) -> None:
    """docs/reliability.md: SIGTERM to the whole group is a graceful stop (the workers get it
    too, and must leave the stop to the parent), every result written, exit 130."""
    proc, out = _start(tmp_path, f"ws://127.0.0.1:{ws_peer.port}/echo", started=100)
    assert len(_workers(proc.pid)) == 2
    os.killpg(proc.pid, signal.SIGTERM)
    err = _finish(proc)
    assert proc.returncode == 130, err
    assert "warning: worker" not in err  # neither worker died of the signal
    summary = _stopped_summary(out)
    assert summary["generator"]["processes"] == 2
    assert summary["generator"]["segment"] is None
    assert summary["totals"]["attempted"] >= 100
    assert {name for name, n in summary["outcomes"].items() if n} <= {"clean", "interrupted"}
    assert sorted(p.name for p in (out / "segments").iterdir()) == ["0of2", "1of2"]


def test_sigint_before_the_workers_start_still_writes_the_run(tmp_path: Path) -> None:
    """Ctrl-C while the built-in server starts: the stop reaches the workers before their
    start; like the in-process run, the run ends at once, written, exit 130."""
    proc, out = _launch(tmp_path, "builtin")
    deadline = time.monotonic() + 30
    while not (out / "scenario.toml").exists():  # written once the run owns the signals
        assert time.monotonic() < deadline, "run did not begin"
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    err = _finish(proc)
    assert proc.returncode == 130, err
    assert "warning: worker" not in err
    summary = _stopped_summary(out)
    assert summary["generator"]["processes"] == 2
    assert summary["generator"]["segment"] is None
    assert summary["totals"]["attempted"] < 100  # stopped at once, not after the 60 s plan


def test_a_ctrl_c_burst_during_worker_start_up_kills_no_worker(
    tmp_path: Path, ws_peer: WebsocketsPeer
) -> None:
    """SIGINT to the whole group every 20 ms while the workers start (their interpreters import
    wsload meanwhile): no KeyboardInterrupt in any process, every worker's result written."""
    proc, out = _launch(tmp_path, f"ws://127.0.0.1:{ws_peer.port}/echo")
    deadline = time.monotonic() + 30
    while not (out / "scenario.toml").exists():
        assert time.monotonic() < deadline, "run did not begin"
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    burst_end = time.monotonic() + 15
    while proc.poll() is None and time.monotonic() < burst_end:
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.02)
    err = _finish(proc)
    # a signal that lands while the interpreter finalizes (results long written) kills it
    # by SIGINT: -2 here, 130 in a shell (as in test_run_signals)
    assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err)
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
    assert "warning: worker" not in err
    summary = _stopped_summary(out)
    assert summary["generator"]["processes"] == 2
    assert summary["generator"]["segment"] is None
