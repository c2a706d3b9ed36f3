"""Baseline vs current: two summary.json dicts and tolerances → rows with verdicts.

Pure: no files, no printing. ``wsload compare`` and ``wsload run --baseline`` call it and hand
the result to the renderers (terminal, markdown, JUnit).

The direction of "worse" is explicit per rule, never inferred from a sign:

- latency statistics (p50, p90, p99, p999): **up** is worse, by more than a relative tolerance
  (``--max-regression 10%``, per ``metric[.stat]`` overrides) *and* more than an absolute floor
  (``--min-change``), because on loopback a p99 going from 40 µs to 48 µs is +20 % and noise;
- the clean share (connections that closed the way their kind calls clean) **down** is worse,
  by more than ``max_share_drop`` percentage points;
- the share of every error outcome (anything but the outcome a kind is meant to end with,
  ``EXPECTED_OUTCOMES``) **up** is worse, by more than ``max_share_rise`` points.

Noise-aware: a percentile with fewer than ``min_samples`` samples on either side gets the
verdict ``insufficient samples`` (neither pass nor fail), and runs of different scenarios
(``scenario_hash``) are still compared, with a warning every output repeats.

Capacity searches (summaries with a ``search`` section) add one row, ``search/capacity``:
**down** is worse, by more than ``max_regression``. The rest of such a summary holds the
figures of one level, ``search.main_level``; when the two main levels differ the percentiles
compare different loads, and a warning says so (as it does for a search against a single run).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from wsload.core.outcomes import Outcome
from wsload.metrics.histograms import HIGHEST_US
from wsload.report._format import format_us
from wsload.scenario.model import METRICS, STEP_PREFIX

__all__ = [
    "ALL_ERRORS",
    "ATTENTION",
    "COMPARED_STATS",
    "EXPECTED_OUTCOMES",
    "CompareResult",
    "Row",
    "Tolerances",
    "Verdict",
    "compare",
    "format_level",
    "render_text",
]

COMPARED_STATS: tuple[str, ...] = ("p50", "p90", "p99", "p999")
"""Latency statistics compared (min/max/mean are one sample or skewed by one: pure noise)."""

EXPECTED_OUTCOMES: frozenset[str] = frozenset(
    {
        Outcome.CLEAN.value,
        Outcome.SERVER_CLOSED.value,
        Outcome.INVALID_REJECTED.value,
        Outcome.TERMINATED.value,
        Outcome.CLOSE_NO_WAIT.value,
        Outcome.SERVER_DROPPED.value,
    }
)
"""Outcomes some close kind is *meant* to end with; every other outcome is an error."""

ALL_ERRORS = "errors"
"""``max_share_rise`` key that sets the limit of every error outcome without its own."""


class Verdict(StrEnum):
    """One row's judgement. Only ``REGRESSED`` fails the comparison."""

    PASS = "pass"
    IMPROVED = "improved"
    REGRESSED = "regressed"
    INSUFFICIENT = "insufficient samples"
    MISSING = "missing"


ATTENTION: tuple[Verdict, ...] = (Verdict.REGRESSED, Verdict.IMPROVED, Verdict.MISSING)
"""Verdicts the outputs list up front (``pass`` and ``insufficient samples`` are counted)."""


