"""What counts as a change and which figures are gated on: ``Tolerances`` and its defaults.

Apart from the comparison itself so that the figure builders (``wsload.report.compare.figures``)
and the comparison (``wsload.report.compare.engine``) share one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from wsload.core.kinds import KINDS
from wsload.metrics.histograms import PERCENTILES
from wsload.report.compare.confidence import DEFAULT_CONFIDENCE
from wsload.report.compare.judge import Verdict
from wsload.scenario.model import STEP_PREFIX

__all__ = [
    "ALL_ERRORS",
    "ATTENTION",
    "COMPARED_STATS",
    "EXPECTED_OUTCOMES",
    "JUDGED_METRICS",
    "Tolerances",
    "judged_metric",
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

EXPECTED_OUTCOMES: frozenset[str] = frozenset(info.expected.value for info in KINDS.values())
"""Outcomes some close kind is *meant* to end with; every other outcome is an error (the
endings the Why table leaves out, ``wsload.metrics.failures``)."""

ALL_ERRORS = "errors"
"""``max_share_rise`` key that sets the limit of every error outcome without its own."""

ATTENTION: tuple[Verdict, ...] = (
    Verdict.REGRESSED,
    Verdict.INCONCLUSIVE,
    Verdict.NOISY,
    Verdict.IMPROVED,
    Verdict.MISSING,
)
"""Verdicts the outputs list up front (``within noise`` and ``insufficient samples`` are
counted)."""


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
