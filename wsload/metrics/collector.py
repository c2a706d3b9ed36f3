"""The aggregator: connection records in, HDR histograms and counters out, exactly mergeable.

One ``Collector.add(record)`` per finished connection is the hot path (thousands per second on
the runner's event loop), so it does the least that keeps every number exact: each latency
sample (``wsload.metrics.samples``) is recorded once, into its behaviour's *pending*
(current-interval) histogram. ``take_interval()`` (once a second) folds the pending histograms
into the cumulative ones and hands them, untouched, to the interval snapshot
(``wsload.metrics.snapshots``); totals across behaviours are sums computed when somebody reads
them. A histogram is allocated only when a metric gets its first sample in an interval,
because an empty one is ~190 kB of counters. The counters are ``wsload.metrics.counts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import trio
from hdrh.histogram import HdrHistogram

from wsload.core.browser import browser_close_event
from wsload.core.record import ConnectionRecord
from wsload.metrics.counts import MAX_REASONS, MESSAGE_COUNTERS, Counts, message_counts
from wsload.metrics.failures import EXPECTED_OUTCOMES, ErrorTally, folded
from wsload.metrics.histograms import (
    HIGHEST_US,
    Recorder,
    decode,
    empty_stats,
    encode,
    histogram_stats,
    new_histogram,
    seconds_to_us,
)
from wsload.metrics.samples import CENSORING, censored_samples, metric_samples
from wsload.metrics.snapshots import IntervalSnapshot
from wsload.metrics.wire import count
from wsload.scenario.model import METRICS, STEP_PREFIX, is_metric

__all__ = ["WIRE_VERSION", "Collector"]

WIRE_VERSION = 1
"""Version of ``Collector.to_wire()``'s form; ``from_wire`` refuses any other."""

_WIRE_FORMAT = "wsload.collector"


def _bump(counter: dict[Any, int], key: Any, n: int = 1) -> None:
    counter[key] = counter.get(key, 0) + n


class _Label(Counts):
    """Everything one behaviour label accumulated (mutable, private to the collector): its
    counters (``Counts``, updated in place), why its non-expected endings happened, and its
    histograms."""

    __slots__ = ("bounds", "cumulative", "errors", "kind", "pending", "reported")

    def __init__(self, kind: str) -> None:
        Counts.__init__(self)  # not super(): mypyc leaves the dataclass's fields unset then
        self.kind = kind
        self.errors = ErrorTally()  # why non-expected endings happened (metrics/failures.py)
        self.cumulative: dict[str, HdrHistogram] = {}  # folded at each take_interval
        self.pending: dict[str, Recorder] = {}  # the current interval only
        self.reported: dict[str, int] = {}  # flat counters already in an interval snapshot
        self.bounds: dict[str, dict[str, list[int]]] = {}  # censored: metric → why → [n, min µs]

    def censor(self, metric: str, reason: str, us: int) -> None:
        """Count one censored measurement of ``metric`` known to be longer than ``us``."""
        _bump(self.censored, metric)
        entry = self.bounds.setdefault(metric, {}).get(reason)
        if entry is None:
            self.bounds[metric][reason] = [1, us]
        else:
            entry[0] += 1
            entry[1] = min(entry[1], us)

    def merge_bounds(self, bounds: Mapping[str, Mapping[str, list[int]]]) -> None:
        for metric, reasons in bounds.items():
            for reason, (n, us) in reasons.items():
                mine = self.bounds.setdefault(metric, {}).setdefault(reason, [0, us])
                mine[0] += n
                mine[1] = min(mine[1], us)

    def parts(self, metric: str) -> list[HdrHistogram]:
        parts = []
        cumulative, pending = self.cumulative.get(metric), self.pending.get(metric)
        if cumulative is not None:
            parts.append(cumulative)
        if pending is not None:
            parts.append(pending.histogram())
        return parts

    def take_counters(self) -> dict[str, int]:
        """The flat counters that changed since the previous call, by how much."""
        now = self.flat()
        before = self.reported
        self.reported = now
        return {key: n - before.get(key, 0) for key, n in now.items() if n != before.get(key, 0)}

    def merge(self, other: _Label) -> None:
        self.add(other)
        self.merge_bounds(other.bounds)
        self.errors.merge(other.errors)


