"""One compared figure (``Row``): the unit both the comparison and its renderers speak.

Its own module so that ``compare`` (latencies, shares) and ``compare_search`` (capacities)
build the same rows without importing each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from wsload.report._format import format_us
from wsload.report.compare.judge import Method, Verdict

__all__ = ["Row", "format_level"]

_LEVEL_UNITS = {"rate": "/s", "storm_size": " connections"}


def format_level(value: float | None, parameter: str) -> str:
    """A capacity search's level for people: ``200/s``, ``5000 connections``, ``-``."""
    return "-" if value is None else f"{value:g}{_LEVEL_UNITS.get(parameter, '')}"


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
        limit: the floor (or a capacity's tolerance) in words (``+10 % / 500 µs``,
            ``-0.5 pt``).
        verdict: the judgement.
        detail: why, for people: the values, then the interval, spread or rank test and the
            floor the verdict rests on.
        judged: False for an informational figure (a metric the comparison does not gate
            on): its verdict is shown, never fails.
        method: what the verdict rests on (``wsload.report.compare.judge.Method``); None when
            nothing was judged (missing, insufficient samples).
        intervals: the (baseline, current) confidence intervals, when known.
        p_value: the rank test's one-sided p-value, when one ran.
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
    judged: bool = True
    method: Method | None = None
    intervals: tuple[tuple[float, float] | None, tuple[float, float] | None] = (None, None)
    p_value: float | None = None

    @property
    def test_name(self) -> str:
        """A stable identifier (JUnit test case name): ``total/close_handshake.p99``."""
        return f"{self.scope}/{self.name}"

    @property
    def fails(self) -> bool:
        """A regression of a judged figure: the only thing that fails a comparison."""
        return self.judged and self.verdict is Verdict.REGRESSED

    @property
    def verdict_text(self) -> str:
        """The verdict for people: ``regressed``, ``regressed (informational)``."""
        return self.verdict.value if self.judged else f"{self.verdict.value} (informational)"

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
            "judged": self.judged,
            "method": None if self.method is None else self.method.value,
            "baseline_interval": _json_interval(self.intervals[0]),
            "current_interval": _json_interval(self.intervals[1]),
            "p_value": self.p_value,
        }


def _json_number(value: float | None) -> float | None:
    """Strict JSON has no infinity: a value past the 1 h range is null (``detail`` says why)."""
    return None if value is None or math.isinf(value) else value


def _json_interval(interval: tuple[float, float] | None) -> list[float | None] | None:
    return None if interval is None else [_json_number(v) for v in interval]
