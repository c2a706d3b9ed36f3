"""``wsload run --repeat N``: N runs of one scenario, one results directory with their noise.

A single run says what the target did once; two runs of an unchanged target already differ
(scheduling, caches, other load on the machine). Running the scenario N times against the same
target measures that run-to-run spread, and a baseline that carries it lets ``wsload compare``
judge a change against it (``wsload.report.compare.judge``: spread, rank test).

Layout: ``<out>/runs/<i>/`` is each run's complete results directory (what ``wsload run``
writes, without report.html); ``<out>/`` holds the merged result (every run's connections,
histograms added exactly) with a ``repeat`` section in summary.json listing each run's
figures (docs/results.md). The interval log and timeline of the merged result put the runs one
after another at their real start times. The whole of it is one ``RunFrame`` (results
directory, deferred signals, outputs, exit code); each run is an ``execute_run`` of its own.

Every run gets the same seed (the same close mix, in the same order). Searches are not
repeated: a search is already many runs and its capacity converges to its ``precision``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from wsload.errors import UsageError
from wsload.exitcodes import EXIT_INTERRUPTED, EXIT_OK
from wsload.metrics.histograms import PERCENTILES
from wsload.metrics.result import SegmentResult
from wsload.process import with_seed
from wsload.report import files, hlog
from wsload.report.compare.engine import total_scope
from wsload.report.outputs import RunOutputs
from wsload.report.redact import redact_scenario
from wsload.report.results import Interval, ResultsData
from wsload.report.verdict import Reason, Word
from wsload.runner.frame import Output, RunFrame
from wsload.runner.modes.execute import execute_run
from wsload.runner.modes.merge import load_part, merge_hlogs
from wsload.runner.options import RunOptions
from wsload.runner.result_files import write_result
from wsload.scenario.dump import scenario_to_toml
from wsload.scenario.model import Scenario

__all__ = ["RUNS_DIR", "execute_repeat", "merge_runs", "repeat_section"]

RUNS_DIR = "runs"
"""Each run's own results directory: ``<out>/runs/1``, ``<out>/runs/2``, ..."""

_RUN_STATS = ("count", *PERCENTILES)


def execute_repeat(
    scenario: Scenario,
    repeat: int,
    *,
    out: Path | None = None,
    quiet: bool = False,
    json_out: bool = False,
    results_base: Path = Path("results"),
    workers: int = 1,
    outputs: RunOutputs | None = None,
    force: bool = False,
) -> int:
    """Run ``scenario`` ``repeat`` times, merge, compare, report; return the exit code.

    Exit 1 when the merged result or any run fails a threshold, or the merged result
    regressed against the baseline; 130 when interrupted (the runs done so far are merged).

    Raises:
        UsageError: ``repeat`` < 2, or a search scenario.
    """
    if repeat < 2:
        raise UsageError(f"--repeat: must be >= 2 to measure a spread, got {repeat}")
    if scenario.load.model == "search":
        raise UsageError(
            "--repeat does not apply to a capacity search: it already runs many levels and its "
            "capacity converges to its precision (docs/ci.md)"
        )
    scenario = with_seed(scenario) if scenario.seed is None else scenario
    output = Output(
        out, quiet, json_out, results_base, outputs=outputs or RunOutputs(), force=force
    )
    with RunFrame(scenario.name, output) as frame:
        frame.write_scenario(scenario_to_toml(redact_scenario(scenario)))
        codes: list[int] = []
        for index in range(1, repeat + 1):
            sys.stderr.write(f"wsload: run {index} of {repeat}\n")
            with contextlib.redirect_stdout(sys.stderr):  # stdout stays the merged result's
                code = execute_run(
                    scenario,
                    RunOptions(workers=workers),
                    out=frame.out_dir / RUNS_DIR / str(index),
                    quiet=True,
                    outputs=RunOutputs(report=False),
                )
            codes.append(code)
            if code == EXIT_INTERRUPTED or frame.late:  # Ctrl-C during a run or between two
                break
        run_dirs = [frame.out_dir / RUNS_DIR / str(i) for i in range(1, len(codes) + 1)]
        data = _write_merged(frame.out_dir, scenario, run_dirs)
        failed = [i for i, code in enumerate(codes, 1) if code not in (EXIT_OK, EXIT_INTERRUPTED)]
        extra = [
            Reason(
                "runs",
                Word.FAIL,
                f"run{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))} of "
                f"{len(codes)} did not pass (see runs/<i>/summary.json)",
            )
        ]
        frame.finish(
            data,
            extra=extra if failed else (),
            interrupted=EXIT_INTERRUPTED in codes or len(codes) < repeat,
        )
    return frame.exit_code