def _sum(parts: list[HdrHistogram]) -> HdrHistogram:
    """A new histogram holding the exact sum of ``parts`` (HdrHistogram add: bucket-wise)."""
    out = new_histogram()
    for part in parts:
        out.add(part)
    return out


class Collector:
    """HDR histograms per metric and behaviour, counters, interval snapshots, exact merges.

    Args:
        labels: behaviour labels to report even if no connection gets them (the close mix).
        start: run-clock time the first interval starts at; default: now on Trio's clock when
            constructed inside ``trio.run``, else the first ``take_interval``'s ``now``.
    """

    def __init__(self, labels: Iterable[str] = (), *, start: float | None = None) -> None:
        self._labels: dict[str, _Label] = {label: _Label("") for label in labels}
        self.dropped = 0
        self.release_at: float | None = None
        """A storm's release instant (run clock), set by the runner: ``close_start_lag``."""
        self.lag_from: float | None = None
        """A segmented storm's shared release instant (run clock): ``close_start_lag`` counts
        from it instead of ``release_at`` (``wsload.plan.segment.shared_release_offset``)."""
        if start is None:
            try:
                start = trio.current_time()
            except RuntimeError:  # not inside trio.run: tests, offline merges
                start = None
        self._interval_start = start
        self._interval_index = 0
        self._iv_attempted = 0
        self._iv_opened = 0
        self._iv_dropped = 0
        self._iv_outcomes: dict[str, int] = {}
        self._iv_overflow: dict[str, int] = {}

    # -- the hot path -------------------------------------------------------------------------

    def add(self, record: ConnectionRecord) -> None:
        """Count one finished connection and record its latency samples."""
        entry = self._labels.get(record.label)
        if entry is None:
            entry = self._labels[record.label] = _Label(record.kind)
        elif not entry.kind:
            entry.kind = record.kind
        entry.attempted += 1
        self._iv_attempted += 1
        outcome = str(record.outcome)
        _bump(entry.outcomes, outcome)
        _bump(self._iv_outcomes, outcome)
        if record.upgraded is not None:
            entry.opened += 1
            self._iv_opened += 1
        if record.code_sent is not None:
            _bump(entry.codes_sent, record.code_sent)
        if record.code_received is not None:
            _bump(entry.codes_received, record.code_received)
        elif record.close_received is not None:
            _bump(entry.codes_received, 1005)
        if record.http_status is not None:
            _bump(entry.http_statuses, record.http_status)
        event = browser_close_event(record)
        _bump(entry.close_events, (event.code, event.was_clean))
        for name in record.extensions:
            _bump(entry.extensions, name)
        if record.subprotocol is not None:
            _bump(entry.subprotocols, record.subprotocol)
        if record.close_received is not None:
            code = 1005 if record.code_received is None else record.code_received
            reasons = entry.close_reasons
            reason = record.reason_received
            key = f"{code} {folded(reason) if reason else ''}"
            if key not in reasons and len(reasons) >= MAX_REASONS:
                key = f"{code} other"
            _bump(reasons, key)
        if record.messages_sent or record.messages_received:
            messages = entry.messages
            values = message_counts(record)
            for i, name in enumerate(MESSAGE_COUNTERS):
                messages[name] += values[i]
        if record.outcome is not EXPECTED_OUTCOMES.get(record.kind):
            entry.errors.add(outcome, record.detail, record.seq)
        reason = CENSORING.get(record.outcome)
        if reason is not None:
            for metric, seconds in censored_samples(record):
                entry.censor(metric, reason, seconds_to_us(seconds))
        pending = entry.pending
        for metric, seconds in metric_samples(record, self.release_at, self.lag_from):
            us = seconds_to_us(seconds)
            if us < 0:
                continue  # a clock step would be a bug upstream; never a negative latency
            if us > HIGHEST_US:
                _bump(entry.overflow, metric)
                _bump(self._iv_overflow, metric)
                continue
            recorder = pending.get(metric)
            if recorder is None:
                recorder = pending[metric] = Recorder()
            recorder.record(us)

    def add_dropped(self, n: int = 1) -> None:
        """Count open-loop connections dropped at ``max_in_flight`` (never attempted)."""
        if n < 0:
            raise ValueError(f"dropped count must be >= 0, got {n}")
        self.dropped += n
        self._iv_dropped += n

    # -- intervals ----------------------------------------------------------------------------

    def start_intervals(self, start: float) -> None:
        """Begin the first interval at ``start``, the load's schedule start.

        What happens between the collector's creation and the load's start (the target's
        start-up, the full collection ``runner.load.heap.load_heap`` makes before freezing the heap:
        20-30 ms in a run, 200+ ms in a long test process) belongs to no interval; counted in
        the first one it made it look 1.24 s long at 1 s intervals. No-op once an interval
        was taken.
        """
        if self._interval_index == 0:
            self._interval_start = start

    def take_interval(
        self,
        in_flight: int = 0,
        now: float | None = None,
        *,
        loop_lag: HdrHistogram | None = None,
        saturated: bool = False,
    ) -> IntervalSnapshot:
        """Close the current interval: return its snapshot and start the next one.

        Args:
            in_flight: connections open right now (the runner knows, the collector does not).
            now: run-clock time; default ``trio.current_time()``.
            loop_lag, saturated: the generator's own health, passed through by the runner.
        """
        if now is None:
            now = trio.current_time()
        start = self._interval_start if self._interval_start is not None else now
        by_label: dict[str, dict[str, HdrHistogram]] = {}
        per_metric: dict[str, list[HdrHistogram]] = {}
        counters: dict[str, dict[str, int]] = {}
        for label, entry in self._labels.items():
            changed = entry.take_counters()
            if changed:
                counters[label] = changed
            if not entry.pending:
                continue
            taken = by_label[label] = {}
            for metric, recorder in entry.pending.items():
                histogram = taken[metric] = recorder.histogram()
                cumulative = entry.cumulative.get(metric)
                if cumulative is None:
                    cumulative = entry.cumulative[metric] = new_histogram()
                cumulative.add(histogram)
                per_metric.setdefault(metric, []).append(histogram)
            entry.pending = {}
        totals = {
            metric: parts[0] if len(parts) == 1 else _sum(parts)
            for metric, parts in sorted(per_metric.items(), key=lambda kv: _metric_order(kv[0]))
        }
        snapshot = IntervalSnapshot(
            index=self._interval_index,
            start=start,
            end=now,
            in_flight=in_flight,
            attempted=self._iv_attempted,
            opened=self._iv_opened,
            dropped=self._iv_dropped,
            outcomes=self._iv_outcomes,
            histograms=totals,
            by_label=by_label,
            overflow=self._iv_overflow,
            counters=counters,
            loop_lag=loop_lag,
            saturated=saturated,
        )
        self._interval_index += 1
        self._interval_start = now
        self._iv_attempted = self._iv_opened = self._iv_dropped = 0
        self._iv_outcomes = {}
        self._iv_overflow = {}
        return snapshot

    # -- reading (cumulative: everything since construction, merges included) ----------------

    @property
    def labels(self) -> tuple[str, ...]:
        """Behaviour labels in first-seen order (pre-declared ones first)."""
        return tuple(self._labels)

    def kind(self, label: str) -> str:
        """The close kind of ``label`` ("" when no record with that label arrived yet)."""
        return self._labels[label].kind

    @property
    def step_metrics(self) -> tuple[str, ...]:
        """The ``step.<name>`` metrics with samples, sorted by name."""
        names = {
            metric
            for entry in self._labels.values()
            for metric in (*entry.cumulative, *entry.pending)
            if metric.startswith(STEP_PREFIX)
        }
        return tuple(sorted(names))

    @property
    def attempted(self) -> int:
        return sum(entry.attempted for entry in self._labels.values())

    @property
    def opened(self) -> int:
        return sum(entry.opened for entry in self._labels.values())

    def counts(self, label: str | None = None) -> Counts:
        """Counters of one behaviour, or of all of them (``label=None``).

        Raises:
            KeyError: no such label.
        """
        if label is not None:
            return self._labels[label].copy()
        total = Counts()
        for entry in self._labels.values():
            total.add(entry)
        return total

    def errors(self, label: str | None = None) -> ErrorTally:
        """Grouped details of non-expected endings, of one behaviour or of all (a copy).

        Raises:
            KeyError: no such label.
        """
        entries = self._entries(label)
        out = ErrorTally()
        for entry in entries:
            out.merge(entry.errors)
        return out

    def histogram(self, metric: str, label: str | None = None) -> HdrHistogram:
        """A new histogram with every sample of ``metric`` (one behaviour or all).

        Raises:
            KeyError: unknown metric or label.
        """
        if not is_metric(metric):
            raise KeyError(f"unknown metric {metric!r}")
        entries = self._entries(label)
        return _sum([part for entry in entries for part in entry.parts(metric)])

    def overflow(self, metric: str, label: str | None = None) -> int:
        """Samples of ``metric`` above 1 h (counted, not in the histogram)."""
        entries = self._entries(label)
        return sum(entry.overflow.get(metric, 0) for entry in entries)

    def stats(
        self, metric: str, label: str | None = None, extra: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """``count, started, censored, min, mean, p50, p90, p95, p99, p999, p99.99, max,
        overflow`` (and the ``extra`` percentile keys) of a
        metric in µs, the censored percentiles flagged (``histogram_stats``), and
        ``censored_after_us`` / ``censored_by``: the smallest known lower bound of a censored
        measurement and the censored ones by why (``timeout``, ``reset``, ...)."""
        if not is_metric(metric):
            raise KeyError(f"unknown metric {metric!r}")
        entries = self._entries(label)
        parts = [part for entry in entries for part in entry.parts(metric)]
        overflow = self.overflow(metric, label)
        censored = sum(entry.censored.get(metric, 0) for entry in entries)
        if not parts:
            out = empty_stats(overflow, censored, extra)
        else:
            merged = parts[0] if len(parts) == 1 else _sum(parts)
            out = histogram_stats(merged, overflow, censored, extra)
        by: dict[str, int] = {}
        after: int | None = None
        for entry in entries:
            for reason, (n, us) in entry.bounds.get(metric, {}).items():
                by[reason] = by.get(reason, 0) + n
                after = us if after is None else min(after, us)
        out["censored_after_us"] = after
        out["censored_by"] = dict(sorted(by.items(), key=lambda kv: (-kv[1], kv[0])))
        return out

    def _entries(self, label: str | None) -> list[_Label]:
        """Every behaviour's entry, or one's (KeyError: no such label)."""
        return list(self._labels.values()) if label is None else [self._labels[label]]

    # -- combining ----------------------------------------------------------------------------

    def merge(self, other: Collector) -> None:
        """Add everything ``other`` holds into this collector, exactly.

        Histograms add bucket by bucket and counters sum, so merging the collectors of N
        workers gives the same counts and percentiles as one collector fed every record.
        Merged samples go into the cumulative view, not into the current interval.

        Raises:
            ValueError: a label is recorded under two different close kinds, or ``other`` is
                this collector (nothing is changed then).
        """
        if other is self:
            raise ValueError("cannot merge a collector into itself")
        for label, theirs in other._labels.items():
            mine = self._labels.get(label)
            if mine is not None and mine.kind and theirs.kind and mine.kind != theirs.kind:
                raise ValueError(
                    f"label {label!r} is {mine.kind!r} here and {theirs.kind!r} in the other "
                    "collector: they ran different scenarios"
                )
        for label, theirs in other._labels.items():
            mine = self._labels.get(label)
            if mine is None:
                mine = self._labels[label] = _Label(theirs.kind)
            elif not mine.kind:
                mine.kind = theirs.kind
            mine.merge(theirs)
            for key, n in theirs.flat().items():  # merged counts are in no interval
                _bump(mine.reported, key, n)
            for metric in {*theirs.cumulative, *theirs.pending}:
                target = mine.cumulative.get(metric)
                if target is None:
                    target = mine.cumulative[metric] = new_histogram()
                for part in theirs.parts(metric):
                    target.add(part)
        self.dropped += other.dropped

    def to_wire(self) -> dict[str, Any]:
        """A JSON-able form for sending between processes; ``from_wire`` restores it exactly.

        Histograms travel in HdrHistogram's standard compressed base64 encoding; close codes
        and HTTP statuses become string keys (JSON objects have no integer keys).
        """
        labels: dict[str, Any] = {}
        for label, entry in self._labels.items():
            histograms = {}
            for metric in sorted({*entry.cumulative, *entry.pending}, key=_metric_order):
                parts = entry.parts(metric)
                if parts:
                    histograms[metric] = encode(parts[0] if len(parts) == 1 else _sum(parts))
            labels[label] = {
                "kind": entry.kind,
                **entry.to_wire(),
                "histograms": histograms,
                "censored_by": entry.bounds,
                "errors": entry.errors.to_wire(),
            }
        return {
            "format": _WIRE_FORMAT,
            "version": WIRE_VERSION,
            "dropped": self.dropped,
            "labels": labels,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Collector:
        """Rebuild a collector from ``to_wire()`` output (its samples become cumulative).

        Raises:
            ValueError: not a wsload collector of this ``WIRE_VERSION``, or a malformed field
                (the message names it).
        """
        if not isinstance(data, Mapping) or data.get("format") != _WIRE_FORMAT:
            raise ValueError(f"not a {_WIRE_FORMAT} wire object")
        if data.get("version") != WIRE_VERSION:
            raise ValueError(
                f"{_WIRE_FORMAT} version {data.get('version')!r} is not {WIRE_VERSION}"
            )
        out = cls(start=None)
        out._interval_start = None
        out.dropped = count(data.get("dropped"), "dropped")
        labels = data.get("labels")
        if not isinstance(labels, Mapping):
            raise ValueError("labels: expected an object")
        for label, item in labels.items():
            where = f"labels.{label}"
            if not isinstance(item, Mapping):
                raise ValueError(f"{where}: expected an object")
            entry = out._labels[str(label)] = _Label(str(item.get("kind", "")))
            entry.add(Counts.from_wire(item, where))
            entry.merge_bounds(_bounds(item.get("censored_by", {}), f"{where}.censored_by"))
            entry.errors = ErrorTally.from_wire(item.get("errors", {}), f"{where}.errors")
            histograms = item.get("histograms", {})
            if not isinstance(histograms, Mapping):
                raise ValueError(f"{where}.histograms: expected an object")
            for metric, text in histograms.items():
                if not is_metric(metric) or not isinstance(text, str):
                    raise ValueError(f"{where}.histograms.{metric}: unknown metric or not text")
                try:
                    entry.cumulative[metric] = decode(text)
                except ValueError as exc:
                    raise ValueError(f"{where}.histograms.{metric}: {exc}") from None
            entry.reported = entry.flat()
        return out


_METRIC_INDEX = {name: i for i, name in enumerate(METRICS)}


def _metric_order(metric: str) -> tuple[int, str]:
    return _METRIC_INDEX.get(metric, len(METRICS)), metric


def _bounds(value: Any, where: str) -> dict[str, dict[str, list[int]]]:
    """The wire form of ``_Label.bounds`` read back: metric → why → ``[count, min µs]``."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object")
    out: dict[str, dict[str, list[int]]] = {}
    for metric, reasons in value.items():
        if not is_metric(metric) or not isinstance(reasons, Mapping):
            raise ValueError(f"{where}.{metric}: unknown metric or not an object")
        for reason, pair in reasons.items():
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError(f"{where}.{metric}.{reason}: expected [count, µs]")
            n, us = (count(v, f"{where}.{metric}.{reason}") for v in pair)
            out.setdefault(metric, {})[str(reason)] = [n, us]
    return out
