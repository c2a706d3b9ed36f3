"""Which level a capacity search tries next, and when it stops. Pure: no I/O, no clock.

The search climbs from ``start`` by ``factor`` while every level passes, then bisects between
the last passing and the first failing level until they are within ``precision`` of each other.
Both phases are bounded (``max`` caps the climb, halving the gap ends the bisection), so
``max_levels`` can say up front how many levels a search tries at worst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum

from wsload.report.search import min_samples
from wsload.report.thresholds import judged_percentiles
from wsload.scenario.model import LoadConfig, Scenario, SearchConfig

__all__ = [
    "Climb",
    "LevelVerdict",
    "Stop",
    "max_levels",
    "step_duration_at",
    "step_scenario",
    "worst_case_seconds",
]


class Stop(StrEnum):
    """Why a search ended (summary.json ``search.stopped``)."""

    CONVERGED = "converged"
    """The last pass and the first fail are within ``precision``: the capacity is found."""
    MAX = "max"
    """Every level up to ``max`` passed: the capacity is at least ``max``."""
    FIRST_FAILED = "first_failed"
    """Already ``start`` failed: the capacity is below it."""
    SATURATED = "saturated"
    """The generator could not apply a level: wsload's limit, not the target's."""
    INTERRUPTED = "interrupted"
    """Ctrl-C / SIGTERM."""


@dataclass(frozen=True, slots=True)
class LevelVerdict:
    """What one level showed, as the climb needs it (summary.json's entry is for people).

    Attributes:
        passed: every threshold held (there was at least one) and the level ran to its end.
        saturated: the generator could not apply the level, so ``passed`` says nothing about
            the target.
        interrupted: Ctrl-C / SIGTERM during the level.
    """

    passed: bool
    saturated: bool = False
    interrupted: bool = False


def _whole(search: SearchConfig, level: float) -> float:
    """Storm sizes are whole connections; rates keep 3 decimals (readable, stable)."""
    if search.over == "storm_size":
        return float(max(1, round(level)))
    return round(level, 3)


def _up(search: SearchConfig, level: float) -> float:
    """The level after ``level`` passed: ``factor`` times it (a storm grows by one at least),
    capped at ``max``."""
    higher = _whole(search, level * search.factor)
    if search.over == "storm_size":
        higher = max(higher, level + 1)
    return min(higher, search.max)


def _climb_levels(search: SearchConfig) -> int:
    """Levels from ``start`` to ``max`` going up by ``_up`` (the last one capped)."""
    count, level = 1, search.start
    while level < search.max:
        level, count = _up(search, level), count + 1
    return count


def max_levels(search: SearchConfig) -> int:
    """The most levels a search can try: the whole climb, then a full bisection.

    A climb that fails at ``p * factor`` after passing ``p`` leaves a gap of ``factor - 1``
    relative to ``p``; each bisection at least halves it, so ``log2((factor - 1) /
    precision)`` more levels reach ``precision`` (fewer when whole storm sizes meet first).
    """
    ratio = (search.factor - 1.0) / search.precision
    bisect = math.ceil(math.log2(ratio) - 1e-9) if ratio > 1.0 else 0
    if search.over == "storm_size":
        gap = search.max - search.max / search.factor
        # + 1: midpoints rounded to whole connections can leave the bracket a little wider
        # than an exact halving would (9 / 81: 45, 27, 18, 14, 12 instead of 45, 27, 18, 13.5)
        bisect = min(bisect + 1, max(0, math.ceil(math.log2(max(gap, 1.0)))))
    return _climb_levels(search) + bisect


SAMPLE_MARGIN = 1.25
"""A lengthened step plans this many times the samples it needs: not every connection has every
metric (a terminate has no close handshake), and the first ones start late."""


def step_duration_at(scenario: Scenario, level: float) -> float:
    """How long a ``rate`` step at ``level`` runs: ``step_duration``, lengthened (up to
    ``max_step_duration``) until the percentiles its thresholds judge can get the samples
    ``wsload compare`` needs to bound them (p99: 528 at 99 %), so a level's verdict is a
    measure rather than a coin; the level's ``few_samples`` says when the cap was not enough."""
    search = scenario.load.search
    assert search is not None
    needed = max((min_samples(key) for key in judged_percentiles(scenario.thresholds)), default=0)
    wanted = SAMPLE_MARGIN * needed / level if level > 0 else 0.0
    return max(search.step_duration, min(wanted, search.max_step_duration))


def worst_case_seconds(load: LoadConfig) -> float:
    """An upper bound on a search's length: every level at its longest, plus the cool-downs.

    A rate step schedules for ``max_step_duration`` at most (``step_duration_at``) then drains
    for at most ``drain``; a storm step opens for at most ``open_deadline`` then drains.
    Connections still open after the drain are cancelled, so neither can take longer.
    """
    search = load.search
    assert search is not None
    longest = max(search.step_duration, search.max_step_duration)
    step = longest if search.over == "rate" else load.open_deadline
    return max_levels(search) * (step + load.drain + search.cooldown)


@dataclass(slots=True)
class Climb:
    """The search's state: feed it each level's verdict, ask it for the next level.

    ``next_level()`` is None once the search has stopped; ``stopped`` then says why.
    """

    search: SearchConfig
    passed: float | None = None
    failed: float | None = None
    stopped: Stop | None = None
    _level: float | None = field(default=None, init=False)

    def next_level(self) -> float | None:
        """The next level to try, or None when the search is over."""
        if self.stopped is not None:
            return None
        if self._level is None:
            self._level = self.search.start
        return self._level

    def record(self, level: float, ok: bool) -> None:
        """The verdict on ``level`` (the one ``next_level`` returned)."""
        search = self.search
        if ok:
            self.passed = level
        else:
            self.failed = level
        if self.failed is None:  # still climbing
            assert self.passed is not None
            if self.passed >= search.max:
                self.stopped = Stop.MAX
            else:
                self._level = _up(search, self.passed)
            return
        if self.passed is None:
            self.stopped = Stop.FIRST_FAILED
            return
        middle = _whole(search, (self.passed + self.failed) / 2)
        gap = (self.failed - self.passed) / self.passed
        # slack for rounding, so that a gap max_levels counts as reached stops here: float
        # (1.1 - 1.0 is 0.10000000000000009) and rates kept to 3 decimals (each rounded
        # midpoint moves the bracket by up to 0.0005; at most 0.001 over a whole bisection)
        slack = search.precision * 1e-9 + (0.001 / self.passed if search.over == "rate" else 0)
        if gap <= search.precision + slack or middle in (self.passed, self.failed):
            self.stopped = Stop.CONVERGED
        else:
            self._level = middle

    def judge(self, level: float, verdict: LevelVerdict) -> None:
        """Take ``level``'s verdict: an interruption or a saturated generator ends the search
        (neither says anything about the target); otherwise its pass or fail steers it."""
        if verdict.interrupted:
            self.stop(Stop.INTERRUPTED)
        elif verdict.saturated:
            self.stop(Stop.SATURATED)
        else:
            self.record(level, verdict.passed)

    def stop(self, why: Stop) -> None:
        """End the search early (saturated generator, interrupted run)."""
        self.stopped = why


def step_scenario(scenario: Scenario, level: float) -> Scenario:
    """The scenario of one search step: an ``arrival`` run at rate ``level`` for
    ``step_duration`` (lengthened: ``step_duration_at``), or a ``storm`` of ``level``
    connections; everything else unchanged."""
    load, search = scenario.load, scenario.load.search
    assert search is not None
    if search.over == "rate":
        duration = step_duration_at(scenario, level)
        step = replace(load, model="arrival", rate=level, duration=duration, search=None)
    else:
        step = replace(load, model="storm", concurrency=int(level), search=None)
    return replace(scenario, load=step)
