"""The merge mode, ``wsload merge DIR... --out DIR``: one result from segments' directories.

Segments may run anywhere (another machine, a Kubernetes Indexed Job); each leaves a results
directory. Merging reads each one's ``totals.json`` (the run's total histograms, encoded, and
counters: exact) for summary.json, and sums their ``histograms.hlog`` interval by interval and
their ``timeline.jsonl`` line by line for the time series. Those two are read as ``wsload
report`` reads them (``wsload.report.results``): a truncated last line, which an interrupted or
crashed segment can leave, is skipped, not a failure. It refuses (exit 2) directories of
different scenarios (``scenario_hash``) and overlapping segments, and warns when segments are
missing (the summary's ``generator.segment`` then names the shares present).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from wsload.errors import ScenarioError, UsageError
from wsload.metrics.histograms import new_histogram
from wsload.metrics.result import SegmentResult
from wsload.report import files, hlog
from wsload.report.results import Interval, ResultsData, load_results
from wsload.runner.frame import Output, RunFrame
from wsload.runner.result_files import write_result
from wsload.runner.targets.deploy import merged_deploy
from wsload.runner.targets.managed import LOG_NAME
from wsload.scenario.dump import scenario_hash, scenario_to_toml
from wsload.scenario.model import METRICS
from wsload.scenario.parse import load_scenario

__all__ = ["load_part", "merge_hlogs", "merge_results", "merge_timelines"]

_Key = tuple[int, str]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: missing (not a wsload results directory?)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable: {exc}") from None


@dataclass(frozen=True, slots=True)
class _Loaded:
    """One segment's results directory: its exact totals and its time series."""

    directory: Path
    part: SegmentResult
    scenario_hash: str
    started_at: datetime
    data: ResultsData


def load_part(directory: Path) -> _Loaded:
    """A results directory as a mergeable part (``wsload merge``, ``run --repeat``).

    Raises:
        UsageError: not a complete results directory (totals.json, summary.json).
    """
    totals = _read_json(directory / "totals.json")
    data = load_results(directory)
    try:
        part = SegmentResult.from_wire(totals["result"])
        started = datetime.fromisoformat(str(data.summary["started_at"]).replace("Z", "+00:00"))
        return _Loaded(directory, part, str(totals["scenario_hash"]), started, data)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{directory}/totals.json: {exc}") from None


def merge_hlogs(
    logs: Sequence[dict[str, list[Interval]]],
) -> list[tuple[str, float, float, HdrHistogram]]:
    """Sum interval logs (``ResultsData.intervals``) into ``(tag, start, length, histogram)``.

    Segments start their schedules at one instant and tick every second from it, so the
    ``i``-th second of every log (start rounded to whole seconds) is the same interval.
    """
    merged: dict[_Key, list[Any]] = {}
    for intervals in logs:
        for tag, items in intervals.items():
            for item in items:
                start, end = item.t, item.t + item.length
                entry = merged.setdefault((round(start), tag), [start, end, new_histogram()])
                entry[0], entry[1] = min(entry[0], start), max(entry[1], end)
                entry[2].add(item.histogram)
    return [(tag, e[0], e[1] - e[0], e[2]) for (_, tag), e in sorted(merged.items(), key=_order)]


_TIMELINE_COUNTS = ("in_flight", "attempted", "opened", "dropped")


