"""The files a run or a comparison leaves for people and CI: report.html, JUnit, markdown.

The glue between the pure renderers (compare, html, junit, markdown) and ``files`` (the only
writer of paths), shared by ``wsload run``, ``wsload compare`` and ``wsload report`` so that
the three write the same things the same way. Also turns the tolerance options' text
(``10%``, ``close_handshake.p99=20%``, ``clean=0.5``) into ``Tolerances``, naming the flag in
any error (exit 2).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsload.core.outcomes import Outcome
from wsload.core.percentiles import percentile_key
from wsload.errors import UsageError
from wsload.metrics.histograms import PERCENTILES
from wsload.report import files
from wsload.report.compare.engine import CompareResult, compare
from wsload.report.compare.figures import Histograms
from wsload.report.compare.tolerances import (
    ALL_ERRORS,
    COMPARED_STATS,
    JUDGED_METRICS,
    Tolerances,
)
from wsload.report.junit import junit_xml
from wsload.report.markdown import markdown_report
from wsload.report.results import load_histograms, load_results, load_summary
from wsload.report.verdict import Verdict, decide
from wsload.scenario.durations import parse_duration
from wsload.scenario.model import METRICS, STEP_PREFIX
from wsload.scenario.thresholds import metric_parts

__all__ = [
    "REPORT_NAME",
    "RunOutputs",
    "baseline_comparison",
    "compare_files",
    "parse_tolerances",
    "write_ci_outputs",
    "write_report",
    "write_run_outputs",
]

REPORT_NAME = "report.html"
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


@dataclass(frozen=True, slots=True)
class RunOutputs:
    """What ``wsload run`` writes after summary.json besides it.

    Attributes:
        baseline: a baseline summary.json dict to compare the run with (None: no comparison).
        baseline_name: how outputs name the baseline (its path).
        baseline_histograms: the baseline's histograms (its histograms.hlog), for the
            percentiles' intervals; None: judged by the floors alone.
        tolerances: the comparison's rules.
        junit / markdown: files to write (None: not written).
        report: write report.html into the results directory.
    """

    baseline: Mapping[str, Any] | None = None
    baseline_name: str = "baseline"
    baseline_histograms: Histograms | None = None
    tolerances: Tolerances = field(default_factory=Tolerances)
    junit: Path | None = None
    markdown: Path | None = None
    report: bool = True


def baseline_comparison(
    out_dir: Path, summary: Mapping[str, Any], outputs: RunOutputs
) -> CompareResult | None:
    """The run compared with its baseline (None without one); a regression in it fails the
    run's verdict (``wsload.report.verdict``)."""
    if outputs.baseline is None:
        return None
    return compare(
        outputs.baseline,
        summary,
        outputs.tolerances,
        baseline_name=outputs.baseline_name,
        current_name=str(out_dir),
        baseline_histograms=outputs.baseline_histograms,
        current_histograms=load_histograms(out_dir),
    )


def write_run_outputs(
    out_dir: Path, summary: Mapping[str, Any], comparison: CompareResult | None, outputs: RunOutputs
) -> None:
    """Write every requested file for ``summary`` (its verdict attached) and ``comparison``."""
    write_ci_outputs(summary, comparison, junit=outputs.junit, markdown=outputs.markdown)
    if outputs.report:
        write_report(out_dir, comparison=comparison)


def write_ci_outputs(
    summary: Mapping[str, Any] | None,
    comparison: CompareResult | None,
    *,
    junit: Path | None,
    markdown: Path | None,
) -> None:
    """JUnit to ``junit``; markdown to ``markdown``, and appended to $GITHUB_STEP_SUMMARY when
    that is set (in a GitHub job: the summary page shows it).

    Only when markdown was asked for: a test suite running wsload inside a GitHub job must not
    fill the job's page. When ``--markdown`` names the step summary file itself it is appended
    once, not replaced (other steps of the job write there too).
    """
    if junit is not None:
        files.write_text_atomic(junit, junit_xml(summary, comparison))
    step_summary = os.environ.get(STEP_SUMMARY_ENV)
    if markdown is None:
        return
    text = markdown_report(summary, comparison)
    if step_summary:
        files.append_text(Path(step_summary), text)
    if not (step_summary and _same_file(markdown, Path(step_summary))):
        files.write_text_atomic(markdown, text)


def compare_files(
    baseline: Path,
    current: Path,
    tolerances: Tolerances,
    *,
    junit: Path | None = None,
    markdown: Path | None = None,
) -> tuple[CompareResult, Verdict]:
    """``wsload compare``: load both summaries, compare, decide, write the CI files.

    The CI files and the verdict carry the comparison only: the current run's own thresholds
    were judged (and reported) by that run; its measurement still counts (a saturated or
    interrupted current run makes the comparison inconclusive).

    Raises:
        UsageError: a summary is missing or not a wsload summary.json.
    """
    current_summary = load_summary(current)
    result = compare(
        load_summary(baseline),
        current_summary,
        tolerances,
        baseline_name=str(baseline),
        current_name=str(current),
        baseline_histograms=load_histograms(baseline),
        current_histograms=load_histograms(current),
    )
    shown = {**current_summary, "thresholds": [], "verdict": None}  # decided for the comparison
    verdict = decide(shown, result)
    write_ci_outputs(shown, result, junit=junit, markdown=markdown)
    return result, verdict


