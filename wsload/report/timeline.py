"""timeline.jsonl: the per-interval counters the interval log cannot hold.

histograms.hlog carries each interval's latency histograms, but not how many connections were
in flight, started, dropped or ended with which outcome in that second, which the report's time
series need. One JSON object per interval, appended and flushed as the run goes (like the hlog,
a crash keeps every line written)::

    {"t": 0.0, "length": 1.0, "in_flight": 12, "attempted": 200, "opened": 200,
     "dropped": 0, "outcomes": {"clean": 160, "terminated": 40}}

``t`` is seconds since the first interval's start (the hlog's ``StartTimestamp``); outcomes
with a zero count are left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from wsload.metrics.snapshots import IntervalSnapshot
from wsload.report import files

__all__ = ["TimelineWriter", "timeline_entry"]


def timeline_entry(snapshot: IntervalSnapshot, origin: float) -> dict[str, Any]:
    """The JSON object of one interval (``origin``: run-clock time of ``t = 0``)."""
    return {
        "t": round(max(0.0, snapshot.start - origin), 3),
        "length": round(max(0.0, snapshot.length), 3),
        "in_flight": snapshot.in_flight,
        "attempted": snapshot.attempted,
        "opened": snapshot.opened,
        "dropped": snapshot.dropped,
        "outcomes": {name: n for name, n in snapshot.outcomes.items() if n},
    }


class TimelineWriter:
    """Appends one line per interval snapshot to ``path`` (created user-only, truncated)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.origin: float | None = None
        self._file: TextIO | None = files.open_log(self.path)

    def write_interval(self, snapshot: IntervalSnapshot) -> None:
        """Append and flush one interval (ignored once closed: a late snapshot is harmless)."""
        if self._file is None:
            return
        if self.origin is None:
            self.origin = snapshot.start
        self._file.write(json.dumps(timeline_entry(snapshot, self.origin)) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
