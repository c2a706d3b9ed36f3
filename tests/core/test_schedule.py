"""The pure schedule: arrival times follow the rate curve; the close mix tracks its weights."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsload.plan.schedule import CloseMix, arrival_offsets, concurrency_at, planned_end, rate_at
from wsload.scenario.model import CloseSpec, LoadConfig, Stage


def test_constant_rate_is_evenly_spaced() -> None:
    offsets = list(arrival_offsets(LoadConfig(rate=200, duration=5)))
    assert len(offsets) == 1000
    assert offsets[:3] == pytest.approx([0.0, 0.005, 0.010])
    assert offsets[-1] == pytest.approx(4.995)


def test_connections_cap_ends_the_schedule() -> None:
    assert list(arrival_offsets(LoadConfig(rate=100, connections=3))) == pytest.approx(
        [0.0, 0.01, 0.02]
    )


def test_linear_ramp_integrates_the_rate() -> None:
    load = LoadConfig(stages=(Stage(10, rate=500), Stage(20, rate=500)))
    offsets = list(arrival_offsets(load))
    # ramp 0 -> 500/s over 10 s: 2500 arrivals; then 20 s at 500/s: 10000.
    assert len(offsets) == 12500
    assert offsets[1] == pytest.approx(math.sqrt(2 / 50))  # 25 t^2 = 1
    assert all(b > a for a, b in itertools.pairwise(offsets))
    assert planned_end(load) == 30
    assert rate_at(load, 5) == pytest.approx(250)
    assert rate_at(load, 25) == pytest.approx(500)


def test_duration_beyond_stages_holds_the_last_rate() -> None:
    load = LoadConfig(rate=100, stages=(Stage(1, rate=0),), duration=3)
    offsets = list(arrival_offsets(load))
    assert len(offsets) == 50  # ramp 100 -> 0 over 1 s, then 0/s
    assert offsets[-1] < 1


def test_concurrency_ramps() -> None:
    load = LoadConfig(model="concurrency", concurrency=10, stages=(Stage(10, concurrency=20),))
    assert concurrency_at(load, 0) == 10
    assert concurrency_at(load, 5) == 15
    assert concurrency_at(load, 50) == 20


def _specs(weights: list[float]) -> tuple[CloseSpec, ...]:
    return tuple(CloseSpec(kind="clean", label=f"b{i}", weight=w) for i, w in enumerate(weights))


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.floats(0.5, 100), min_size=1, max_size=6),
    n=st.integers(1, 2000),
    seed=st.integers(0, 2**31),
)
def test_close_mix_counts_match_weights_within_one(weights: list[float], n: int, seed: int) -> None:
    mix = CloseMix(_specs(weights), seed)
    total = sum(weights)
    for _ in range(n):
        mix.next()
    for i, count in enumerate(mix.counts.values()):
        assert abs(count - n * weights[i] / total) < 1 + 1e-9


def test_close_mix_is_reproducible_with_a_seed() -> None:
    specs = _specs([80, 20])
    a, b = CloseMix(specs, 7), CloseMix(specs, 7)
    labels = [a.next().label for _ in range(100)]
    assert labels == [b.next().label for _ in range(100)]
    assert labels.count("b0") == 80
