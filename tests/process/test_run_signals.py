"""Ctrl-C on `wsload run`: real subprocesses, real signals, results still written, exit 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from children import wait_for_load
from hostile import HostileServer
from timing import EXIT_SLACK

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
        wait_for_load(proc, out)
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
    assert elapsed < 2.0 + EXIT_SLACK  # the 2 s shutdown_grace, not the 60 s run
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["interrupted"] is True
    attempted = summary["totals"]["attempted"]
    assert attempted > 0
    assert sum(summary["outcomes"].values()) == attempted


# --- more signals: SIGTERM, Ctrl-C to the whole group, a second signal, the grace bound -----


def _start(tmp_path: Path, text: str, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    """``wsload run`` in its own session (so a signal can go to its whole process group, as a
    terminal's Ctrl-C does); returns once the interval log holds the run's first interval."""
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsload", "run", str(path), "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    wait_for_load(proc, out)
    return proc, out


def _finish(proc: subprocess.Popen[str], timeout: float = 20) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _summary(out: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["interrupted"] is True
    assert sum(summary["outcomes"].values()) == summary["totals"]["attempted"] > 0
    return summary


def test_sigterm_to_the_group_stops_cleanly_and_writes_every_result(tmp_path: Path) -> None:
    """SIGTERM (and a group-wide signal, like Ctrl-C in a terminal, which also reaches the
    built-in server's process): clean closes, exit 130, report printed, hlog and summary kept."""
    proc, out = _start(tmp_path, SCENARIO)
    stopped_at = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    stdout, err = _finish(proc)
    elapsed = time.monotonic() - stopped_at
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert elapsed < 2.0 + EXIT_SLACK  # the 2 s shutdown_grace, not the 60 s run
    summary = _summary(out)
    outcomes = {k: v for k, v in summary["outcomes"].items() if v}
    # the built-in server survived the group signal, so every close was clean
    assert set(outcomes) == {"clean"}, outcomes
    assert "interrupted: the run stopped before its planned end" in stdout
    assert f"results: {out}" in stdout.replace("\n", "")
    log = (out / "histograms.hlog").read_text(encoding="utf-8").splitlines()
    intervals = [line for line in log if line and not line.startswith(("#", '"'))]
    assert len(intervals) >= 2  # the run's intervals and the final partial one
    assert (out / "scenario.toml").exists()


HOSTILE = """
name = "sig-hostile"
[target]
url = "{url}"
[load]
model = "arrival"
rate = 20
duration = "60s"
shutdown_grace = "{grace}"
[session]
messages = 0
hold = "60s"
[[close]]
kind = "clean"
timeout = "60s"
"""


def test_first_signal_is_bounded_by_shutdown_grace(tmp_path: Path) -> None:
    """A server that never answers a Close: after SIGINT the open connections send Close and
    wait; ``shutdown_grace`` (1 s) later they are terminated and recorded ``interrupted``."""
    with HostileServer("silent") as server:
        # --no-report: the bound is on the run, not on rendering a page afterwards
        proc, out = _start(
            tmp_path, HOSTILE.format(url=server.url, grace="1s"), "--quiet", "--no-report"
        )
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = _finish(proc)
        elapsed = time.monotonic() - stopped_at
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert 1.0 <= elapsed < 1.0 + EXIT_SLACK  # the 1 s grace, not the 60 s close timeout
    summary = _summary(out)
    assert summary["outcomes"]["interrupted"] == summary["totals"]["attempted"]
    assert summary["close_codes"]["sent"] == {}  # interrupted records carry no close data


def test_second_signal_terminates_at_once(tmp_path: Path) -> None:
    """shutdown_grace 60 s would keep the run going; the second SIGINT ends it now."""
    with HostileServer("silent") as server:
        proc, out = _start(
            tmp_path, HOSTILE.format(url=server.url, grace="60s"), "--quiet", "--no-report"
        )
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None  # still in its grace period
        second_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = _finish(proc)
        elapsed = time.monotonic() - second_at
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert elapsed < EXIT_SLACK  # far below the 60 s grace
    summary = _summary(out)
    assert summary["outcomes"]["interrupted"] == summary["totals"]["attempted"]
    log = (out / "histograms.hlog").read_text(encoding="utf-8").splitlines()
    assert len([line for line in log if line and not line.startswith(("#", '"'))]) >= 2


def test_a_burst_of_signals_never_loses_the_results(tmp_path: Path) -> None:
    """SIGINT every 20 ms until wsload exits: whichever phase each lands in (the run, the
    built-in server's shutdown, writing the results), summary.json is written and no
    KeyboardInterrupt traceback escapes."""
    proc, out = _start(tmp_path, SCENARIO, "--quiet")
    deadline = time.monotonic() + 15
    while proc.poll() is None and time.monotonic() < deadline:
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
    _, err = _finish(proc)
    # a signal that lands while the interpreter finalizes (results long written) kills it
    # by SIGINT: -2 here, 130 in a shell, like the exit code wsload returns itself
    assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err)
    assert "Traceback" not in err
    _summary(out)


def test_a_signal_while_the_builtin_server_starts_still_writes_results(tmp_path: Path) -> None:
    """SIGINT before the run's own signal handling is up (the built-in server is still
    starting): noted, taken as a stop as soon as the run starts, results written, exit 130."""
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsload", "run", str(path), "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not (out / "scenario.toml").exists():  # written just before trio.run starts
        assert time.monotonic() < deadline and proc.poll() is None, "run did not start"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = _finish(proc)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["interrupted"] is True
    assert summary["duration_s"] < 5  # stopped at once, not after the 60 s run


def test_a_signal_before_the_run_starts_says_nothing_was_measured(tmp_path: Path) -> None:
    """SIGTERM or SIGINT while the command still reads its scenario (a FIFO nobody writes:
    the process is in wsload's code, before the run's own signal handling): exit 130 and one
    line saying nothing was measured, not a silent death by SIGTERM, a silent 130 or
    Typer's "Aborted!" with exit 1."""
    fifo = tmp_path / "s.toml"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsload", "run", str(fifo), "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        writer = -1
        try:
            deadline = time.monotonic() + 20
            while writer < 0:  # a writer can open the FIFO once wsload opened it to read
                assert time.monotonic() < deadline and proc.poll() is None, "no scenario read"
                try:
                    writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:
                    time.sleep(0.01)
            os.killpg(proc.pid, sig)  # wsload now waits for the scenario's bytes
            _, err = _finish(proc)
        finally:
            if writer >= 0:
                os.close(writer)
        assert proc.returncode == 130, (sig, err)
        assert "Traceback" not in err and "Aborted" not in err
        assert "interrupted before the run started: nothing measured, no results written" in err
        assert not out.exists()


_SIGNAL_AT_IMPORT = """\
import importlib.abc, os, signal, sys

class _SignalAt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "wsload._compiled":  # inside wsload/__init__.py, before the entry runs
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.{sig})
        return None

sys.meta_path.insert(0, _SignalAt())
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("how", ["console script", "python -m"])
def test_a_signal_while_the_package_imports_ends_it_with_one_line(
    tmp_path: Path, how: str, sig: str
) -> None:
    """The window before the command's entry can catch a signal: the package's own import
    (choosing the build hashes the compiled sources). A ``sitecustomize`` sends the signal
    while ``wsload/__init__.py`` imports ``wsload._compiled``: exit 130 and one line, not a
    silent death by SIGTERM or a KeyboardInterrupt traceback."""
    (tmp_path / "sitecustomize.py").write_text(_SIGNAL_AT_IMPORT.format(sig=sig), "utf-8")
    script = Path(sys.executable).with_name("wsload")
    command = [str(script)] if how == "console script" else [sys.executable, "-m", "wsload"]
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [*command, "--version"],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        130,
        "",
        "wsload: interrupted while starting: nothing done\n",
    )
