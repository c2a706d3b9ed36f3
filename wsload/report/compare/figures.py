"""The compared rows of one scope: each latency percentile and each share, judged.

``wsload.report.compare.engine`` walks the scopes (the total, then every behaviour both runs
have) and asks this module for their rows: a latency percentile is judged against its interval
(from the histograms), the baseline's per-run spread and the floors; a share (clean, each
outcome) against Wilson intervals and a points floor.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

from wsload.metrics.histograms import HIGHEST_US, PERCENTILES
from wsload.report._format import format_stat, format_us
from wsload.report.compare.confidence import (
    percentile_intervals,
    percentile_ranks,
    share_interval,
)
from wsload.report.compare.generator import SlowerGenerator, generator_slower
from wsload.report.compare.judge import Evidence, Floor, Judgement, Verdict, judge
from wsload.report.compare.rows import Row
from wsload.report.compare.tolerances import Tolerances, judged_metric
from wsload.report.hlog import make_tag
from wsload.scenario.model import METRICS

__all__ = ["Histograms", "Side", "latency_rows", "share_rows"]

Histograms = Mapping[str, HdrHistogram]
"""A run's total histograms by hlog tag (``close_handshake``, ``close_handshake:clean``)."""


@dataclass(frozen=True, slots=True)
class Side:
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


def latency_rows(
    scope: str,
    base: Mapping[str, Any],
    cur: Mapping[str, Any],
    sides: tuple[Side, Side],
    tol: Tolerances,
) -> Iterator[Row]:
    base_lat, cur_lat = base.get("latency_us", {}), cur.get("latency_us", {})
    slower = generator_slower(sides[0].summary, sides[1].summary)
    known = [m for m in METRICS if m in base_lat or m in cur_lat]
    others = sorted((set(base_lat) | set(cur_lat)) - set(METRICS))
    for metric in [*known, *others]:
        b_stats, c_stats = base_lat.get(metric) or {}, cur_lat.get(metric) or {}
        b_count, c_count = _started(b_stats), _started(c_stats)
        if b_count == 0 and c_count == 0:
            continue  # not measured by either run: nothing to say
        judged = judged_metric(metric, tol.metrics)
        figure = _Figure(scope, metric, b_stats, c_stats, judged, slower)
        b_int = sides[0].intervals(scope, metric, _above(b_stats))
        c_int = sides[1].intervals(scope, metric, _above(c_stats))
        b_runs = sides[0].runs(scope).get("latency_us", {}).get(metric, {})
        c_runs = sides[1].runs(scope).get("latency_us", {}).get(metric, {})
        for stat in tol.stats:
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
    slower: SlowerGenerator | None = None

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
        b_count, c_count = _started(self.b_stats), _started(self.c_stats)
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

        censored = self._censored(stat, b_val, c_val)
        if censored is None and (b_val is None or c_val is None):
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
        if censored is not None:
            return make(*censored)
        assert b_val is not None and c_val is not None
        judgement = judge(
            Evidence(b_val, intervals[0], runs[0]),
            Evidence(c_val, intervals[1], runs[1]),
            floor,
            worse_up=True,
            alpha=1 - tol.confidence,
            fmt=format_us,
            confidence=tol.confidence,
        )
        if self.slower is not None and judgement.verdict is Verdict.REGRESSED:
            bound = self.slower.bound(stat, self.b_stats)
            if bound is not None and c_val <= bound:  # the generator's delay could do this
                why = (
                    f"generator slower than the baseline ({self.slower.describe()}), its delay "
                    f"could reach {format_us(bound)}: {judgement.why}"
                )
                return make(Verdict.INCONCLUSIVE, why, judgement)
        return make(judgement.verdict, judgement.why, judgement)

    def _censored(
        self, stat: str, b_val: float | None, c_val: float | None
    ) -> tuple[Verdict, str] | None:
        """The verdict when ``stat`` lies among the censored on either side: unknown now but
        a number before is a regression (an unknown value never passes), and the reverse an
        improvement; None when neither side is censored."""
        b_cens = bool(self.b_stats.get(f"{stat}_censored"))
        c_cens = bool(self.c_stats.get(f"{stat}_censored"))
        was = format_stat(self.b_stats, stat)
        now = format_stat(self.c_stats, stat)
        if c_cens and b_val is not None:
            return Verdict.REGRESSED, f"{was} → {now}: now among the censored (unknown)"
        if b_cens and c_val is not None:
            return Verdict.IMPROVED, f"{was} → {now}: no longer among the censored"
        if b_cens or c_cens:
            return Verdict.MISSING, f"{was} → {now}: censored, not comparable"
        return None


def _started(stats: Mapping[str, Any]) -> int:
    """Measurements of a latency, the censored ones included (older summaries: ``count``)."""
    return int(stats.get("started") or stats.get("count") or 0)


def _above(stats: Mapping[str, Any]) -> int:
    """Measurements ranked above the histogram: over 1 h, and the censored (both are longer
    than every recorded sample, which is all a percentile's interval needs to know)."""
    return int(stats.get("overflow") or 0) + int(stats.get("censored") or 0)


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


def share_rows(
    scope: str,
    base: Mapping[str, Any],
    cur: Mapping[str, Any],
    sides: tuple[Side, Side],
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
