"""Baseline vs current: two summary.json dicts and the noise rules → rows with verdicts.

Pure: no files, no printing. ``wsload compare`` and ``wsload run --baseline`` call it (with
the histograms of histograms.hlog when the results directories have them) and hand the
result to the renderers (terminal, markdown, JUnit, report.html).

A figure changes only when the measured noise cannot explain the change *and* the change
clears a floor (``wsload.report.judge``): confidence intervals of the percentiles from the
histograms (``wsload.report.intervals``), the baseline's run-to-run spread when it was made
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
(``wsload.report.compare_search``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from wsload.metrics.errors import EXPECTED_OUTCOMES as KIND_ENDINGS
from wsload.metrics.histograms import HIGHEST_US, PERCENTILES
from wsload.report._format import format_us
from wsload.report.compare_search import capacity_rows, search_warnings
from wsload.report.hlog import make_tag
from wsload.report.intervals import (
    DEFAULT_CONFIDENCE,
    percentile_intervals,
    percentile_ranks,
    share_interval,
)
from wsload.report.judge import Evidence, Floor, Judgement, Verdict, judge
from wsload.report.rows import Row, format_level
from wsload.scenario.model import METRICS, STEP_PREFIX

__all__ = [
    "ALL_ERRORS",
    "ATTENTION",
    "COMPARED_STATS",
    "EXPECTED_OUTCOMES",
    "JUDGED_METRICS",
    "STEP_PREFIX",
    "CompareResult",
    "Histograms",
    "Row",
    "Tolerances",
    "Verdict",
    "compare",
    "format_level",
    "judged_metric",
    "render_text",
    "total_scope",
]

COMPARED_STATS: tuple[str, ...] = tuple(PERCENTILES)
"""Latency statistics compared (min/max/mean are one sample or skewed by one: pure noise)."""

JUDGED_METRICS: tuple[str, ...] = (
    "close_handshake",
    "close_teardown",
    "close_total",
    f"{STEP_PREFIX}*",
)
"""Metrics a comparison gates on by default: what a close scenario is about. ``step.*``
matches every metric of a scripted session's steps (``step.<name>``)."""

EXPECTED_OUTCOMES: frozenset[str] = frozenset(o.value for o in KIND_ENDINGS.values())
"""Outcomes some close kind is *meant* to end with; every other outcome is an error (the
endings the Why table leaves out, ``wsload.metrics.errors``)."""

ALL_ERRORS = "errors"
"""``max_share_rise`` key that sets the limit of every error outcome without its own."""

ATTENTION: tuple[Verdict, ...] = (Verdict.REGRESSED, Verdict.IMPROVED, Verdict.MISSING)
"""Verdicts the outputs list up front (``within noise`` and ``insufficient samples`` are
counted)."""

Histograms = Mapping[str, HdrHistogram]
"""A run's total histograms by hlog tag (``close_handshake``, ``close_handshake:clean``)."""


