"""Waiting on a child ``wsload run`` for a readiness sign it writes, instead of sleeping.

A fixed sleep after a child starts is either too long (the suite waits for nothing) or, on a
busy machine, too short: the child's interpreter, imports and built-in server can take
seconds. The sign here is the run's interval timeline (``timeline.jsonl``, one line a second):
once an interval shows connections started or in flight, the load is flowing; a count of
them says how far it went (not a second of real time, which a busy machine stretches).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["wait_for_load"]


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
