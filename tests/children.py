"""Waiting on a child ``wsload run`` for a readiness sign it writes, instead of sleeping.

A fixed sleep after a child starts is either too long (the suite waits for nothing) or, on a
busy machine, too short: the child's interpreter, imports and built-in server can take
seconds. The sign here is the run's interval timeline (``timeline.jsonl``, one line a second):
once an interval shows connections started or in flight, the load is flowing.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

__all__ = ["wait_for_load"]


def _load_seen(timeline: Path) -> bool:
    if not timeline.exists():
        return False
    lines = timeline.read_text(encoding="utf-8").split("\n")[:-1]  # complete lines only
    return any(
        (interval := json.loads(line))["attempted"] + interval["in_flight"] > 0 for line in lines
    )


def wait_for_load(proc: subprocess.Popen[str], out: Path, timeout: float = 30.0) -> None:
    """Return once ``out/timeline.jsonl`` holds an interval with connections in it; fail if
    ``proc`` exits first or ``timeout`` passes (the child is killed then, its output in the
    message)."""
    deadline = time.monotonic() + timeout
    while not _load_seen(out / "timeline.jsonl"):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(f"the run did not start: {proc.communicate()}")
        time.sleep(0.05)
