"""Segments: N disjoint, deterministic shares of one scenario (``--segment i/N``). No I/O.

Like k6's execution segments, but by connection rather than by fraction of time. Connection
``k`` (0-based, in the *global* schedule) gets the global ``CloseMix``'s behaviour for ``k``, its
global intended start and the global round-robin's source address; the connections are dealt
to the segments behaviour by behaviour (``owned_seqs``: each to the segment with the
fewest of its behaviour so far), and segment ``i`` of ``N`` runs its own (arrival and storm
models; the concurrency model runs them in its closed-loop slots ``j % N == i``). So every
segment gets every behaviour in its share (by ``k % N`` alone, a 50/50 mix, which alternates,
would give each of two segments one kind), and the union of all segments is exactly
the unsegmented plan: the same intended starts, the same close mix, the same source addresses,
whichever machine runs which share. Every segment starts its schedule at one agreed wall-clock
instant (``--start-at``), so a storm's segments can also agree on one release instant without
talking to each other (``shared_release_offset``).

Index ``i`` is 0-based so that a Kubernetes Indexed Job can pass ``JOB_COMPLETION_INDEX``
straight through.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from wsload.errors import UsageError
from wsload.plan.schedule import CloseMix, arrival_offsets
from wsload.scenario.model import CloseSpec, LoadConfig

__all__ = [
    "RELEASE_SETTLE",
    "WHOLE",
    "Segment",
    "SegmentMix",
    "format_segments",
    "owned_count",
    "owned_seqs",
    "parse_segment",
    "parse_segments",
    "planned_connections",
    "segment_offsets",
    "shared_release_offset",
]

RELEASE_SETTLE = 1.0
"""Seconds between the whole storm's last intended start and its segments' shared release:
room for that connection to connect, upgrade and run its session (docs/scale-out.md)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """Share ``index`` (0-based) of ``count`` equal shares of a scenario."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"segment {self.index}/{self.count}: need 0 <= i < N and N >= 1")

    @property
    def whole(self) -> bool:
        """True for ``0/1``: the unsegmented scenario."""
        return self.count == 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE = Segment(0, 1)


def parse_segment(text: str) -> Segment:
    """``"1/4"`` → ``Segment(1, 4)``.

    Raises:
        UsageError: not ``i/N`` with integers ``0 <= i < N``.
    """
    index, sep, count = text.strip().partition("/")
    try:
        if not sep:
            raise ValueError
        return Segment(int(index), int(count))
    except ValueError:
        raise UsageError(
            f"--segment: expected i/N with 0 <= i < N (e.g. 0/4 .. 3/4), got {text!r}"
        ) from None


def parse_segments(text: str) -> tuple[frozenset[int], int]:
    """``"0,2/4"`` (a merged result's ``generator.segment``) → ``({0, 2}, 4)``.

    Raises:
        ValueError: malformed.
    """
    indices, sep, count_text = text.partition("/")
    count = int(count_text)
    found = frozenset(int(part) for part in indices.split(",")) if sep else frozenset()
    if not found or count < 1 or any(not 0 <= i < count for i in found):
        raise ValueError(f"bad segment {text!r}")
    return found, count


def format_segments(indices: Iterable[int], count: int) -> str | None:
    """``generator.segment`` of a result holding ``indices`` of ``count``: None when whole."""
    found = sorted(set(indices))
    if found == list(range(count)):
        return None
    return ",".join(str(i) for i in found) + f"/{count}"


def owned_seqs(close: tuple[CloseSpec, ...], seed: int | None, segment: Segment) -> Iterator[int]:
    """The global 0-based sequence numbers of this segment's connections, in order, without
    end: the global close mix, walked whole, deals each connection to the segment that has
    the fewest of its behaviour so far (ties: the fewest connections in all, then the lowest
    index), so every segment's count of every behaviour is within one of the others' at every
    point, and its total within two. The whole scenario owns every connection."""
    if segment.whole:
        return itertools.count()
    return _dealt(CloseMix(close, seed), segment)


def _dealt(mix: CloseMix, segment: Segment) -> Iterator[int]:
    """``owned_seqs`` of one segment of several."""
    n = segment.count
    dealt: dict[str, list[int]] = {}
    totals = [0] * n
    for k in itertools.count():
        counts = dealt.setdefault(mix.next().label, [0] * n)
        fewest = min(counts)
        owner = min((i for i in range(n) if counts[i] == fewest), key=lambda i: (totals[i], i))
        counts[owner] += 1
        totals[owner] += 1
        if owner == segment.index:
            yield k


def owned_count(
    close: tuple[CloseSpec, ...], seed: int | None, segment: Segment, total: int
) -> int:
    """How many of the global connections ``0 .. total-1`` this segment owns."""
    if segment.whole:
        return max(total, 0)
    owned = owned_seqs(close, seed, segment)
    return sum(1 for _ in itertools.takewhile(lambda k: k < total, owned))


def segment_offsets(
    load: LoadConfig, segment: Segment, close: tuple[CloseSpec, ...], seed: int | None
) -> Iterator[tuple[int, float]]:
    """``(global k, intended offset s)`` of this segment's open-loop connections, in order.

    Arrival: the global arrival curve at this segment's connections; storm: ``concurrency``
    connections opened ``1/rate`` apart (all at once without a rate), the same way.
    """
    owned = owned_seqs(close, seed, segment)
    if load.model == "storm":
        interval = _storm_interval(load)
        for k in itertools.takewhile(lambda k: k < (load.concurrency or 0), owned):
            yield k, k * interval
        return
    mine = next(owned)
    for k, offset in enumerate(arrival_offsets(load)):
        if k == mine:
            yield k, offset
            mine = next(owned)


def _storm_interval(load: LoadConfig) -> float:
    """Seconds between two storm connections' intended starts (0: all at once)."""
    return 1.0 / load.rate if load.rate else 0.0


def shared_release_offset(load: LoadConfig, segment: Segment) -> float | None:
    """When the segments of a storm release it, in seconds after the common schedule start.

    Each segment computes the same instant from the scenario alone: the *whole* storm's last
    intended start plus :data:`RELEASE_SETTLE`, at the latest ``open_deadline`` (which bounds
    every hold). A segment releases at this instant, or later while its own connections are
    still opening (never past ``open_deadline``), and measures ``close_start_lag`` from it, so
    the merged metric spans the whole storm and a late segment shows its lateness.

    Returns:
        None for an unsegmented run or another model: one process releases its storm as soon
        as all its connections are open, and measures from that moment. (``--workers`` do the
        same together: their parent releases them once every share is open,
        ``wsload.runner.load.gate``; this instant is for segments that cannot talk.)
    """
    if load.model != "storm" or segment.whole:
        return None
    last = max(0, (load.concurrency or 0) - 1) * _storm_interval(load)
    return min(last + RELEASE_SETTLE, load.open_deadline)


class SegmentMix:
    """The global close mix, read only at this segment's sequence numbers.

    Walking the whole ``CloseMix`` keeps its prefix guarantee global: every segment gets
    exactly the behaviours the unsegmented run would give the same connections.
    """

    def __init__(self, specs: tuple[CloseSpec, ...], seed: int | None) -> None:
        self._mix = CloseMix(specs, seed)
        self._next_k = 0

    def at(self, k: int) -> CloseSpec:
        """The close behaviour of global connection ``k``; ``k`` must grow between calls."""
        if k < self._next_k:
            raise ValueError(f"connection {k} already passed (next is {self._next_k})")
        spec = self._mix.next()
        while self._next_k < k:
            self._next_k += 1
            spec = self._mix.next()
        self._next_k = k + 1
        return spec


def planned_connections(
    load: LoadConfig,
    close: tuple[CloseSpec, ...],
    seed: int | None,
    segment: Segment = WHOLE,
) -> list[tuple[int, float, str]]:
    """``(global k, intended offset, close label)`` of every open-loop connection planned.

    What ``run_load`` starts for the arrival and storm models (dropped ones included): the
    test of "the union of segments is the whole scenario" compares these lists.
    """
    mix = SegmentMix(close, seed)
    return [
        (k, offset, mix.at(k).label) for k, offset in segment_offsets(load, segment, close, seed)
    ]
