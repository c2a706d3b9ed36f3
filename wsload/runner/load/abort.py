"""Abort on fail: thresholds with ``abort = true`` judged on the live figures, stopping the run.

A capacity run that has clearly failed should not keep hammering the target to its end (k6's
``abortOnFail``, Locust's fail ratio). Each merged interval snapshot (over ``--workers`` too) is
added to running totals of what the abort thresholds read; once a threshold's ``after`` has
passed, it is evaluated exactly as at the end (``wsload.report.thresholds.evaluate_one``, on a
summary-shaped dict of the totals so far), and the first failure sets the run's graceful stop:
open connections run their close, the drain is bounded as for Ctrl-C, every file is written.
The run is then complete, not interrupted; its verdict is fail and summary.json's ``aborted``
names the threshold, the time and the value.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio
from hdrh.histogram import HdrHistogram

from wsload.metrics.histograms import histogram_stats, new_histogram
from wsload.metrics.snapshots import IntervalSnapshot
from wsload.report.thresholds import evaluate_one
from wsload.scenario.model import Scenario, Threshold

__all__ = ["Abort", "AbortWatch"]


@dataclass(frozen=True, slots=True)
class Abort:
    """Why a run stopped early: the threshold, when (seconds of load) and what it measured."""

    expr: str
    condition: str
    at_s: float
    detail: str

    def reason(self) -> str:
        return f"aborted at {self.at_s:.0f} s: {self.expr} {self.condition} failed ({self.detail})"

    def as_dict(self) -> dict[str, Any]:
        """summary.json's ``aborted``."""
        return {
            "threshold": self.expr,
            "condition": self.condition,
            "at_s": round(self.at_s, 3),
            "detail": self.detail,
            "reason": self.reason(),
        }


class _Totals:
    """Running totals of one scope (the run, or one behaviour) from interval snapshots."""

    def __init__(self) -> None:
        self.attempted = 0
        self.outcomes: dict[str, int] = {}
        self.histograms: dict[str, HdrHistogram] = {}

    def add(self, attempted: int, outcomes: dict[str, int], histograms: Any) -> None:
        self.attempted += attempted
        for name, n in outcomes.items():
            self.outcomes[name] = self.outcomes.get(name, 0) + n
        for metric, histogram in histograms.items():
            total = self.histograms.get(metric)
            if total is None:
                total = self.histograms[metric] = new_histogram()
            total.add(histogram)

    def summary(self) -> dict[str, Any]:
        return {
            "attempted": self.attempted,
            "totals": {"attempted": self.attempted},
            "outcomes": dict(self.outcomes),
            "latency_us": {m: histogram_stats(h) for m, h in self.histograms.items()},
        }


class AbortWatch:
    """The abort thresholds of ``scenario``, fed each (merged) interval snapshot.

    Args:
        stop: the run's graceful stop, set at the first failure.

    Time is the snapshots' own: seconds from the first snapshot's start (as timeline.jsonl
    counts them), whichever clock a split run's shares sent them on.
    """

    def __init__(self, scenario: Scenario, stop: trio.Event) -> None:
        self.thresholds: tuple[Threshold, ...] = tuple(t for t in scenario.thresholds if t.abort)
        self.stop = stop
        self.origin: float | None = None
        self.total = _Totals()
        self.labels: dict[str, _Totals] = {}
        self.saturated = False
        self.aborted: Abort | None = None

    def watch(
        self, on_interval: Callable[[IntervalSnapshot], None]
    ) -> Callable[[IntervalSnapshot], None]:
        """``on_interval`` that also judges the abort thresholds on each snapshot."""

        def watched(snapshot: IntervalSnapshot) -> None:
            on_interval(snapshot)
            self.observe(snapshot)

        return watched

    def observe(self, snapshot: IntervalSnapshot) -> None:
        """Add ``snapshot`` to the totals; stop the run when a due threshold fails."""
        self.total.add(snapshot.attempted, dict(snapshot.outcomes), snapshot.histograms)
        for label, counters in snapshot.counters.items():
            outcomes = {
                key.removeprefix("outcomes."): n
                for key, n in counters.items()
                if key.startswith("outcomes.")
            }
            scope = self.labels.setdefault(label, _Totals())
            scope.add(counters.get("attempted", 0), outcomes, snapshot.by_label.get(label, {}))
        self.saturated = self.saturated or snapshot.saturated
        if self.aborted is not None:
            return
        if self.origin is None:
            self.origin = snapshot.start
        elapsed = snapshot.end - self.origin
        due = [t for t in self.thresholds if elapsed >= t.after_s]
        if not due:
            return
        summary = self.total.summary()
        summary["behaviours"] = {label: t.summary() for label, t in self.labels.items()}
        summary["generator"] = {"saturated": self.saturated}
        for threshold in due:
            result = evaluate_one(threshold, summary)
            if result.value is not None and not result.ok:  # nothing measured yet: wait
                self.aborted = Abort(threshold.expr, result.condition, elapsed, result.detail)
                sys.stderr.write(f"wsload: {self.aborted.reason()}\n")
                self.stop.set()
                return