@dataclass(frozen=True, slots=True)
class Tolerances:
    """How much worse counts as a regression.

    Attributes:
        max_regression: relative latency rise allowed (0.10 = +10 %).
        metric_tolerance: ``metric`` or ``metric.stat`` → its own relative allowance
            (``close_handshake.p99`` → 0.20); ``metric.stat`` wins over ``metric``.
        min_change_us: latency changes smaller than this (µs) are never a regression.
        max_share_drop: ``clean`` or an outcome → percentage points its share may fall.
        max_share_rise: an error outcome (or ``errors``: all of them) → points it may rise.
        min_samples: a percentile needs this many samples on both sides to be judged.
        metrics: the latency metrics compared (default: every metric either run measured,
            ``step.<name>`` metrics included);
            CI gates pick the close metrics, whose tails are their subject.
    """

    max_regression: float = 0.10
    metric_tolerance: Mapping[str, float] = field(default_factory=dict)
    min_change_us: float = 0.0
    max_share_drop: Mapping[str, float] = field(default_factory=lambda: {"clean": 0.5})
    max_share_rise: Mapping[str, float] = field(default_factory=lambda: {ALL_ERRORS: 0.5})
    min_samples: int = 100
    metrics: tuple[str, ...] = METRICS

    def latency_limit(self, metric: str, stat: str) -> float:
        """The relative rise allowed for ``metric.stat``."""
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
class Row:
    """One compared figure.

    Attributes:
        scope: ``total`` or the behaviour's label.
        name: ``close_handshake.p99``, ``clean share``, ``outcome close_timeout share``.
        unit: ``us``, ``share`` (0..1), or the searched parameter (``rate``: connections/s,
            ``storm_size``: connections) for a search's capacity.
        baseline / current: the two values (None: not measured on that side; ``inf``: at
            or past the histogram's 1 h top, i.e. overflow samples).
        change: relative change for latencies and capacities, point change (current -
            baseline, in percentage points) for shares; None when not computable.
        limit: the allowance in words (``+10 %``, ``-0.5 pt``).
        verdict: the judgement.
        detail: why, for people.
    """

    scope: str
    name: str
    unit: str  # "us", "share", or a search's parameter ("rate", "storm_size")
    baseline: float | None
    current: float | None
    change: float | None
    limit: str
    verdict: Verdict
    detail: str

    @property
    def test_name(self) -> str:
        """A stable identifier (JUnit test case name): ``total/close_handshake.p99``."""
        return f"{self.scope}/{self.name}"

    def format_value(self, value: float | None) -> str:
        """A value of this row for people (``1.12 ms``, ``81.2 %``, ``200/s``, ``-``)."""
        if value is None:
            return "-"
        if self.unit == "us":
            return format_us(value)
        if self.unit == "share":
            return f"{100 * value:.2f} %"
        return format_level(value, self.unit)

    def format_change(self) -> str:
        """``+12.3 %`` for latencies and capacities, ``-0.80 pt`` for shares, ``-`` when
        unknown."""
        if self.change is None:
            return "-"
        if self.unit == "share":
            return f"{self.change:+.2f} pt"
        return f"{100 * self.change:+.1f} %"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``wsload compare --json``)."""
        return {
            "scope": self.scope,
            "name": self.name,
            "unit": self.unit,
            "baseline": _json_number(self.baseline),
            "current": _json_number(self.current),
            "change": self.change,
            "limit": self.limit,
            "verdict": self.verdict.value,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class CompareResult:
    """Every compared row, the warnings that qualify them, and the overall verdict."""

    rows: tuple[Row, ...]
    warnings: tuple[str, ...]
    baseline_name: str
    current_name: str

    @property
    def regressions(self) -> tuple[Row, ...]:
        """Rows judged worse than the tolerances allow."""
        return tuple(r for r in self.rows if r.verdict is Verdict.REGRESSED)

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
) -> CompareResult:
    """Compare two summary.json dicts (total and every behaviour present in both)."""
    tol = tolerances if tolerances is not None else Tolerances()
    rows = list(_capacity_rows(baseline.get("search"), current.get("search"), tol))
    for scope, base_scope, cur_scope in _scopes(baseline, current):
        rows.extend(_latency_rows(scope, base_scope, cur_scope, tol))
        rows.extend(_share_rows(scope, base_scope, cur_scope, tol))
    return CompareResult(
        rows=tuple(rows),
        warnings=tuple(warnings(baseline, current)),
        baseline_name=baseline_name,
        current_name=current_name,
    )


def render_text(result: CompareResult) -> str:
    """Plain text for the terminal: warnings, the ``ATTENTION`` rows, the verdict."""
    lines = [f"warning: {w}" for w in result.warnings]
    for row in result.rows:
        if row.verdict in ATTENTION:
            lines.append(
                f"{row.verdict.value:>20}  {row.test_name}: {row.format_value(row.baseline)} → "
                f"{row.format_value(row.current)} ({row.format_change()}, limit {row.limit})"
            )
    unjudged = sum(1 for r in result.rows if r.verdict is Verdict.INSUFFICIENT)
    if unjudged:
        lines.append(f"{unjudged} percentiles not judged: too few samples (--min-samples)")
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
    out.extend(_search_warnings(baseline.get("search"), current.get("search")))
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
    yield "total", _total_scope(baseline), _total_scope(current)
    cur_behaviours = current.get("behaviours", {})
    for label, base_scope in baseline.get("behaviours", {}).items():
        if label in cur_behaviours:
            yield label, base_scope, cur_behaviours[label]


def _total_scope(summary: Mapping[str, Any]) -> dict[str, Any]:
    totals = summary.get("totals", {})
    return {
        "attempted": totals.get("attempted", 0),
        "clean": totals.get("clean"),
        "outcomes": summary.get("outcomes", {}),
        "latency_us": summary.get("latency_us", {}),
    }


def _latency_rows(
    scope: str, base: Mapping[str, Any], cur: Mapping[str, Any], tol: Tolerances
) -> Iterator[Row]:
    base_lat, cur_lat = base.get("latency_us", {}), cur.get("latency_us", {})
    metrics = tol.metrics
    if metrics == METRICS:  # the default: also every step.<name> metric either run has
        steps = {m for m in (*base_lat, *cur_lat) if m.startswith(STEP_PREFIX)}
        metrics = (*metrics, *sorted(steps))
    for metric in metrics:
        b_stats, c_stats = base_lat.get(metric) or {}, cur_lat.get(metric) or {}
        b_count, c_count = int(b_stats.get("count") or 0), int(c_stats.get("count") or 0)
        if b_count == 0 and c_count == 0:
            continue  # not measured by either run: nothing to say
        for stat in COMPARED_STATS:
            yield _latency_row(scope, metric, stat, b_stats, c_stats, b_count, c_count, tol)


def _latency_row(
    scope: str,
    metric: str,
    stat: str,
    b_stats: Mapping[str, Any],
    c_stats: Mapping[str, Any],
    b_count: int,
    c_count: int,
    tol: Tolerances,
) -> Row:
    limit = tol.latency_limit(metric, stat)
    b_val, c_val = _value(b_stats.get(stat)), _value(c_stats.get(stat))
    finite = b_val is not None and c_val is not None and max(b_val, c_val) < math.inf
    change = (c_val - b_val) / b_val if finite and b_val and c_val is not None else None

    def make(verdict: Verdict, detail: str) -> Row:
        return Row(scope, f"{metric}.{stat}", "us", b_val, c_val, change,
                   f"+{100 * limit:g} %", verdict, detail)  # fmt: skip

    if b_val is None or c_val is None:
        side = "baseline" if b_val is None else "current"
        return make(Verdict.MISSING, f"no samples in the {side} run")
    needed = max(tol.min_samples, _tail_samples(stat))
    if min(b_count, c_count) < needed:
        detail = f"{b_count:,} vs {c_count:,} samples; {needed:,} needed to judge {stat}"
        return make(Verdict.INSUFFICIENT, detail)
    if not finite:  # beyond the histogram's 1 h: only "more" or "the same" can be said
        verdict = (
            Verdict.PASS
            if b_val == c_val
            else (Verdict.REGRESSED if c_val > b_val else Verdict.IMPROVED)
        )
        return make(verdict, f"{format_us(b_val)} → {format_us(c_val)}")
    delta = c_val - b_val
    if abs(delta) < tol.min_change_us or (change is not None and abs(change) <= limit):
        verdict = Verdict.PASS
    else:
        verdict = Verdict.REGRESSED if delta > 0 else Verdict.IMPROVED
    sign = "+" if delta >= 0 else "-"
    detail = f"{format_us(b_val)} → {format_us(c_val)} ({sign}{format_us(abs(delta))})"
    return make(verdict, detail)


def _json_number(value: float | None) -> float | None:
    """Strict JSON has no infinity: a value past the 1 h range is null (``detail`` says why)."""
    return None if value is None or math.isinf(value) else value


def _tail_samples(stat: str) -> int:
    """Samples for ``stat`` to be more than the maximum: p99 needs 100, p999 1000."""
    return {"p50": 2, "p90": 10, "p99": 100, "p999": 1000}.get(stat, 1)


def _value(raw: Any) -> float | None:
    """A statistic as a float; ``inf`` at the 1 h top of the range (overflow: "at least")."""
    if raw is None:
        return None
    value = float(raw)
    return value if value < HIGHEST_US else math.inf


def _share_rows(
    scope: str, base: Mapping[str, Any], cur: Mapping[str, Any], tol: Tolerances
) -> Iterator[Row]:
    b_att, c_att = int(base.get("attempted") or 0), int(cur.get("attempted") or 0)
    if b_att == 0 or c_att == 0:
        return
    if base.get("clean") is not None and cur.get("clean") is not None:
        drop = tol.drop_limit("clean")
        if drop is not None:
            yield _share_row(scope, "clean share", base["clean"], b_att, cur["clean"], c_att,
                             limit=drop, worse_up=False)  # fmt: skip
    b_out, c_out = base.get("outcomes", {}), cur.get("outcomes", {})
    for outcome in [*b_out, *(o for o in c_out if o not in b_out)]:
        b_n, c_n = int(b_out.get(outcome, 0)), int(c_out.get(outcome, 0))
        rise, drop = tol.rise_limit(outcome), tol.drop_limit(outcome)
        if rise is not None and (b_n or c_n):
            yield _share_row(scope, f"outcome {outcome} share", b_n, b_att, c_n, c_att,
                             limit=rise, worse_up=True)  # fmt: skip
        elif drop is not None and outcome != "clean" and (b_n or c_n):
            yield _share_row(scope, f"outcome {outcome} share", b_n, b_att, c_n, c_att,
                             limit=drop, worse_up=False)  # fmt: skip


def _share_row(
    scope: str,
    name: str,
    b_n: int,
    b_att: int,
    c_n: int,
    c_att: int,
    *,
    limit: float,
    worse_up: bool,
) -> Row:
    b_share, c_share = b_n / b_att, c_n / c_att
    points = 100 * (c_share - b_share)
    worse = points if worse_up else -points
    if worse > limit + 1e-9:
        verdict = Verdict.REGRESSED
    elif -worse > limit + 1e-9:
        verdict = Verdict.IMPROVED
    else:
        verdict = Verdict.PASS
    return Row(
        scope=scope,
        name=name,
        unit="share",
        baseline=b_share,
        current=c_share,
        change=round(points, 6),
        limit=f"{'+' if worse_up else '-'}{limit:g} pt",
        verdict=verdict,
        detail=f"{b_n:,} of {b_att:,} → {c_n:,} of {c_att:,}",
    )


_LEVEL_UNITS = {"rate": "/s", "storm_size": " connections"}


def format_level(value: float | None, parameter: str) -> str:
    """A capacity search's level for people: ``200/s``, ``5000 connections``, ``-``."""
    return "-" if value is None else f"{value:g}{_LEVEL_UNITS.get(parameter, '')}"


