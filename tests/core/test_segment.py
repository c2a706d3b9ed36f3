"""Segments: the union of all shares is exactly the unsegmented plan, and a storm's segments
agree on one release instant (pure, hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsload.errors import UsageError
from wsload.plan.segment import (
    RELEASE_SETTLE,
    WHOLE,
    Segment,
    SegmentMix,
    format_segments,
    owned_count,
    parse_segment,
    parse_segments,
    planned_connections,
    segment_offsets,
    shared_release_offset,
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
    for i, part in enumerate(parts):
        assert owned_count(mix, seed, Segment(i, n), len(whole)) == len(part)
    # every prefix of the plan: each behaviour within one between segments, totals within two
    owner = {k: i for i, part in enumerate(parts) for k, _, _ in part}
    dealt: dict[str, list[int]] = {spec.label: [0] * n for spec in mix}
    for k, _, label in whole:
        dealt[label][owner[k]] += 1
        assert max(dealt[label]) - min(dealt[label]) <= 1
        totals = [sum(counts[i] for counts in dealt.values()) for i in range(n)]
        assert max(totals) - min(totals) <= 2


def test_every_segment_of_a_half_and_half_storm_gets_both_kinds() -> None:
    """A 50/50 mix alternates by connection: shared out by ``k % 2``, each of two segments
    would get one kind. Each gets half of each instead, still in the global order."""
    mix = (
        CloseSpec(kind="clean", label="clean", weight=50.0),  # type: ignore[arg-type]
        CloseSpec(kind="terminate", label="terminate", weight=50.0),  # type: ignore[arg-type]
    )
    storm = LoadConfig(model="storm", concurrency=10_000, rate=1000.0)
    whole = planned_connections(storm, mix, 1)
    assert [label for _, _, label in whole[:4]] in (
        ["clean", "terminate"] * 2,
        ["terminate", "clean"] * 2,
    )
    for i in range(2):
        part = planned_connections(storm, mix, 1, Segment(i, 2))
        counts = {
            label: sum(1 for *_, got in part if got == label) for label in ("clean", "terminate")
        }
        assert counts == {"clean": 2500, "terminate": 2500}
        assert [k for k, _, _ in part] == sorted(k for k, _, _ in part)


@settings(max_examples=60, deadline=None)
@given(
    concurrency=st.integers(1, 300),
    rate=st.one_of(st.none(), st.integers(1, 500).map(float)),
    deadline=st.sampled_from([0.5, 2.0, 30.0]),
    n=st.integers(2, 7),
)
def test_every_segment_of_a_storm_computes_the_same_release_instant(
    concurrency: int, rate: float | None, deadline: float, n: int
) -> None:
    load = LoadConfig(model="storm", concurrency=concurrency, rate=rate, open_deadline=deadline)
    offsets = {shared_release_offset(load, Segment(i, n)) for i in range(n)}
    assert len(offsets) == 1  # no segment needs to ask the others
    mix = (CloseSpec(kind="clean", label="clean"),)  # type: ignore[arg-type]
    last = max(
        offset for i in range(n) for _, offset in segment_offsets(load, Segment(i, n), mix, 1)
    )
    assert offsets.pop() == pytest.approx(min(last + RELEASE_SETTLE, deadline))


def test_shared_release_offset_examples() -> None:
    storm = LoadConfig(model="storm", concurrency=200, rate=500.0)
    # the whole storm's last start (199 / 500 s), not the segment's, plus the settle margin
    assert shared_release_offset(storm, Segment(0, 2)) == pytest.approx(0.398 + RELEASE_SETTLE)
    at_once = LoadConfig(model="storm", concurrency=200)
    assert shared_release_offset(at_once, Segment(3, 4)) == RELEASE_SETTLE
    slow = LoadConfig(model="storm", concurrency=100, rate=10.0, open_deadline=5.0)
    assert shared_release_offset(slow, Segment(1, 2)) == 5.0  # open_deadline bounds every hold
    assert shared_release_offset(storm, WHOLE) is None  # one process releases when all are open
    assert shared_release_offset(LoadConfig(model="arrival", rate=5.0), Segment(0, 2)) is None


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
