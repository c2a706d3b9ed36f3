"""``wsload merge DIR... --out DIR``: one result from the result directories of segments.

Segments may run anywhere (another machine, a Kubernetes Indexed Job); each leaves a results
directory. Merging reads each one's ``totals.json`` (the run's total histograms, encoded, and
counters: exact) for summary.json, and sums their ``histograms.hlog`` interval by interval for
the time series. It refuses (exit 2) directories of different scenarios (``scenario_hash``) and
overlapping segments, and warns when segments are missing (the summary's ``generator.segment``
then names the shares present).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from wsload.errors import ScenarioError, UsageError
from wsload.metrics.histograms import decode, new_histogram
from wsload.report import files, hlog, terminal
from wsload.runner.execute import EXIT_OK, EXIT_THRESHOLDS
from wsload.runner.result_files import write_result
from wsload.runner.segment_run import SegmentResult
from wsload.scenario.dump import scenario_hash, scenario_to_toml
from wsload.scenario.model import METRICS
from wsload.scenario.parse import load_scenario

__all__ = ["merge_hlogs", "merge_results"]

_Key = tuple[int, str]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: missing (not a wsload results directory?)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable: {exc}") from None


def _load_part(directory: Path) -> tuple[SegmentResult, str, datetime]:
    totals = _read_json(directory / "totals.json")
    data = _read_json(directory / "summary.json")
    try:
        part = SegmentResult.from_wire(totals["result"])
        started = datetime.fromisoformat(str(data["started_at"]).replace("Z", "+00:00"))
        return part, str(totals["scenario_hash"]), started
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{directory}/totals.json: {exc}") from None


def merge_hlogs(texts: Sequence[str]) -> list[tuple[str, float, float, HdrHistogram]]:
    """Sum interval logs line by line into ``(tag, start, length, histogram)``, in order.

    Segments start their schedules at one instant and tick every second from it, so the
    ``i``-th second of every log (start rounded to whole seconds) is the same interval.

    Raises:
        ValueError: a malformed line.
    """
    merged: dict[_Key, list[Any]] = {}
    for text in texts:
        for line in text.splitlines():
            if not line.startswith("Tag="):
                continue
            tag, start_s, length_s, _max, blob = line[4:].split(",")
            start, length = float(start_s), float(length_s)
            key = (round(start), tag)
            entry = merged.get(key)
            if entry is None:
                merged[key] = [start, start + length, new_histogram()]
                entry = merged[key]
            entry[0], entry[1] = min(entry[0], start), max(entry[1], start + length)
            entry[2].add(decode(blob))
    lines = [(tag, e[0], e[1] - e[0], e[2]) for (_, tag), e in sorted(merged.items(), key=_order)]
    return lines


def _order(item: tuple[_Key, list[Any]]) -> tuple[int, bool, int, str]:
    """Time, then totals before behaviours, metrics in their documented order (as ``run``)."""
    (second, tag), _ = item
    metric, label = hlog.split_tag(tag)
    rank = METRICS.index(metric) if metric in METRICS else len(METRICS)
    return second, label is not None, rank, tag


def merge_results(
    dirs: Sequence[Path], out: Path, *, quiet: bool = False, json_out: bool = False
) -> int:
    """Merge segment result directories into ``out``; return the exit code (0, or 1 when a
    threshold fails on the merged result).

    Raises:
        UsageError: not result directories, different scenarios, overlapping segments.
    """
    if not dirs:
        raise UsageError("merge: give at least one results directory")
    loaded = [(d, *_load_part(d)) for d in dirs]
    first_dir, _, first_hash, _ = loaded[0]
    for directory, _, digest, _ in loaded[1:]:
        if digest != first_hash:
            raise UsageError(
                f"{directory}: scenario_hash {digest} differs from {first_dir}'s {first_hash}: "
                "not segments of one scenario"
            )
    try:
        scenario = load_scenario(first_dir / "scenario.toml")
    except ScenarioError as exc:
        raise UsageError(f"{first_dir}: {exc}") from None
    if scenario_hash(scenario) != first_hash:
        raise UsageError(f"{first_dir}/scenario.toml does not match its totals.json")
    labels = tuple(spec.label for spec in scenario.close)
    try:
        part = SegmentResult.merge([p for _, p, _, _ in loaded], labels=labels)
    except ValueError as exc:
        raise UsageError(f"merge: {exc}") from None
    if part.segment is not None:
        sys.stderr.write(
            f"wsload: warning: segments missing: the merged result holds {part.segment}\n"
        )
    try:
        lines = merge_hlogs(
            [(d / "histograms.hlog").read_text(encoding="utf-8") for d, _, _, _ in loaded]
        )
    except (OSError, ValueError) as exc:
        raise UsageError(f"merge: cannot read an interval log: {exc}") from None
    started_at = min(started for _, _, _, started in loaded)
    out_dir = files.prepare_results_dir(out)
    files.write_text_atomic(out_dir / "scenario.toml", scenario_to_toml(scenario))
    log = hlog.format_header(started_at) + "".join(
        hlog.interval_line(tag, start, length, h) for tag, start, length, h in lines
    )
    files.write_text_atomic(out_dir / "histograms.hlog", log)
    data, verdicts = write_result(out_dir, scenario, started_at, part)
    if json_out:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif quiet:
        sys.stdout.write(f"{out_dir}\n")
    else:
        from rich.console import Console

        console = Console(highlight=False)
        console.print(terminal.summary_table(data))
        console.print(f"results: {out_dir}")
    return EXIT_THRESHOLDS if any(not v.ok for v in verdicts) else EXIT_OK
