"""The schedule: when connection #k starts and which close behaviour it gets. No I/O.

Open-loop arrivals follow the rate curve exactly (constant ``rate``, then linear ramps through
``stages``), so latencies can be measured from the *intended* start: a slow target then shows up
as latency instead of silently slowing the load (no coordinated omission).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from wsload.scenario.model import CloseSpec, LoadConfig

__all__ = ["CloseMix", "RatePiece", "arrival_offsets", "concurrency_at", "planned_end", "rate_at"]


@dataclass(frozen=True, slots=True)
class RatePiece:
    """The rate moves linearly from ``start_rate`` to ``end_rate`` during [t0, t0 + duration)."""

    t0: float
    duration: float
    start_rate: float
    end_rate: float

    def count(self, dt: float) -> float:
        """Arrivals expected during the first ``dt`` seconds of this piece."""
        slope = (self.end_rate - self.start_rate) / self.duration if self.duration else 0.0
        return self.start_rate * dt + slope * dt * dt / 2

    def time_of(self, n: float) -> float:
        """Offset within the piece at which ``n`` arrivals have accumulated (inverse of count)."""
        r0 = self.start_rate
        slope = (self.end_rate - r0) / self.duration if self.duration else 0.0
        if abs(slope) < 1e-12:
            return n / r0 if r0 > 0 else math.inf
        disc = r0 * r0 + 2 * slope * n
        if disc < 0:
            return math.inf
        return (-r0 + math.sqrt(disc)) / slope


def planned_end(load: LoadConfig) -> float | None:
    """Seconds after start at which scheduling stops (None: only ``connections`` ends it)."""
    if load.duration is not None:
        return load.duration
    if load.stages:
        return sum(stage.duration for stage in load.stages)
    return None


def _pieces(load: LoadConfig) -> list[RatePiece]:
    """The arrival rate curve; after the last stage its rate holds."""
    pieces: list[RatePiece] = []
    rate = load.rate if load.rate is not None else 0.0
    t = 0.0
    for stage in load.stages:
        target = stage.rate if stage.rate is not None else rate
        pieces.append(RatePiece(t, stage.duration, rate, target))
        t += stage.duration
        rate = target
    pieces.append(RatePiece(t, math.inf, rate, rate))
    return pieces


def rate_at(load: LoadConfig, t: float) -> float:
    """The intended arrival rate (connections/s) ``t`` seconds after start."""
    for piece in _pieces(load):
        if t < piece.t0 + piece.duration:
            if math.isinf(piece.duration):
                return piece.start_rate
            frac = (t - piece.t0) / piece.duration
            return piece.start_rate + (piece.end_rate - piece.start_rate) * frac
    return 0.0


def arrival_offsets(load: LoadConfig) -> Iterator[float]:
    """Intended start offsets (seconds from run start) of each connection, in order.

    The k-th connection (0-based) starts when the integral of the rate curve reaches k, so a
    constant 200/s gives 0, 5 ms, 10 ms, ... Bounded by ``duration``/stages and ``connections``.
    """
    end = planned_end(load)
    limit = load.connections
    k = 0
    done = 0.0  # arrivals accumulated before the current piece
    for piece in _pieces(load):
        piece_total = piece.count(piece.duration) if not math.isinf(piece.duration) else math.inf
        while limit is None or k < limit:
            offset = piece.t0 + piece.time_of(k - done)
            if offset >= piece.t0 + piece.duration or math.isinf(offset):
                break
            if end is not None and offset >= end:
                return
            yield offset
            k += 1
        if limit is not None and k >= limit:
            return
        done += piece_total
        if end is not None and piece.t0 + piece.duration >= end:
            return


def concurrency_at(load: LoadConfig, t: float) -> int:
    """Closed-loop slots wanted ``t`` seconds after start (linear ramps through stages)."""
    level = float(load.concurrency or 0)
    t0 = 0.0
    for stage in load.stages:
        target = float(stage.concurrency if stage.concurrency is not None else level)
        if t < t0 + stage.duration:
            return round(level + (target - level) * (t - t0) / stage.duration)
        level = target
        t0 += stage.duration
    return round(level)


class CloseMix:
    """Assigns close behaviours so that counts track the weights within ±1 at every prefix.

    This is Balinski and Young's *quota method* of apportionment, applied one connection at a
    time: the next connection goes to the behaviour with the largest ``share / (count + 1)``
    among those still under their upper quota ``ceil(n * share)``. It provably keeps every count
    between ``floor`` and ``ceil`` of its ideal ``n * share``, for every prefix n. The seed only
    breaks ties, so a seeded run is exactly reproducible.
    """

    def __init__(self, specs: tuple[CloseSpec, ...], seed: int | None = None) -> None:
        if not specs:
            raise ValueError("empty close mix")
        total = sum(spec.weight for spec in specs)
        self.specs = specs
        self._shares = [spec.weight / total for spec in specs]
        order = list(range(len(specs)))
        random.Random(seed).shuffle(order)
        self._priority = {index: rank for rank, index in enumerate(order)}
        self._counts = [0] * len(specs)
        self._picked = 0

    def next(self) -> CloseSpec:
        """The close behaviour of the next connection."""
        n = self._picked + 1
        shares, counts = self._shares, self._counts
        if len(shares) == 1:  # one behaviour (the common case): no apportionment to do
            counts[0] += 1
            self._picked = n
            return self.specs[0]
        indices = range(len(shares))
        eligible = [i for i in indices if counts[i] < math.ceil(n * shares[i] - 1e-9)]
        best = max(
            eligible or indices,
            key=lambda i: (shares[i] / (counts[i] + 1), -self._priority[i]),
        )
        counts[best] += 1
        self._picked = n
        return self.specs[best]

    @property
    def counts(self) -> dict[str, int]:
        """How many connections each label got so far."""
        return {spec.label: c for spec, c in zip(self.specs, self._counts, strict=True)}