def _search_warnings(base: Mapping[str, Any] | None, cur: Mapping[str, Any] | None) -> list[str]:
    """Why the figures of a search's summary may not compare like with like.

    A search's summary holds the figures of its main level: against another level, or against
    a single run at some other load, its percentiles and shares measure a different load.
    """
    if base is None or cur is None:
        for search, side, other in ((base, "baseline", "current"), (cur, "current", "baseline")):
            if search is not None:
                level = format_level(search.get("main_level"), str(search.get("parameter")))
                return [
                    f"the {side} run is a capacity search and the {other} is not: its figures "
                    f"are those of its main level ({level}), compared with a single run"
                ]
        return []
    parameter = str(cur.get("parameter"))
    if base.get("parameter") != parameter:
        return [
            f"the searches are over different parameters ({base.get('parameter')} vs "
            f"{parameter}): their capacities and figures are not comparable"
        ]
    out: list[str] = []
    b_main, c_main = base.get("main_level"), cur.get("main_level")
    if b_main != c_main:
        out.append(
            f"the searches' main levels differ ({format_level(b_main, parameter)} vs "
            f"{format_level(c_main, parameter)}): the other figures compare different loads"
        )
    for side, search in (("baseline", base), ("current", cur)):
        if search.get("stopped") == "saturated":
            out.append(
                f"the {side} search stopped on a saturated generator: its capacity is a lower bound"
            )
    return out


