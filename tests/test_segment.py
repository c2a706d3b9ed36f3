"""Segments: the union of all shares is exactly the unsegmented plan (pure, hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsload.errors import UsageError
from wsload.plan.segment import (
    WHOLE,
    Segment,
    SegmentMix,
    format_segments,
    parse_segment,
    parse_segments,
    planned_connections,
)
from wsload.scenario.model import CloseSpec, LoadConfig, Stage

pytestmark = pytest.mark.usefixtures("bounded_sync")

_KINDS = ("clean", "terminate", "close_no_wait", "await_server_close")


@st.composite
def _mixes(draw: st.DrawFn) -> tuple[CloseSpec, ...]:
    n = draw(st.integers(1, 4))
    weights = draw(st.lists(st.integers(1, 9), min_size=n, max_size=n))
    return tuple(
        CloseSpec(kind=_KINDS[i], label=f"b{i}", weight=float(w))  # type: ignore[arg-type]
        for i, w in enumerate(weights)
    )


@st.composite
def _loads(draw: st.DrawFn) -> LoadConfig:
    model = draw(st.sampled_from(["arrival", "storm"]))
    rate = float(draw(st.integers(1, 500)))
    if model == "storm":
        return LoadConfig(model="storm", concurrency=draw(st.integers(0, 300)), rate=rate)
    stages = tuple(
        Stage(duration=draw(st.sampled_from([0.5, 1.0, 2.0])), rate=float(r))
        for r in draw(st.lists(st.integers(0, 300), max_size=3))
    )
    connections = draw(st.one_of(st.none(), st.integers(0, 400)))
    duration = None if stages else draw(st.sampled_from([0.5, 1.0, 3.0]))
    return LoadConfig(
        model="arrival", rate=rate, stages=stages, connections=connections, duration=duration
    )


@settings(max_examples=80, deadline=None)
@given(load=_loads(), mix=_mixes(), seed=st.integers(0, 2**31), n=st.integers(1, 7))
def test_union_of_segments_is_the_whole_plan(
    load: LoadConfig, mix: tuple[CloseSpec, ...], seed: int, n: int
) -> None:
    whole = planned_connections(load, mix, seed)
    parts = [planned_connections(load, mix, seed, Segment(i, n)) for i in range(n)]
    union = sorted(item for part in parts for item in part)
    assert union == whole
    for i, part in enumerate(parts):  # disjoint and balanced: shares differ by at most one
        assert all(k % n == i for k, _, _ in part)
        assert Segment(i, n).share(len(whole)) == len(part)


def test_segment_mix_refuses_going_back() -> None:
    mix = SegmentMix((CloseSpec(kind="clean", label="clean"),), 1)
    assert mix.at(3).label == "clean"
    with pytest.raises(ValueError, match="already passed"):
        mix.at(2)


@pytest.mark.parametrize(
    ("text", "segment"), [("0/1", WHOLE), ("1/4", Segment(1, 4)), (" 3/4 ", Segment(3, 4))]
)
def test_parse_segment(text: str, segment: Segment) -> None:
    assert parse_segment(text) == segment
    assert str(segment) == text.strip()


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1", "a/b", "0/0", "1/2/3", ""])
def test_parse_segment_rejects_with_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--segment: expected i/N"):
        parse_segment(text)


def test_segment_sets_round_trip() -> None:
    assert format_segments([1, 0], 2) is None
    assert format_segments([2, 0], 4) == "0,2/4"
    assert parse_segments("0,2/4") == (frozenset({0, 2}), 4)
    assert parse_segments("1/4") == (frozenset({1}), 4)
    for bad in ("4/4", "x/2", "/2"):
        with pytest.raises(ValueError):
            parse_segments(bad)