def _write_merged(out_dir: Path, scenario: Scenario, run_dirs: Sequence[Path]) -> dict[str, Any]:
    """The merged result's files; return its summary."""
    loaded = [load_part(d) for d in run_dirs]
    started = [each.started_at for each in loaded]
    shown = redact_scenario(scenario)
    _write_series(out_dir, started, [each.data for each in loaded])
    part = merge_runs([each.part for each in loaded], tuple(s.label for s in scenario.close))
    data, _ = write_result(out_dir, shown, started[0], part)
    summaries = [each.data.summary for each in loaded]
    data = {**data, "repeat": repeat_section(out_dir, run_dirs, summaries)}
    files.write_json_atomic(out_dir / "summary.json", data)
    return data


def merge_runs(parts: Sequence[SegmentResult], labels: tuple[str, ...]) -> SegmentResult:
    """The runs as one result: every connection, histograms added exactly.

    Reuses the segment merge (each run taken as one share of N) and then corrects what
    differs between shares of one run and runs one after another: the time under load and
    the intervals add up (so rates are the runs' average), the processes are those of one
    run, and a storm's release instants are not compared (each run released its own storm;
    how far apart segments released says nothing about runs).
    """
    count = len(parts)
    shares = [replace(p, segment=f"{i}/{count}") for i, p in enumerate(parts)]
    merged = SegmentResult.merge(shares, labels=labels)
    return replace(
        merged,
        segment=None,
        duration_s=sum(p.duration_s for p in parts),
        intervals=sum(p.intervals for p in parts),
        processes=max(p.processes for p in parts),
        release_s=None,
    )


def _write_series(out_dir: Path, started: Sequence[datetime], runs: Sequence[ResultsData]) -> None:
    """histograms.hlog and timeline.jsonl of the runs one after another, at their real
    offsets from the first run's start (the gaps between runs stay visible)."""
    offsets = [(s - started[0]) / timedelta(seconds=1) for s in started]
    logs = [
        {
            tag: [Interval(i.t + offset, i.length, i.histogram) for i in items]
            for tag, items in run.intervals.items()
        }
        for run, offset in zip(runs, offsets, strict=True)
    ]
    lines = merge_hlogs(logs)
    files.write_text_atomic(
        out_dir / "histograms.hlog",
        hlog.format_header(started[0])
        + "".join(hlog.interval_line(tag, t, length, h) for tag, t, length, h in lines),
    )
    timeline = [
        json.dumps({**entry, "t": round(float(entry.get("t", 0.0)) + offset, 3)}) + "\n"
        for run, offset in zip(runs, offsets, strict=True)
        for entry in run.timeline
    ]
    files.write_text_atomic(out_dir / "timeline.jsonl", "".join(timeline))


def repeat_section(
    out_dir: Path, run_dirs: Sequence[Path], summaries: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """summary.json's ``repeat``: the runs and, per scope, each run's figures in run order.

    ``figures.total`` and ``figures.behaviours.<label>`` hold lists with one value per run
    (None where a run did not measure it): ``attempted``, ``clean``, ``outcomes.<name>``,
    ``latency_us.<metric>.{count,p50,p90,p99,p999}`` — what ``wsload compare`` needs for the
    baseline's spread and the rank test.
    """
    labels = list(dict.fromkeys(label for s in summaries for label in s.get("behaviours", {})))
    return {
        "count": len(summaries),
        "runs": [
            {
                "directory": str(d.relative_to(out_dir)),
                "started_at": s.get("started_at"),
                "interrupted": bool(s.get("interrupted")),
                "saturated": bool(s.get("generator", {}).get("saturated")),
                "thresholds_ok": all(t.get("ok") for t in s.get("thresholds", [])),
            }
            for d, s in zip(run_dirs, summaries, strict=True)
        ],
        "figures": {
            "total": _scope_figures([total_scope(s) for s in summaries]),
            "behaviours": {
                label: _scope_figures([s.get("behaviours", {}).get(label, {}) for s in summaries])
                for label in labels
            },
        },
    }


def _scope_figures(scopes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    outcomes = list(dict.fromkeys(o for s in scopes for o in s.get("outcomes", {})))
    metrics = list(dict.fromkeys(m for s in scopes for m in s.get("latency_us", {})))
    return {
        "attempted": [s.get("attempted") for s in scopes],
        "clean": [s.get("clean") for s in scopes],
        "outcomes": {o: [s.get("outcomes", {}).get(o, 0) for s in scopes] for o in outcomes},
        "latency_us": {
            m: {
                stat: [(s.get("latency_us", {}).get(m) or {}).get(stat) for s in scopes]
                for stat in _RUN_STATS
            }
            for m in metrics
        },
    }