def _capacity_rows(
    base: Mapping[str, Any] | None, cur: Mapping[str, Any] | None, tol: Tolerances
) -> Iterator[Row]:
    """``search/capacity`` when both summaries are searches over the same parameter.

    A capacity is a level the search found, not a sample of a distribution: no sample count
    to judge, and ``None`` (no level passed) is the worst capacity there is.
    """
    if base is None or cur is None or base.get("parameter") != cur.get("parameter"):
        return
    unit = str(cur.get("parameter"))
    limit = tol.max_regression
    b_val, c_val = _number(base.get("capacity")), _number(cur.get("capacity"))
    change = (c_val - b_val) / b_val if b_val and c_val is not None else None
    if b_val is None and c_val is None:
        verdict, detail = Verdict.MISSING, "no level passed in either search"
    elif c_val is None:
        verdict, detail = Verdict.REGRESSED, "no level passed in the current search"
    elif b_val is None:
        verdict, detail = Verdict.IMPROVED, "no level passed in the baseline search"
    else:
        if change is not None and change < -limit - 1e-9:
            verdict = Verdict.REGRESSED
        elif change is not None and change > limit + 1e-9:
            verdict = Verdict.IMPROVED
        else:
            verdict = Verdict.PASS
        detail = (
            f"{format_level(b_val, unit)} ({base.get('stopped')}) → "
            f"{format_level(c_val, unit)} ({cur.get('stopped')})"
        )
    yield Row("search", "capacity", unit, b_val, c_val, change, f"-{100 * limit:g} %",
              verdict, detail)  # fmt: skip


def _number(raw: Any) -> float | None:
    return None if raw is None else float(raw)
