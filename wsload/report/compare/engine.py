"""Baseline vs current: two summary.json dicts and the noise rules → rows with verdicts.

Pure: no files, no printing. ``wsload compare`` and ``wsload run --baseline`` call it (with
the histograms of histograms.hlog when the results directories have them) and hand the
result to the renderers (terminal, markdown, JUnit, report.html).

A figure changes only when the measured noise cannot explain the change *and* the change
clears a floor (``wsload.report.compare.judge``): confidence intervals of the percentiles from the
histograms (``wsload.report.compare.confidence``), the baseline's run-to-run spread when it was made
with ``--repeat``, a Mann-Whitney U test when both sides were. The direction of "worse" is
explicit per rule, never inferred from a sign:

- latency statistics (p50, p90, p99, p999): **up** is worse; the floor is
  ``max(--max-regression × baseline, --min-change)`` (defaults 10 % and 500 µs);
- the clean share (connections that closed the way their kind calls clean) **down** is worse,
  by more than ``max_share_drop`` percentage points (intervals: Wilson's);
- the share of every error outcome (anything but the outcome a kind is meant to end with,
  ``EXPECTED_OUTCOMES``) **up** is worse, by more than ``max_share_rise`` points.

What is judged: the close metrics (``close_handshake``, ``close_teardown``, ``close_total``
and every ``step.*`` metric of a scripted session) and the shares; every other measured
metric is compared too but *informational* (shown, never failing) unless named with
``--metrics``. A percentile whose interval cannot be bounded (too few samples for that
percentile at that confidence) or with fewer than ``min_samples`` samples on either side is
``insufficient samples``. Runs of different scenarios (``scenario_hash``) are still compared,
with a warning every output repeats.

Capacity searches (summaries with a ``search`` section) add one row, ``search/capacity``
(``wsload.report.compare.capacity``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from wsload.report.compare.capacity import capacity_rows, search_warnings
from wsload.report.compare.figures import Histograms, Side, latency_rows, share_rows
from wsload.report.compare.generator import SlowerGenerator, generator_slower
from wsload.report.compare.judge import Verdict
from wsload.report.compare.rows import Row
from wsload.report.compare.tolerances import Tolerances

__all__ = ["CompareResult", "compare", "total_scope", "warnings"]


@dataclass(frozen=True, slots=True)
class CompareResult:
    """Every compared row, the warnings that qualify them, and the overall verdict."""

    rows: tuple[Row, ...]
    warnings: tuple[str, ...]
    baseline_name: str
    current_name: str
    slower: SlowerGenerator | None = None
    """The current generator, when it was distinguishably slower than the baseline's
    (``wsload.report.compare.generator``)."""

    @property
    def regressions(self) -> tuple[Row, ...]:
        """Judged rows that regressed (informational regressions are shown, never counted)."""
        return tuple(r for r in self.rows if r.fails)

    @property
    def inconclusive(self) -> tuple[Row, ...]:
        """Judged rows the generator itself could explain (``generator_slower``)."""
        return tuple(r for r in self.rows if r.judged and r.verdict is Verdict.INCONCLUSIVE)

    @property
    def ok(self) -> bool:
        """No regression (insufficient samples and missing figures do not fail)."""
        return not self.regressions

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``wsload compare --json``)."""
        return {
            "ok": self.ok,
            "baseline": self.baseline_name,
            "current": self.current_name,
            "warnings": list(self.warnings),
            "regressions": len(self.regressions),
            "rows": [r.as_dict() for r in self.rows],
        }


def compare(
    baseline: Mapping[str, Any],
    current: Mapping[str, Any],
    tolerances: Tolerances | None = None,
    *,
    baseline_name: str = "baseline",
    current_name: str = "current",
    baseline_histograms: Histograms | None = None,
    current_histograms: Histograms | None = None,
) -> CompareResult:
    """Compare two summary.json dicts (total and every behaviour present in both).

    Args:
        baseline_histograms / current_histograms: the runs' total histograms by hlog tag
            (``wsload.report.results.load_histograms``), for the percentiles' intervals;
            without them latencies are judged by their floors alone (and a warning says so).
    """
    tol = tolerances if tolerances is not None else Tolerances()
    sides = (
        Side(baseline, baseline_histograms, tol.confidence),
        Side(current, current_histograms, tol.confidence),
    )
    rows = list(capacity_rows(baseline.get("search"), current.get("search"), tol.max_regression))
    for scope, base_scope, cur_scope in _scopes(baseline, current):
        rows.extend(latency_rows(scope, base_scope, cur_scope, sides, tol))
        rows.extend(share_rows(scope, base_scope, cur_scope, sides, tol))
    notes = warnings(baseline, current)
    for name, histograms in (("baseline", baseline_histograms), ("current", current_histograms)):
        if histograms is None:
            notes.append(
                f"no histograms.hlog for the {name}: its percentiles have no intervals and "
                "are judged by the floors alone"
            )
    return CompareResult(
        rows=tuple(rows),
        warnings=tuple(notes),
        baseline_name=baseline_name,
        current_name=current_name,
        slower=generator_slower(baseline, current),
    )


def warnings(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What makes the comparison less trustworthy (every output shows these)."""
    out: list[str] = []
    base_hash, cur_hash = baseline.get("scenario_hash"), current.get("scenario_hash")
    if base_hash != cur_hash:
        out.append(
            f"different scenarios (scenario_hash {base_hash} vs {cur_hash}): "
            "compared anyway, the figures may not be comparable"
        )
    slower = generator_slower(baseline, current)
    if slower is not None:
        out.append(
            f"generator slower than the baseline ({slower.describe()}): a latency rise its "
            "delay could produce is inconclusive, not a regression; compare on a machine as "
            "quiet as the baseline's"
        )
    for side, summary in (("baseline", baseline), ("current", current)):
        if summary.get("generator", {}).get("saturated"):
            out.append(f"the {side} run was saturated: its latencies include wsload's own lag")
        if summary.get("interrupted"):
            out.append(f"the {side} run was interrupted before its planned end")
    out.extend(search_warnings(baseline.get("search"), current.get("search")))
    base_labels = set(baseline.get("behaviours", {}))
    cur_labels = set(current.get("behaviours", {}))
    for label in sorted(base_labels ^ cur_labels):
        side = "baseline" if label in base_labels else "current"
        out.append(f"behaviour {label!r} is only in the {side} run: not compared")
    return out


def _scopes(
    baseline: Mapping[str, Any], current: Mapping[str, Any]
) -> Iterator[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    """``total`` (the summary's top level), then every behaviour label both runs have."""
    yield "total", total_scope(baseline), total_scope(current)
    cur_behaviours = current.get("behaviours", {})
    for label, base_scope in baseline.get("behaviours", {}).items():
        if label in cur_behaviours:
            yield label, base_scope, cur_behaviours[label]


def total_scope(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The whole run's figures shaped like a ``behaviours.<label>`` entry (one code path for
    both scopes, here and in ``--repeat``'s per-run figures). A ``[reconnect]`` run's
    ``reconnect.time_to_reconnect`` and ``reconnect.reconnect_delay`` are latency figures of
    the whole run like the others (judged when ``--metric`` names them)."""
    totals = summary.get("totals", {})
    reconnect = (summary.get("reconnect") or {}).get("latency_us", {})
    return {
        "attempted": totals.get("attempted", 0),
        "clean": totals.get("clean"),
        "outcomes": summary.get("outcomes", {}),
        "latency_us": {
            **summary.get("latency_us", {}),
            **{f"reconnect.{name}": stats for name, stats in reconnect.items()},
        },
    }
