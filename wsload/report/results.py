"""Read a results directory back: summary.json, histograms.hlog, timeline.jsonl.

The reading side of docs/results.md, for ``wsload compare`` and ``wsload report``. Anything
wrong with the user's path or files is a ``UsageError`` naming the file (exit 2), never a
traceback; the optional files (hlog, timeline) may be missing or truncated (an interrupted or
crashed run), in which case the report shows what is there.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from wsload.errors import UsageError
from wsload.metrics.histograms import decode, new_histogram

__all__ = [
    "READABLE_SCHEMAS",
    "Interval",
    "ResultsData",
    "load_histograms",
    "load_results",
    "load_summary",
    "read_hlog_intervals",
    "summary_path",
]

READABLE_SCHEMAS = frozenset({1, 2})
"""The summary.json versions this wsload reads: 2 is its own; 1 differs only in taking
percentiles over finished measurements (docs/results.md, ``schema_version``), so an older
baseline still compares."""


@dataclass(frozen=True, slots=True)
class Interval:
    """One hlog line: seconds since the start, length, and that interval's histogram."""

    t: float
    length: float
    histogram: HdrHistogram


@dataclass(slots=True)
class ResultsData:
    """A results directory in memory.

    Attributes:
        path: the directory.
        summary: summary.json.
        totals: hlog tag (``close_handshake``, ``close_handshake:clean``) → all its intervals
            added (exactly the summary's histogram, minus overflow).
        intervals: tag → its intervals in time order.
        timeline: timeline.jsonl entries (empty when the file is absent).
    """

    path: Path
    summary: dict[str, Any]
    totals: dict[str, HdrHistogram] = field(default_factory=dict)
    intervals: dict[str, list[Interval]] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)


def summary_path(path: Path) -> Path:
    """``path`` itself if it is a file, else ``path/summary.json``."""
    path = Path(path)
    return path / "summary.json" if path.is_dir() else path


def load_summary(path: Path) -> dict[str, Any]:
    """A summary.json (or the one in results directory ``path``) as a dict.

    Raises:
        UsageError: missing, unreadable, not JSON, or not a wsload summary.
    """
    file = summary_path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        message = "no such file (expected a results directory or summary.json)"
        raise UsageError(f"{file}: {message}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{file}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{file}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise UsageError(f"{file}: not a wsload summary.json (no schema_version)")
    if data["schema_version"] not in READABLE_SCHEMAS:
        raise UsageError(
            f"{file}: schema_version {data['schema_version']!r} is not supported (this wsload "
            "reads 1 and 2)"
        )
    return data


def load_results(directory: Path) -> ResultsData:
    """summary.json plus the optional histograms.hlog and timeline.jsonl of ``directory``.

    Raises:
        UsageError: ``directory`` is not a results directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: not a results directory")
    data = ResultsData(path=directory, summary=load_summary(directory))
    _read_hlog(directory / "histograms.hlog", data)
    data.timeline = _read_timeline(directory / "timeline.jsonl")
    return data


def _read_hlog(path: Path, data: ResultsData) -> None:
    data.intervals = read_hlog_intervals(path)
    data.totals = _totals(data.intervals)


def _totals(intervals: dict[str, list[Interval]]) -> dict[str, HdrHistogram]:
    totals = {}
    for tag, items in intervals.items():
        total = new_histogram()
        for item in items:
            total.add(item.histogram)
        totals[tag] = total
    return totals


def load_histograms(path: Path) -> dict[str, HdrHistogram] | None:
    """The total histograms by hlog tag of the results directory ``path`` (or of the
    directory holding summary.json ``path``), None when it has no histograms.hlog: what
    ``wsload compare`` needs for the percentiles' confidence intervals."""
    log = summary_path(path).parent / "histograms.hlog"
    if not log.is_file():
        return None
    return _totals(read_hlog_intervals(log))


def read_hlog_intervals(path: Path) -> dict[str, list[Interval]]:
    """Parse ``Tag=<tag>,<start>,<length>,<max>,<blob>`` lines into tag → intervals, in file
    order; a bad line is skipped (a crash can leave a half-written last line), a missing or
    unreadable file is empty."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    intervals: dict[str, list[Interval]] = defaultdict(list)
    for line in lines:
        if not line.startswith("Tag="):
            continue
        parts = line[4:].split(",")
        if len(parts) != 5:
            continue
        try:
            histogram = decode(parts[4])
            intervals[parts[0]].append(Interval(float(parts[1]), float(parts[2]), histogram))
        except ValueError:  # an undecodable line is a truncated one
            continue
    return dict(intervals)


def _read_timeline(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out
