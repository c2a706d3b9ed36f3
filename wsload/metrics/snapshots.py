"""Interval snapshots: what happened in one interval, its wire form, merges by interval index.

Workers started at one agreed instant tick their intervals together, so interval ``i`` of every
worker covers the same second: the parent adds them (histograms bucket-wise, counters summed)
into one snapshot and writes one histograms.hlog, as a single process would; the live
``/metrics`` endpoint reads the same merged snapshots. Times on the wire are seconds since the
worker's schedule start (each process has its own run clock).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hdrh.histogram import HdrHistogram

from wsload.metrics.histograms import decode, encode, histogram_stats, new_histogram

__all__ = [
    "IntervalMerger",
    "IntervalSnapshot",
    "merge_snapshots",
    "snapshot_from_wire",
    "snapshot_to_wire",
]


@dataclass(frozen=True, slots=True)
class IntervalSnapshot:
    """What happened between two ``take_interval`` calls (the time series' unit).

    The histograms hold only this interval's samples and are handed over by the collector,
    which keeps no reference to them: treat them as read-only (``histograms[m]`` may be the
    same object as ``by_label[label][m]`` when only one behaviour had samples). Metrics
    without a sample in the interval are absent.

    Attributes:
        index: 0-based interval number.
        start / end: run-clock seconds (``trio.current_time()``).
        in_flight: connections open at ``end`` (gauge supplied by the runner).
        attempted / opened / dropped: connections finished / upgraded / dropped in it.
        outcomes: outcome name → count of connections that finished in it.
        histograms: metric → all behaviours' samples of the interval.
        by_label: behaviour label → metric → that behaviour's samples of the interval.
        overflow: metric → samples over 1 h in the interval.
        counters: behaviour label → flat counter → how much it grew in the interval: every
            field of ``Counts``, an integer one by its name (``opened``), a keyed one as
            ``name.key`` (``outcomes.clean``, ``codes_sent.1000``); behaviours and counters
            that did not change are absent.
        loop_lag: the generator's event-loop lag samples of the interval (µs; None when the
            snapshot was not taken by a runner).
        saturated: the generator counted as saturated at the end of the interval (over the
            whole run so far, as ``generator.saturated`` in summary.json).
    """

    index: int
    start: float
    end: float
    in_flight: int
    attempted: int
    opened: int
    dropped: int
    outcomes: Mapping[str, int]
    histograms: Mapping[str, HdrHistogram]
    by_label: Mapping[str, Mapping[str, HdrHistogram]]
    overflow: Mapping[str, int]
    counters: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    loop_lag: HdrHistogram | None = None
    saturated: bool = False

    @property
    def length(self) -> float:
        """Seconds the interval covers."""
        return self.end - self.start

    @property
    def rate(self) -> float:
        """Connections finished per second in the interval (0.0 for an empty interval)."""
        return self.attempted / self.length if self.length > 0 else 0.0

    def stats(self, metric: str, label: str | None = None) -> dict[str, Any]:
        """``histogram_stats`` of one metric in this interval (all ``None`` without samples)."""
        source = self.histograms if label is None else self.by_label.get(label, {})
        histogram = source.get(metric)
        overflow = self.overflow.get(metric, 0) if label is None else 0
        if histogram is None:
            return histogram_stats(new_histogram(), overflow)
        return histogram_stats(histogram, overflow)


def snapshot_to_wire(snapshot: IntervalSnapshot, origin: float = 0.0) -> dict[str, Any]:
    """A JSON-able copy of ``snapshot`` with times relative to ``origin``.

    Each histogram is encoded once: with one behaviour the totals are that behaviour's own
    histograms (``Collector.take_interval``), and encoding is most of a worker's once-a-second
    turn that sends its snapshot."""
    encoded: dict[int, str] = {}

    def encode_once(histogram: HdrHistogram) -> str:
        text = encoded.get(id(histogram))
        if text is None:
            text = encoded[id(histogram)] = encode(histogram)
        return text

    return {
        "index": snapshot.index,
        "start": snapshot.start - origin,
        "end": snapshot.end - origin,
        "in_flight": snapshot.in_flight,
        "attempted": snapshot.attempted,
        "opened": snapshot.opened,
        "dropped": snapshot.dropped,
        "outcomes": dict(snapshot.outcomes),
        "histograms": {m: encode_once(h) for m, h in snapshot.histograms.items()},
        "by_label": {
            label: {m: encode_once(h) for m, h in metrics.items()}
            for label, metrics in snapshot.by_label.items()
        },
        "overflow": dict(snapshot.overflow),
        "counters": {label: dict(c) for label, c in snapshot.counters.items()},
        "loop_lag": None if snapshot.loop_lag is None else encode(snapshot.loop_lag),
        "saturated": snapshot.saturated,
    }


def snapshot_from_wire(data: Mapping[str, Any]) -> IntervalSnapshot:
    """The inverse of ``snapshot_to_wire``. ``counters``, ``loop_lag`` and ``saturated`` may be
    absent (a snapshot from a wsload that did not send them yet).

    Raises:
        ValueError: a field is missing or malformed.
    """
    try:
        return IntervalSnapshot(
            index=int(data["index"]),
            start=float(data["start"]),
            end=float(data["end"]),
            in_flight=int(data["in_flight"]),
            attempted=int(data["attempted"]),
            opened=int(data["opened"]),
            dropped=int(data["dropped"]),
            outcomes={str(k): int(n) for k, n in data["outcomes"].items()},
            histograms={str(m): decode(t) for m, t in data["histograms"].items()},
            by_label={
                str(label): {str(m): decode(t) for m, t in metrics.items()}
                for label, metrics in data["by_label"].items()
            },
            overflow={str(k): int(n) for k, n in data["overflow"].items()},
            counters={
                str(label): {str(k): int(n) for k, n in counters.items()}
                for label, counters in data.get("counters", {}).items()
            },
            loop_lag=None if data.get("loop_lag") is None else decode(data["loop_lag"]),
            saturated=bool(data.get("saturated", False)),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed interval snapshot: {exc!r}") from None


def _add(target: dict[str, HdrHistogram], source: Mapping[str, HdrHistogram]) -> None:
    for metric, histogram in source.items():
        mine = target.get(metric)
        if mine is None:
            mine = target[metric] = new_histogram()
        mine.add(histogram)


def _sum(target: dict[str, int], source: Mapping[str, int]) -> None:
    for key, n in source.items():
        target[key] = target.get(key, 0) + n


def merge_snapshots(snapshots: Iterable[IntervalSnapshot]) -> IntervalSnapshot:
    """One snapshot holding every sample and count of ``snapshots`` (the same interval of
    several workers): it spans from the earliest start to the latest end.

    Raises:
        ValueError: no snapshots.
    """
    parts = list(snapshots)
    if not parts:
        raise ValueError("no snapshots to merge")
    histograms: dict[str, HdrHistogram] = {}
    by_label: dict[str, dict[str, HdrHistogram]] = {}
    outcomes: dict[str, int] = {}
    overflow: dict[str, int] = {}
    counters: dict[str, dict[str, int]] = {}
    lags = [part.loop_lag for part in parts if part.loop_lag is not None]
    for part in parts:
        _add(histograms, part.histograms)
        for label, metrics in part.by_label.items():
            _add(by_label.setdefault(label, {}), metrics)
        _sum(outcomes, part.outcomes)
        _sum(overflow, part.overflow)
        for label, counts in part.counters.items():
            _sum(counters.setdefault(label, {}), counts)
    loop_lag = None
    if lags:
        loop_lag = new_histogram()
        for lag in lags:
            loop_lag.add(lag)
    return IntervalSnapshot(
        index=parts[0].index,
        start=min(p.start for p in parts),
        end=max(p.end for p in parts),
        in_flight=sum(p.in_flight for p in parts),
        attempted=sum(p.attempted for p in parts),
        opened=sum(p.opened for p in parts),
        dropped=sum(p.dropped for p in parts),
        outcomes=outcomes,
        histograms=histograms,
        by_label=by_label,
        overflow=overflow,
        counters=counters,
        loop_lag=loop_lag,
        saturated=any(p.saturated for p in parts),
    )


class IntervalMerger:
    """Collects the workers' snapshots and releases interval ``i`` once every live worker
    sent its ``i`` (or died, or finished), in index order.

    Args:
        workers: how many workers send snapshots (identified 0 .. workers-1).
    """

    def __init__(self, workers: int) -> None:
        self._live = set(range(workers))
        self._pending: dict[int, dict[int, IntervalSnapshot]] = {}
        self._next = 0
        self._saturated: dict[int, bool] = {}  # worker -> its latest snapshot's flag

    def add(self, worker: int, snapshot: IntervalSnapshot) -> list[IntervalSnapshot]:
        """Take one worker's snapshot; return the merged intervals now complete."""
        self._pending.setdefault(snapshot.index, {})[worker] = snapshot
        self._saturated[worker] = snapshot.saturated
        return self._release()

    def done(self, worker: int) -> list[IntervalSnapshot]:
        """A worker ended (finished or died): stop waiting for it."""
        self._live.discard(worker)
        return self._release()

    def finish(self) -> list[IntervalSnapshot]:
        """Every interval still held, merged, in index order (the end of the run)."""
        out = [self._merge(self._pending[i]) for i in sorted(self._pending)]
        self._pending.clear()
        return out

    def _merge(self, parts: dict[int, IntervalSnapshot]) -> IntervalSnapshot:
        """The interval's parts merged; ``saturated`` also counts the workers that sent no part
        (they ended earlier) by their last flag: saturation is over the whole run so far, and
        summary.json's is any segment's final one, so the last interval says the same."""
        merged = merge_snapshots(parts.values())
        if merged.saturated or not any(
            flag for worker, flag in self._saturated.items() if worker not in parts
        ):
            return merged
        return replace(merged, saturated=True)

    def _release(self) -> list[IntervalSnapshot]:
        out = []
        while self._next in self._pending and self._live <= set(self._pending[self._next]):
            out.append(self._merge(self._pending.pop(self._next)))
            self._next += 1
        if not self._live:
            out.extend(self.finish())
        return out