def write_report(
    results_dir: Path, *, out: Path | None = None, comparison: CompareResult | None = None
) -> Path:
    """Render ``results_dir`` to report.html (default inside it); return the path written.

    Raises:
        UsageError: ``results_dir`` is not a results directory.
        ToolError: the report cannot be written.
    """
    from wsload.report.html import html_report  # plotly: only where a report is written

    target = out if out is not None else Path(results_dir) / REPORT_NAME
    files.write_text_atomic(target, html_report(load_results(results_dir), comparison))
    return target


def parse_tolerances(
    *,
    max_regression: str = "10%",
    metric_tolerance: Iterable[str] | None = (),
    max_share_drop: Iterable[str] | None = (),
    max_share_rise: Iterable[str] | None = (),
    min_samples: int = 100,
    min_change: str = "500us",
    metrics: str | None = None,
    confidence: str = "99%",
) -> Tolerances:
    """``Tolerances`` from the command-line texts; defaults: floors 10 % and 500 µs, clean
    -0.5 pt, errors +0.5 pt, the close metrics judged, 99 % confidence.

    Raises:
        UsageError: a value is malformed, naming the flag and the expected form.
    """
    per_metric = {}
    stats = dict.fromkeys(COMPARED_STATS)
    for item in metric_tolerance or ():
        key, value = _pair(item, "--metric-tolerance", "close_handshake.p99=20%")
        metric, stat = _metric_stat(key, f"--metric-tolerance {item}")
        stats.update(dict.fromkeys([stat] if stat else []))
        per_metric[f"{metric}.{stat}" if stat else metric] = _percent(
            value, f"--metric-tolerance {item}"
        )
    outcomes = {o.value for o in Outcome}
    drops = {"clean": 0.5}
    for item in max_share_drop or ():
        key, value = _pair(item, "--max-share-drop", "clean=0.5")
        if key != "clean" and key not in outcomes:
            raise UsageError(f"--max-share-drop {item}: {key!r} is not clean or an outcome")
        drops[key] = _points(value, f"--max-share-drop {item}")
    rises = {ALL_ERRORS: 0.5}
    for item in max_share_rise or ():
        key, value = _pair(item, "--max-share-rise", "close_timeout=1")
        if key != ALL_ERRORS and key not in outcomes:
            raise UsageError(f"--max-share-rise {item}: {key!r} is not errors or an outcome")
        rises[key] = _points(value, f"--max-share-rise {item}")
    if min_samples < 0:
        raise UsageError(f"--min-samples: must be >= 0, got {min_samples}")
    try:
        min_change_us = parse_duration(min_change) * 1_000_000
    except ValueError as exc:
        raise UsageError(f"--min-change: {exc}") from None
    chosen = JUDGED_METRICS
    if metrics is not None:
        named = [_metric_stat(m.strip(), f"--metrics {metrics}") for m in metrics.split(",")]
        chosen = tuple(dict.fromkeys(metric for metric, _ in named if metric))
        stats.update(dict.fromkeys(stat for _, stat in named if stat))
        if not chosen:
            raise UsageError(f"--metrics {metrics}: {_METRICS_FORM}")
    level = _percent(confidence, "--confidence")
    if not 0.5 <= level < 1:
        raise UsageError(f"--confidence: must be at least 50% and below 100%, got {confidence!r}")
    return Tolerances(
        confidence=level,
        metrics=chosen,
        max_regression=_percent(max_regression, "--max-regression"),
        metric_tolerance=per_metric,
        min_change_us=min_change_us,
        max_share_drop=drops,
        max_share_rise=rises,
        min_samples=min_samples,
        stats=tuple(stats),
    )


_METRICS_FORM = (
    f"expected a comma-separated list of {', '.join(METRICS)}, {STEP_PREFIX}<name> or "
    f"{STEP_PREFIX}*, each optionally with a percentile (close_handshake.p95, close_total.p99.9)"
)


def _metric_stat(text: str, flag: str) -> tuple[str, str]:
    """``close_handshake`` → (close_handshake, ""); ``close_handshake.p99.9`` →
    (close_handshake, p999): a metric and the summary.json key of a percentile compared."""
    parts = metric_parts(text.split("."))
    metric, stat = parts[0], ".".join(parts[1:])
    if metric not in METRICS and not metric.startswith(STEP_PREFIX):
        close = difflib.get_close_matches(metric, METRICS, n=1, cutoff=0.6)
        mean = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"{flag}: unknown metric {metric!r}{mean}; {_METRICS_FORM}")
    if not stat:
        return metric, ""
    key = percentile_key(stat)
    if key not in PERCENTILES:
        raise UsageError(
            f"{flag}: {text!r}: compared percentiles are the ones summary.json holds: "
            f"{', '.join(PERCENTILES)} (p99.9 = p999)"
        )
    return metric, key


def _pair(item: str, flag: str, example: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise UsageError(f"{flag} {item}: expected NAME=VALUE, e.g. {example}")
    return key.strip(), value.strip()


def _percent(text: str, flag: str) -> float:
    """``10%`` or ``10`` → 0.10."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise UsageError(f"{flag}: expected a percentage like 10%, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise UsageError(f"{flag}: must be a finite percentage >= 0, got {text!r}")
    return value / 100


def _points(text: str, flag: str) -> float:
    """Percentage points: ``0.5`` (``0.5pt`` accepted)."""
    try:
        value = float(text.strip().removesuffix("pt").strip())
    except ValueError:
        raise UsageError(f"{flag}: expected percentage points like 0.5, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise UsageError(f"{flag}: must be finite points >= 0, got {text!r}")
    return value


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
