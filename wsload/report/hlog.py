"""histograms.hlog: the run's time series as an HdrHistogram interval log (format 1.3).

One line per interval, metric and behaviour, written as the run goes (flushed each interval:
a crash keeps every line written). HdrHistogram's own tools read it: Java
``HistogramLogProcessor -tag close_handshake``, hdrh's ``HistogramLogReader``, HdrHistogramJS.

The log holds the finished measurements only: a censored one (started, never finished: a
timeout) has no value; summary.json counts them (docs/results.md), and the first line says so.

Tags (the log format forbids spaces and commas in them): ``<metric>`` for all behaviours and
``<metric>:<label>`` for one behaviour (``close_handshake:clean``). Metric names are fixed
snake_case or ``step.<name>`` (a named expect step: ``step.subscribe:clean``), and labels are
``[A-Za-z0-9_-]`` (the scenario parser enforces it), so the first
``:`` splits a tag unambiguously. Values are µs; ``Interval_Max`` is in ms. Timestamps are
seconds since ``StartTime`` (written as ``BaseTime`` too, so readers need not guess).

hdrh's ``HistogramLogWriter`` cannot write tags and its ``output_start_time`` is broken, so the
lines are formatted here, by pure functions, in the exact syntax its reader parses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TextIO

from hdrh.histogram import HdrHistogram

from wsload import __version__
from wsload.metrics.histograms import encode
from wsload.metrics.snapshots import IntervalSnapshot
from wsload.report import files

__all__ = [
    "LOG_FORMAT_VERSION",
    "IntervalLogWriter",
    "format_header",
    "format_interval",
    "interval_line",
    "make_tag",
    "split_tag",
]

LOG_FORMAT_VERSION = "1.3"

_FORBIDDEN_RE = re.compile(r"[\s,]")
_LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'


def make_tag(metric: str, label: str | None = None) -> str:
    """``close_handshake`` (all behaviours) or ``close_handshake:clean`` (one behaviour).

    Scenario labels cannot hold the characters the format forbids; should one get through
    anyway, each becomes ``_`` rather than failing the run mid-way.
    """
    tag = metric if label is None else f"{metric}:{label}"
    return _FORBIDDEN_RE.sub("_", tag)


def split_tag(tag: str) -> tuple[str, str | None]:
    """The inverse of ``make_tag``: ``(metric, label or None)``."""
    metric, sep, label = tag.partition(":")
    return metric, (label if sep else None)


def format_header(started_at: datetime) -> str:
    """The log's leading comment lines and legend, ``StartTime``/``BaseTime`` = ``started_at``."""
    if started_at.tzinfo is None or started_at.utcoffset() is None:
        started_at = started_at.replace(tzinfo=UTC)
    epoch = started_at.timestamp()
    human = started_at.astimezone(UTC).strftime("%a %b %d %H:%M:%S UTC %Y")
    return (
        f"#[Logged with wsload {__version__}: values in microseconds, Interval_Max in ms; "
        "tags <metric> and <metric>:<behaviour>; finished measurements only: censored ones "
        "(timeouts) are counted in summary.json]\n"
        f"#[Histogram log format version {LOG_FORMAT_VERSION}]\n"
        f"#[StartTime: {epoch:.3f} (seconds since epoch), {human}]\n"
        f"#[BaseTime: {epoch:.3f} (seconds since epoch)]\n"
        f"{_LEGEND}\n"
    )


def interval_line(tag: str, start_s: float, length_s: float, histogram: HdrHistogram) -> str:
    """One ``Tag=<tag>,<start>,<length>,<max ms>,<histoblob>`` line (with its newline)."""
    max_ms = histogram.get_max_value() / 1000
    return f"Tag={tag},{start_s:.3f},{length_s:.3f},{max_ms:.3f},{encode(histogram)}\n"


def format_interval(snapshot: IntervalSnapshot, origin: float) -> str:
    """Every line of one interval: totals first, then each behaviour; empty metrics skipped.

    Args:
        origin: the run-clock time that ``StartTime`` stands for (interval starts are written
            relative to it, never negative).
    """
    start = max(0.0, snapshot.start - origin)
    length = max(0.0, snapshot.length)
    lines = [
        interval_line(make_tag(metric), start, length, histogram)
        for metric, histogram in snapshot.histograms.items()
    ]
    for label, histograms in snapshot.by_label.items():
        lines.extend(
            interval_line(make_tag(metric, label), start, length, histogram)
            for metric, histogram in histograms.items()
        )
    return "".join(lines)


class IntervalLogWriter:
    """Appends interval snapshots to a histograms.hlog as the run goes.

    Args:
        path: the log file (created user-only, truncated).
        started_at: the run's wall-clock start (the log's ``StartTime``).
        origin: the run-clock time matching ``started_at``; default: the first snapshot's
            start, so the first interval starts at 0.000.
    """

    def __init__(self, path: Path, started_at: datetime, *, origin: float | None = None) -> None:
        self.path = Path(path)
        self.origin = origin
        self.intervals = 0
        self._file: TextIO | None = files.open_log(self.path)
        self._file.write(format_header(started_at))
        self._file.flush()

    def write_interval(self, snapshot: IntervalSnapshot) -> None:
        """Append one interval's lines and flush them to the OS (no fsync: it would stall the
        event loop for milliseconds; a process crash loses nothing written).

        Raises:
            ValueError: the writer is closed.
        """
        if self._file is None:
            raise ValueError(f"{self.path}: interval log already closed")
        if self.origin is None:
            self.origin = snapshot.start
        self._file.write(format_interval(snapshot, self.origin))
        self._file.flush()
        self.intervals += 1

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> IntervalLogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
