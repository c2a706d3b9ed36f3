"""The capacity search's pure part: which level comes next, when it stops, its bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsload.runner.modes.search_levels import (
    Climb,
    LevelVerdict,
    Stop,
    max_levels,
    step_scenario,
    worst_case_seconds,
)
from wsload.scenario.model import LoadConfig, Scenario, SearchConfig

pytestmark = pytest.mark.usefixtures("bounded_sync")


def _run(search: SearchConfig, knee: float) -> tuple[Climb, list[float]]:
    """Search against a target that passes every level <= ``knee``."""
    climb = Climb(search)
    tried: list[float] = []
    while (level := climb.next_level()) is not None:
        tried.append(level)
        climb.record(level, level <= knee)
        assert len(tried) <= 100
    return climb, tried


def test_climbs_by_factor_then_bisects_to_the_precision() -> None:
    search = SearchConfig(over="rate", start=50, max=800, factor=2, precision=0.05)
    climb, tried = _run(search, knee=230)
    assert tried == [50, 100, 200, 400, 300, 250, 225, 237.5, 231.25]
    assert climb.stopped is Stop.CONVERGED
    assert (climb.passed, climb.failed) == (225, 231.25)
    assert (231.25 - 225) / 225 <= 0.05


def test_every_level_passing_stops_at_max() -> None:
    search = SearchConfig(over="rate", start=50, max=300, factor=2)
    climb, tried = _run(search, knee=10_000)
    assert tried == [50, 100, 200, 300]  # the last step is capped at max
    assert climb.stopped is Stop.MAX and climb.passed == 300 and climb.failed is None


def test_a_failing_first_level_stops_at_once() -> None:
    climb, tried = _run(SearchConfig(over="rate", start=50, max=800), knee=10)
    assert tried == [50]
    assert climb.stopped is Stop.FIRST_FAILED and climb.passed is None and climb.failed == 50


def test_storm_sizes_are_whole_and_stop_when_adjacent() -> None:
    search = SearchConfig(over="storm_size", start=1, max=64, factor=2, precision=0.01)
    climb, tried = _run(search, knee=5)
    assert all(level == int(level) for level in tried)
    assert tried == [1, 2, 4, 8, 6, 5]
    assert climb.stopped is Stop.CONVERGED and (climb.passed, climb.failed) == (5, 6)


def test_a_gap_equal_to_the_precision_converges_despite_float_rounding() -> None:
    """Found by hypothesis: 1.1 - 1.0 is 0.10000000000000009 > 0.1, which bisected once more
    than max_levels announced."""
    search = SearchConfig(over="rate", start=1.0, max=1.1, factor=1.1, precision=0.1)
    climb, tried = _run(search, knee=1.0)
    assert tried == [1.0, 1.1] and len(tried) <= max_levels(search)
    assert climb.stopped is Stop.CONVERGED


def test_stop_ends_the_search() -> None:
    climb = Climb(SearchConfig(over="rate", start=10, max=100))
    assert climb.next_level() == 10
    climb.stop(Stop.SATURATED)
    assert climb.next_level() is None and climb.stopped is Stop.SATURATED


@given(
    start=st.floats(1, 1000),
    span=st.floats(1, 1000),
    factor=st.floats(1.1, 10),
    precision=st.floats(0.001, 0.5),
    knee_at=st.floats(0, 1.2),
    storm=st.booleans(),
)
def test_any_search_stays_within_its_announced_bound(
    start: float, span: float, factor: float, precision: float, knee_at: float, storm: bool
) -> None:
    if storm:
        start, span = float(round(start)), float(round(span)) or 1.0
    top = start * span
    over = "storm_size" if storm else "rate"
    search = SearchConfig(over=over, start=start, max=top, factor=factor, precision=precision)
    knee = start + knee_at * (top - start)
    climb, tried = _run(search, knee)
    assert len(tried) <= max_levels(search)
    assert all(start <= level <= top for level in tried)
    if climb.stopped is Stop.CONVERGED:
        assert climb.passed is not None and climb.failed is not None
        assert climb.passed <= knee < climb.failed
        slack = 0.001 / climb.passed if not storm else 0.0  # rates keep 3 decimals
        close = (climb.failed - climb.passed) / climb.passed <= precision * (1 + 1e-9) + slack
        assert close or (storm and climb.failed - climb.passed <= 1)
    else:
        assert climb.stopped in (Stop.MAX, Stop.FIRST_FAILED)


def test_worst_case_seconds_counts_every_level_at_its_longest() -> None:
    search = SearchConfig(over="rate", start=40, max=400, factor=2, step_duration=1, precision=0.1)
    load = LoadConfig(model="search", drain=2.0, search=search)
    assert max_levels(search) == 5 + 4  # 40..400 by 2 (capped), then 10 % from a factor of 2
    assert worst_case_seconds(load) == pytest.approx(9 * (1 + 2 + 1))
    storm = LoadConfig(
        model="search", open_deadline=5.0, drain=2.0, search=SearchConfig("storm_size", 10, 10)
    )
    assert worst_case_seconds(storm) == pytest.approx(max_levels(storm.search) * (5 + 2 + 1))


def test_step_scenarios_are_plain_arrival_or_storm_runs() -> None:
    rate = LoadConfig(
        model="search", drain=3.0, search=SearchConfig("rate", 10, 100, step_duration=2.5)
    )
    step = step_scenario(Scenario(name="s", source="s.toml", load=rate), 42.5).load
    assert (step.model, step.rate, step.duration, step.drain) == ("arrival", 42.5, 2.5, 3.0)
    assert step.search is None and step.concurrency is None
    storm = LoadConfig(model="search", rate=50.0, search=SearchConfig("storm_size", 10, 100))
    step = step_scenario(Scenario(name="s", source="s.toml", load=storm), 30.0).load
    assert (step.model, step.concurrency, step.rate, step.search) == ("storm", 30, 50.0, None)


def test_a_verdict_steers_the_climb_unless_interrupted_or_saturated() -> None:
    """Neither an interrupted level nor a saturated generator says anything about the target:
    both end the search whatever ``passed`` says; any other verdict is a pass or a fail."""
    search = SearchConfig(over="rate", start=50, max=800, factor=2, precision=0.05)
    climb = Climb(search)
    climb.judge(50, LevelVerdict(passed=True))
    assert (climb.passed, climb.next_level()) == (50, 100)
    climb.judge(100, LevelVerdict(passed=False))
    assert (climb.failed, climb.next_level()) == (100, 75)
    saturated = Climb(search)
    saturated.judge(50, LevelVerdict(passed=True, saturated=True))
    assert (saturated.stopped, saturated.passed) == (Stop.SATURATED, None)
    interrupted = Climb(search)
    interrupted.judge(50, LevelVerdict(passed=True, saturated=True, interrupted=True))
    assert (interrupted.stopped, interrupted.passed) == (Stop.INTERRUPTED, None)