def judged_metric(metric: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``metric`` is named by ``patterns`` (a name, or a ``prefix.*``)."""
    return any(metric == p or (p.endswith(".*") and metric.startswith(p[:-1])) for p in patterns)


@dataclass(frozen=True, slots=True)
class Tolerances:
    """What counts as a change, and which figures are gated on.

    Attributes:
        max_regression: the relative floor: latency changes smaller than this share of the
            baseline value (0.10 = 10 %) never count, whatever the noise says.
        metric_tolerance: ``metric`` or ``metric.stat`` → its own relative floor
            (``close_handshake.p99`` → 0.20); ``metric.stat`` wins over ``metric``.
        min_change_us: the absolute floor (µs): smaller latency changes never count.
        max_share_drop: ``clean`` or an outcome → percentage points its share may fall.
        max_share_rise: an error outcome (or ``errors``: all of them) → points it may rise.
        min_samples: a percentile needs this many samples on both sides to be judged.
        metrics: the latency metrics judged (names or ``prefix.*``); every other measured
            metric is compared as informational.
        confidence: of the percentile and share intervals; ``1 - confidence`` is the rank
            test's one-sided significance level.
    """

    max_regression: float = 0.10
    metric_tolerance: Mapping[str, float] = field(default_factory=dict)
    min_change_us: float = 500.0
    max_share_drop: Mapping[str, float] = field(default_factory=lambda: {"clean": 0.5})
    max_share_rise: Mapping[str, float] = field(default_factory=lambda: {ALL_ERRORS: 0.5})
    min_samples: int = 100
    metrics: tuple[str, ...] = JUDGED_METRICS
    confidence: float = DEFAULT_CONFIDENCE

    def latency_limit(self, metric: str, stat: str) -> float:
        """The relative floor of ``metric.stat``."""
        specific = self.metric_tolerance.get(f"{metric}.{stat}")
        if specific is not None:
            return specific
        return self.metric_tolerance.get(metric, self.max_regression)

    def drop_limit(self, name: str) -> float | None:
        """Points the share of ``name`` may fall, None when its fall is not judged."""
        return self.max_share_drop.get(name)

    def rise_limit(self, outcome: str) -> float | None:
        """Points the share of ``outcome`` may rise; error outcomes default to ``errors``."""
        limit = self.max_share_rise.get(outcome)
        if limit is None and outcome not in EXPECTED_OUTCOMES:
            limit = self.max_share_rise.get(ALL_ERRORS)
        return limit


@dataclass(frozen=True, slots=True)
class CompareResult:
    """Every compared row, the warnings that qualify them, and the overall verdict."""

    rows: tuple[Row, ...]
    warnings: tuple[str, ...]
    baseline_name: str
    current_name: str

    @property
    def regressions(self) -> tuple[Row, ...]:
        """Judged rows that regressed (informational regressions are shown, never counted)."""
        return tuple(r for r in self.rows if r.fails)

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
        _Side(baseline, baseline_histograms, tol.confidence),
        _Side(current, current_histograms, tol.confidence),
    )
    rows = list(capacity_rows(baseline.get("search"), current.get("search"), tol.max_regression))
    for scope, base_scope, cur_scope in _scopes(baseline, current):
        rows.extend(_latency_rows(scope, base_scope, cur_scope, sides, tol))
        rows.extend(_share_rows(scope, base_scope, cur_scope, sides, tol))
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
    )


def render_text(result: CompareResult) -> str:
    """Plain text for the terminal: warnings, the ``ATTENTION`` rows with why, the verdict."""
    lines = [f"warning: {w}" for w in result.warnings]
    informational = 0
    for row in result.rows:
        if row.verdict in ATTENTION:
            if not row.judged:
                informational += 1
                continue
            lines.append(
                f"{row.verdict.value:>20}  {row.test_name}: {row.format_value(row.baseline)} → "
                f"{row.format_value(row.current)} ({row.format_change()}): {row.detail}"
            )
    if informational:
        lines.append(
            f"{informational} informational figures changed (not gated on; --metrics names the "
            "gated ones): see --json or the report"
        )
    unjudged = sum(1 for r in result.rows if r.verdict is Verdict.INSUFFICIENT)
    if unjudged:
        lines.append(
            f"{unjudged} percentiles not judged: too few samples to bound them (--min-samples, "
            "--confidence)"
        )
    regressions = len(result.regressions)
    lines.append(
        f"compared {len(result.rows)} figures with {result.baseline_name}: "
        + (f"{regressions} regression{'s' if regressions != 1 else ''}" if regressions else "ok")
    )
    return "\n".join(lines) + "\n"


def warnings(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What makes the comparison less trustworthy (every output shows these)."""
    out: list[str] = []
    base_hash, cur_hash = baseline.get("scenario_hash"), current.get("scenario_hash")
    if base_hash != cur_hash:
        out.append(
            f"different scenarios (scenario_hash {base_hash} vs {cur_hash}): "
            "compared anyway, the figures may not be comparable"
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


@dataclass(frozen=True, slots=True)
class _Side:
    """One summary with what judging its figures needs: histograms and per-run figures."""

    summary: Mapping[str, Any]
    histograms: Histograms | None
    confidence: float

    def runs(self, scope: str) -> Mapping[str, Any]:
        """The per-run figures of ``scope`` in a ``--repeat`` summary (empty otherwise)."""
        figures = self.summary.get("repeat", {}).get("figures", {})
        found = (
            figures.get("total") if scope == "total" else figures.get("behaviours", {}).get(scope)
        )
        return found or {}

    def intervals(
        self, scope: str, metric: str, overflow: int
    ) -> dict[str, tuple[float, float] | None] | None:
        """Each percentile's interval of ``metric`` in ``scope``; None without histograms."""
        if self.histograms is None:
            return None
        histogram = self.histograms.get(make_tag(metric, None if scope == "total" else scope))
        if histogram is None:
            return None
        return percentile_intervals(histogram, overflow, self.confidence)


def _latency_rows(
    scope: str,
    base: Mapping[str, Any],
    cur: Mapping[str, Any],
    sides: tuple[_Side, _Side],
    tol: Tolerances,
) -> Iterator[Row]:
    base_lat, cur_lat = base.get("latency_us", {}), cur.get("latency_us", {})
    known = [m for m in METRICS if m in base_lat or m in cur_lat]
    others = sorted((set(base_lat) | set(cur_lat)) - set(METRICS))
    for metric in [*known, *others]:
        b_stats, c_stats = base_lat.get(metric) or {}, cur_lat.get(metric) or {}
        b_count, c_count = int(b_stats.get("count") or 0), int(c_stats.get("count") or 0)
        if b_count == 0 and c_count == 0:
            continue  # not measured by either run: nothing to say
        figure = _Figure(scope, metric, b_stats, c_stats, judged_metric(metric, tol.metrics))
        b_int = sides[0].intervals(scope, metric, int(b_stats.get("overflow") or 0))
        c_int = sides[1].intervals(scope, metric, int(c_stats.get("overflow") or 0))
        b_runs = sides[0].runs(scope).get("latency_us", {}).get(metric, {})
        c_runs = sides[1].runs(scope).get("latency_us", {}).get(metric, {})
        for stat in COMPARED_STATS:
            yield figure.row(
                stat,
                tol,
                (None if b_int is None else b_int[stat], None if c_int is None else c_int[stat]),
                (_known(b_runs.get(stat)), _known(c_runs.get(stat))),
            )


@dataclass(frozen=True, slots=True)
class _Figure:
    """One latency metric in one scope, both sides' statistics."""

    scope: str
    metric: str
    b_stats: Mapping[str, Any]
    c_stats: Mapping[str, Any]
    judged: bool

    def row(
        self,
        stat: str,
        tol: Tolerances,
        intervals: tuple[tuple[float, float] | None, tuple[float, float] | None],
        runs: tuple[tuple[float, ...], tuple[float, ...]],
    ) -> Row:
        relative = tol.latency_limit(self.metric, stat)
        floor = Floor(relative, tol.min_change_us)
        b_val, c_val = _value(self.b_stats.get(stat)), _value(self.c_stats.get(stat))
        b_count = int(self.b_stats.get("count") or 0)
        c_count = int(self.c_stats.get("count") or 0)
        finite = b_val is not None and c_val is not None and max(b_val, c_val) < float("inf")
        change = (c_val - b_val) / b_val if finite and b_val and c_val is not None else None

        def make(verdict: Verdict, detail: str, judgement: Judgement | None = None) -> Row:
            return Row(
                self.scope, f"{self.metric}.{stat}", "us", b_val, c_val, change,
                f"+{100 * relative:g} % / {format_us(tol.min_change_us)}", verdict, detail,
                judged=self.judged,
                method=None if judgement is None else judgement.method,
                intervals=intervals,
                p_value=None if judgement is None else judgement.p_value,
            )  # fmt: skip

        if b_val is None or c_val is None:
            side = "baseline" if b_val is None else "current"
            return make(Verdict.MISSING, f"no samples in the {side} run")
        num, den = PERCENTILES[stat]
        unbounded = any(
            percentile_ranks(count, num / den, tol.confidence) is None
            for count in (b_count, c_count)
        )
        samples = f"{b_count:,} vs {c_count:,} samples"
        if min(b_count, c_count) < tol.min_samples:
            return make(Verdict.INSUFFICIENT, f"{samples}; --min-samples {tol.min_samples:,}")
        if unbounded:
            level = f"{100 * tol.confidence:g} %"
            return make(Verdict.INSUFFICIENT, f"{samples}: too few to bound {stat} at {level}")
        judgement = judge(
            Evidence(b_val, intervals[0], runs[0]),
            Evidence(c_val, intervals[1], runs[1]),
            floor,
            worse_up=True,
            alpha=1 - tol.confidence,
            fmt=format_us,
            confidence=tol.confidence,
        )
        return make(judgement.verdict, judgement.why, judgement)


def _known(values: Any) -> tuple[float, ...]:
    """Per-run values of one figure, when every run has one (a run without is no spread)."""
    if not isinstance(values, list) or not values or any(v is None for v in values):
        return ()
    return tuple(v if float(v) < HIGHEST_US else float("inf") for v in map(float, values))


def _value(raw: Any) -> float | None:
    """A statistic as a float; ``inf`` at the 1 h top of the range (overflow: "at least")."""
    if raw is None:
        return None
    value = float(raw)
    return value if value < HIGHEST_US else float("inf")


def _share_rows(
    scope: str,
    base: Mapping[str, Any],
    cur: Mapping[str, Any],
    sides: tuple[_Side, _Side],
    tol: Tolerances,
) -> Iterator[Row]:
    b_att, c_att = int(base.get("attempted") or 0), int(cur.get("attempted") or 0)
    if b_att == 0 or c_att == 0:
        return
    b_runs, c_runs = sides[0].runs(scope), sides[1].runs(scope)
    share = _Shares(scope, b_att, c_att, tol.confidence)
    if base.get("clean") is not None and cur.get("clean") is not None:
        drop = tol.drop_limit("clean")
        if drop is not None:
            runs = (_run_shares(b_runs, "clean"), _run_shares(c_runs, "clean"))
            yield share.row("clean share", base["clean"], cur["clean"], drop, worse_up=False,
                            runs=runs)  # fmt: skip
    b_out, c_out = base.get("outcomes", {}), cur.get("outcomes", {})
    for outcome in [*b_out, *(o for o in c_out if o not in b_out)]:
        b_n, c_n = int(b_out.get(outcome, 0)), int(c_out.get(outcome, 0))
        rise, drop = tol.rise_limit(outcome), tol.drop_limit(outcome)
        runs = (_run_shares(b_runs, outcome), _run_shares(c_runs, outcome))
        if rise is not None and (b_n or c_n):
            yield share.row(f"outcome {outcome} share", b_n, c_n, rise, worse_up=True, runs=runs)
        elif drop is not None and outcome != "clean" and (b_n or c_n):
            yield share.row(f"outcome {outcome} share", b_n, c_n, drop, worse_up=False, runs=runs)


def _run_shares(runs: Mapping[str, Any], name: str) -> tuple[float, ...]:
    """Per-run shares of ``clean`` or an outcome from a ``--repeat`` summary's figures."""
    attempted = runs.get("attempted")
    counts = runs.get("clean") if name == "clean" else runs.get("outcomes", {}).get(name)
    if not isinstance(attempted, list) or not attempted:
        return ()
    if counts is None:
        counts = [0] * len(attempted)  # an outcome no run ended with: 0 % in every run
    if len(counts) != len(attempted) or any(a is None or not a for a in attempted):
        return ()
    return tuple(int(c or 0) / int(a) for c, a in zip(counts, attempted, strict=True))


@dataclass(frozen=True, slots=True)
class _Shares:
    """Share rows of one scope: Wilson intervals, per-run spreads, a points floor."""

    scope: str
    b_att: int
    c_att: int
    confidence: float

    def row(
        self,
        name: str,
        b_n: int,
        c_n: int,
        limit: float,
        *,
        worse_up: bool,
        runs: tuple[tuple[float, ...], tuple[float, ...]],
    ) -> Row:
        b_share, c_share = b_n / self.b_att, c_n / self.c_att
        intervals = (
            share_interval(b_n, self.b_att, self.confidence),
            share_interval(c_n, self.c_att, self.confidence),
        )
        judgement = judge(
            Evidence(b_share, intervals[0], runs[0]),
            Evidence(c_share, intervals[1], runs[1]),
            Floor(0.0, limit / 100),
            worse_up=worse_up,
            alpha=1 - self.confidence,
            fmt=lambda v: f"{100 * v:.2f} %",
            confidence=self.confidence,
            difference=True,
        )
        return Row(
            scope=self.scope,
            name=name,
            unit="share",
            baseline=b_share,
            current=c_share,
            change=round(100 * (c_share - b_share), 6),
            limit=f"{'+' if worse_up else '-'}{limit:g} pt",
            verdict=judgement.verdict,
            detail=f"{b_n:,} of {self.b_att:,} → {c_n:,} of {self.c_att:,}: {judgement.why}",
            method=judgement.method,
            intervals=intervals,
            p_value=judgement.p_value,
        )
