"""Waiting on a child ``wsload run`` for a readiness sign it writes, instead of sleeping; and
the signals a child is started with when a test sends it SIGINT or SIGTERM.

A fixed sleep after a child starts is either too long (the suite waits for nothing) or, on a
busy machine, too short: the child's interpreter, imports and built-in server can take
seconds. The sign here is the run's interval timeline (``timeline.jsonl``, one line a second):
once an interval shows connections started or in flight, the load is flowing; a count of
them says how far it went (not a second of real time, which a busy machine stretches).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["default_signals", "wait_for_load"]


def default_signals() -> None:
    """``preexec_fn`` of a child a test signals: SIGINT and SIGTERM at their defaults and not
    blocked, as a shell starts a command, whatever this pytest worker process holds. A child
    inherits an ignored or blocked signal, and a worker was seen ignoring SIGINT late in a
    whole-suite run (which earlier test left it so was not found): its children then never saw
    the SIGINT the test sent (a 20 s timeout, a run that ended 0)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def _started(timeline: Path) -> int:
    """Connections the run has started so far by its timeline: those of its complete
    intervals, plus the last one's in flight."""
    if not timeline.exists():
        return 0
    lines = timeline.read_text(encoding="utf-8").split("\n")[:-1]  # complete lines only
    intervals = [json.loads(line) for line in lines]
    done = sum(interval["attempted"] for interval in intervals)
    return done + (intervals[-1]["in_flight"] if intervals else 0)


def wait_for_load(
    proc: subprocess.Popen[Any], out: Path, timeout: float = 30.0, started: int = 1
) -> None:
    """Return once ``out/timeline.jsonl`` shows ``started`` connections started (by default
    one: the load is flowing); fail if ``proc`` exits first or ``timeout`` passes (the child
    is killed then, its output in the message)."""
    deadline = time.monotonic() + timeout
    while _started(out / "timeline.jsonl") < started:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(f"the run did not start: {proc.communicate()}")
        time.sleep(0.05)