def merge_timelines(timelines: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Sum timeline.jsonl entries line by line: line ``i`` of every segment is second ``i``.

    Counts and outcomes add up (``in_flight`` too: the connections open across all segments);
    ``t`` is the earliest and ``length`` the longest of the line's entries. A segment that
    ended early (interrupted) simply adds nothing to the later lines.

    Raises:
        ValueError, TypeError, AttributeError: an entry that is not a timeline entry.
    """
    merged: list[dict[str, Any]] = []
    for timeline in timelines:
        for index, entry in enumerate(timeline):
            if index == len(merged):
                zeros = dict.fromkeys(_TIMELINE_COUNTS, 0)
                merged.append({"t": float(entry.get("t", 0.0)), "length": 0.0, **zeros})
                merged[index]["outcomes"] = {}
            line = merged[index]
            line["t"] = min(line["t"], float(entry.get("t", line["t"])))
            line["length"] = max(line["length"], float(entry.get("length", 0.0)))
            for name in _TIMELINE_COUNTS:
                line[name] += int(entry.get(name, 0))
            for name, n in dict(entry.get("outcomes", {})).items():
                line["outcomes"][name] = line["outcomes"].get(name, 0) + int(n)
    return merged


def _write_timeline(out_dir: Path, timelines: list[list[dict[str, Any]]]) -> None:
    """The merged timeline.jsonl, when every segment has one: ``--workers``' ``segments/``
    directories keep none, and a sum over some segments only would understate every line."""
    if not all(timelines):
        return
    try:
        merged = merge_timelines(timelines)
    except (ValueError, TypeError, AttributeError) as exc:
        sys.stderr.write(f"wsload: warning: timeline.jsonl not merged (malformed entry: {exc})\n")
        return
    files.write_text_atomic(
        out_dir / "timeline.jsonl", "".join(json.dumps(e) + "\n" for e in merged)
    )


def _copy_server_log(loaded: list[_Loaded], out_dir: Path) -> None:
    """The server owner's ``server.log`` (``--own-server``), beside the merged result."""
    for each in loaded:
        if each.data.summary.get("server_process") is not None:
            log = each.directory / LOG_NAME
            if log.is_file():
                files.write_text_atomic(out_dir / LOG_NAME, log.read_text(errors="replace"))


def _order(item: tuple[_Key, list[Any]]) -> tuple[int, bool, int, str]:
    """Time, then totals before behaviours, metrics in their documented order (as ``run``)."""
    (second, tag), _ = item
    metric, label = hlog.split_tag(tag)
    rank = METRICS.index(metric) if metric in METRICS else len(METRICS)
    return second, label is not None, rank, tag


def merge_results(
    dirs: Sequence[Path],
    out: Path,
    *,
    quiet: bool = False,
    json_out: bool = False,
    force: bool = False,
) -> int:
    """Merge segment result directories into ``out``; return the exit code (0, or 1 when a
    threshold fails on the merged result).

    Raises:
        UsageError: not result directories, different scenarios, overlapping segments.
    """
    if not dirs:
        raise UsageError("merge: give at least one results directory")
    loaded = [load_part(d) for d in dirs]
    first = loaded[0]
    for other in loaded[1:]:
        if other.scenario_hash != first.scenario_hash:
            raise UsageError(
                f"{other.directory}: scenario_hash {other.scenario_hash} differs from "
                f"{first.directory}'s {first.scenario_hash}: not segments of one scenario"
            )
    try:
        scenario = load_scenario(first.directory / "scenario.toml")
    except ScenarioError as exc:
        raise UsageError(f"{first.directory}: {exc}") from None
    if scenario_hash(scenario) != first.scenario_hash:
        raise UsageError(f"{first.directory}/scenario.toml does not match its totals.json")
    labels = tuple(spec.label for spec in scenario.close)
    try:
        part = SegmentResult.merge([each.part for each in loaded], labels=labels)
    except ValueError as exc:
        raise UsageError(f"merge: {exc}") from None
    if part.segment is not None:
        sys.stderr.write(
            f"wsload: warning: segments missing: the merged result holds {part.segment}\n"
        )
    try:
        extra = merged_deploy(scenario, part, [each.data.summary for each in loaded])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"merge: a segment's summary.json events: {exc!r}") from None
    lines = merge_hlogs([each.data.intervals for each in loaded])
    started_at = min(each.started_at for each in loaded)
    output = Output(out=out, quiet=quiet, json_out=json_out, force=force)
    with RunFrame(scenario.name, output, started_at=started_at) as frame:
        frame.write_scenario(scenario_to_toml(scenario))
        log = hlog.format_header(started_at) + "".join(
            hlog.interval_line(tag, start, length, h) for tag, start, length, h in lines
        )
        files.write_text_atomic(frame.out_dir / "histograms.hlog", log)
        _write_timeline(frame.out_dir, [each.data.timeline for each in loaded])
        if "server_process" in extra:
            _copy_server_log(loaded, frame.out_dir)
        data, _ = write_result(frame.out_dir, scenario, started_at, part, extra=extra)
        frame.finish(data, interrupted=False)
    return frame.exit_code
