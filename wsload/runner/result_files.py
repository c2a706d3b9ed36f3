"""Writing a finished result: summary.json, totals.json, per-segment directories.

Shared by ``wsload run`` (one process, ``--workers``, ``--cluster``) and ``wsload merge`` so that
every result directory has the same files and the same schema, whichever way it was made.
``totals.json`` holds the encoded total histograms and counters (``SegmentResult`` wire form):
exact, it is what ``wsload merge`` reads. Paths are written through ``wsload.report.files``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from wsload.metrics.result import RunResult, SegmentResult
from wsload.metrics.snapshots import IntervalSnapshot
from wsload.report import files, hlog, summary, thresholds
from wsload.report.thresholds import ThresholdResult
from wsload.scenario.dump import scenario_hash, scenario_to_toml
from wsload.scenario.model import Scenario

__all__ = ["SegmentLogs", "result_of", "segment_dir", "write_result"]


def result_of(
    scenario: Scenario,
    started_at: datetime,
    part: SegmentResult,
    server: dict[str, Any] | None = None,
) -> RunResult:
    """The ``RunResult`` of a run (or a merge) whose load side is ``part``."""
    return RunResult(scenario=scenario, started_at=started_at, load=part, server=server)


def write_result(
    out_dir: Path,
    scenario: Scenario,
    started_at: datetime,
    part: SegmentResult,
    server: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[ThresholdResult]]:
    """Write totals.json and summary.json (thresholds evaluated); return both.

    ``extra``: top-level summary entries measured outside the collector (a deploy's
    ``events`` and ``server_process``, ``wsload.runner.targets.deploy``); an object where the
    summary has one already (``generator``) adds its fields to it.
    """
    totals = {"scenario_hash": scenario_hash(scenario), "result": part.to_wire()}
    files.write_json_atomic(out_dir / "totals.json", totals)
    data = summary.build_summary(result_of(scenario, started_at, part, server))
    for key, value in (extra or {}).items():
        mine = data.get(key)
        data[key] = (
            {**mine, **value} if isinstance(mine, dict) and isinstance(value, dict) else value
        )
    verdicts = thresholds.evaluate(scenario.thresholds, data)
    data = summary.attach_thresholds(data, verdicts)
    files.write_json_atomic(out_dir / "summary.json", data)
    return data, verdicts


def segment_dir(out_dir: Path, segment: str) -> Path:
    """``<out>/segments/<i>of<N>/``: one worker's own result, mergeable with ``wsload merge``."""
    index, _, count = segment.partition("/")
    return out_dir / "segments" / f"{index}of{count}"


class SegmentLogs:
    """One histograms.hlog per segment of a split run, opened on its first interval."""

    def __init__(self, out_dir: Path, scenario: Scenario, started_at: datetime) -> None:
        self.out_dir = out_dir
        self.scenario = scenario
        self.started_at = started_at
        self._writers: dict[str, hlog.IntervalLogWriter] = {}

    def _open(self, segment: str) -> Path:
        path = segment_dir(self.out_dir, segment)
        if segment not in self._writers:
            path.mkdir(parents=True, exist_ok=True)
            files.write_text_atomic(path / "scenario.toml", scenario_to_toml(self.scenario))
            self._writers[segment] = hlog.IntervalLogWriter(
                path / "histograms.hlog", self.started_at, origin=0.0
            )
        return path

    def write(self, segment: str, snapshot: IntervalSnapshot) -> None:
        self._open(segment)
        self._writers[segment].write_interval(snapshot)

    def finish(self, part: SegmentResult) -> None:
        """Write one finished segment's summary.json and totals.json beside its log."""
        assert part.segment is not None
        write_result(self._open(part.segment), self.scenario, self.started_at, part)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
