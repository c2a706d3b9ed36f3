"""The live ``/metrics`` endpoint: interval snapshots in, Prometheus metric families out.

People running a capacity test watch the server's own Grafana dashboards while it goes; this
puts wsload's figures on the same screen and time axis. The endpoint is fed the interval
snapshots the live panel and histograms.hlog already get (once a second; with ``--workers``
the merged ones), so it is built from the very samples and counters summary.json is built
from, and once the last interval is in, its counters and histogram counts equal summary.json's.

The metric set is data, not code: every latency metric found in a snapshot becomes a
histogram family ``wsload_<metric>_seconds`` (a dotted name such as ``step.subscribe``
becomes ``wsload_step_seconds{step="subscribe"}``), and every counter of the collector's
``Counts`` becomes a counter family (``_COUNTERS`` only renames the well-known ones; the
message counters are one family each, named as in summary.json). A metric or counter added to
the collector shows here without a change to this module.

``prometheus_client`` writes the text format; ``wsload.runner.endpoint`` serves it from a thread
of its own (scrapes never wait for the Trio loop). The state is guarded by one lock that
``observe`` holds only to add numbers already converted.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from wsload.metrics.counts import MESSAGE_COUNTERS
from wsload.metrics.histograms import HIGHEST_US, bucket_counts, new_histogram, record
from wsload.metrics.snapshots import IntervalSnapshot

__all__ = [
    "LAG_BUCKETS_S",
    "NETWORK_BUCKETS_S",
    "Exposition",
]


NETWORK_BUCKETS_S: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
"""Upper bounds (s) of every latency histogram: loopback and LAN round trips (0.5-5 ms),
WAN and TLS handshakes (10-250 ms), slow closes and close timeouts (1-120 s: Node ws waits
30 s for a Close answer, so a server's close timeout lands just above the 30 s bound)."""

LAG_BUCKETS_S: tuple[float, ...] = (
    0.0001,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
"""Upper bounds (s) of the loop-lag histogram; 0.02 is the saturation limit (runner/load/lag.py)."""

_NETWORK_US = tuple(round(b * 1e6) for b in NETWORK_BUCKETS_S)
_LAG_US = tuple(round(b * 1e6) for b in LAG_BUCKETS_S)

_COUNTERS: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]] | None] = {
    # Counts field: (family, help, its own label names, fixed values); the key of a keyed
    # field fills the last label. None: not exported (attempted = the sum of connections).
    "attempted": None,
    "outcomes": (
        "wsload_connections",
        "Connections that ended, by close behaviour and outcome (docs/outcomes.md).",
        ("outcome",),
        (),
    ),
    "opened": (
        "wsload_connections_opened",
        "Connections whose WebSocket upgrade succeeded.",
        (),
        (),
    ),
    "codes_sent": (
        "wsload_close_codes",
        "Close frames by direction and close code (received without a code: 1005).",
        ("direction", "code"),
        ("sent",),
    ),
    "codes_received": (
        "wsload_close_codes",
        "Close frames by direction and close code (received without a code: 1005).",
        ("direction", "code"),
        ("received",),
    ),
    "http_statuses": (
        "wsload_http_statuses",
        "Upgrade answers that were not 101, by HTTP status.",
        ("status",),
        (),
    ),
    "close_events": (
        "wsload_close_events",
        "The CloseEvent a browser would have fired, by code and wasClean (docs/outcomes.md).",
        ("code", "was_clean"),
        (),
    ),
    "extensions": (
        "wsload_extensions",
        "Connections that negotiated a WebSocket extension (permessage-deflate).",
        ("extension",),
        (),
    ),
    "censored": (
        "wsload_latency_censored",
        "Latency measurements that started and never ended (timeout, reset, interrupted).",
        ("metric",),
        (),
    ),
    "overflow": (
        "wsload_latency_overflow",
        "Latency samples above 1 h (in the +Inf bucket, counted at 1 h in the sum).",
        ("metric",),
        (),
    ),
}

_MESSAGE_HELP = {
    "messages_sent": "WebSocket data messages sent, by close behaviour.",
    "messages_received": "WebSocket data messages received, by close behaviour.",
    "bytes_sent": "Payload bytes of the data messages sent, by close behaviour.",
    "bytes_received": "Payload bytes of the data messages received, by close behaviour.",
    "messages_unmatched": "Data messages that did not match the expect step awaiting them.",
    "messages_auto_replied": "Data messages a [[session.on]] reply rule took and answered.",
    "inbox_overflow": "Data messages dropped unread from a script's full inbox.",
}
"""The keyed ``Counts.messages`` field, exported as one family per key, named as the
summary.json field (``messages_sent`` → ``wsload_messages_sent_total{behaviour}``): a sent and
a received byte count are not one quantity with a label, and the names are the ones users
already know from the results."""

_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]")


def _name(text: str) -> str:
    """``text`` as a Prometheus metric or label name (other characters become ``_``)."""
    out = _NOT_NAME.sub("_", text)
    return out if out and not out[0].isdigit() else f"_{out}"


def _counter_family(field_name: str) -> tuple[str, str, tuple[str, ...], tuple[str, ...]] | None:
    """How the collector counter ``field_name`` is exported (a generic family if not named)."""
    if field_name in _COUNTERS:
        return _COUNTERS[field_name]
    family = f"wsload_{_name(field_name)}"
    return family, f"wsload's {field_name} counter, by close behaviour.", ("key",), ()


def _histogram_family(metric: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Family name, extra label names and values of latency metric ``metric``."""
    prefix, dot, rest = metric.partition(".")
    if dot:
        return f"wsload_{_name(prefix)}_seconds", (_name(prefix),), (rest,)
    return f"wsload_{_name(metric)}_seconds", (), ()


@dataclass(slots=True)
class _Buckets:
    """One histogram series: counts per bucket (the last is +Inf) and the sum in µs."""

    counts: list[int]
    sum_us: int = 0

    def add(self, counts: Iterable[int], sum_us: int) -> None:
        for i, n in enumerate(counts):
            self.counts[i] += n
        self.sum_us += sum_us

    def buckets(self, bounds_s: tuple[float, ...]) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*bounds_s, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


@dataclass(slots=True)
class _Families:
    """Everything exported, as plain numbers (the lock-guarded state of ``Exposition``)."""

    counters: dict[str, dict[tuple[str, ...], int]] = field(default_factory=dict)
    counter_meta: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    histograms: dict[str, dict[tuple[str, ...], _Buckets]] = field(default_factory=dict)
    histogram_labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    loop_lag: _Buckets = field(default_factory=lambda: _Buckets([0] * (len(_LAG_US) + 1)))
    attempted: int = 0
    dropped: int = 0
    in_flight: int = 0
    saturated: bool = False


_Update = tuple[str, tuple[str, ...], tuple[str, ...], list[int], int]


class Exposition(Collector):
    """A ``prometheus_client`` collector of wsload's live figures.

    ``observe`` takes each interval snapshot (in the run's thread); ``collect`` is what
    ``prometheus_client`` calls for every scrape (in the server's thread).
    """

    def __init__(self) -> None:
        self.url = ""  # set by serve_metrics once the endpoint listens
        self._lock = threading.Lock()
        self._scraped = threading.Condition(self._lock)
        self._state = _Families()
        self._version = 0  # snapshots observed
        self._served = 0  # the version the last completed scrape showed at least
        warm = new_histogram()
        record(warm, 1)
        for bounds in (_NETWORK_US, _LAG_US):  # the cached tables: now, not on the run's loop
            bucket_counts(warm, bounds)

    @property
    def version(self) -> int:
        """How many snapshots were observed so far."""
        with self._lock:
            return self._version

    def served(self, version: int) -> None:
        """A scrape that began at ``version`` has been sent (called by the server thread)."""
        with self._scraped:
            self._served = max(self._served, version)
            self._scraped.notify_all()

    def wait_scraped(self, timeout: float, stop: Callable[[], bool] = lambda: False) -> bool:
        """Wait until a scrape has sent everything observed (at most ``timeout`` seconds, or
        until ``stop()`` says so); whether it happened."""
        deadline = time.monotonic() + timeout
        with self._scraped:
            while self._served < self._version:
                left = deadline - time.monotonic()
                if left <= 0 or stop():
                    return False
                self._scraped.wait(min(left, 0.1))
        return True

    def observe(self, snapshot: IntervalSnapshot) -> None:
        """Add one interval's samples and counters."""
        histograms = list(_histogram_updates(snapshot))
        lag = bucket_counts(snapshot.loop_lag, _LAG_US) if snapshot.loop_lag is not None else None
        with self._lock:
            state = self._state
            for label, counters in snapshot.counters.items():
                for key, n in counters.items():
                    _add_counter(state, label, key, n)
            for family, names, values, counts, sum_us in histograms:
                state.histogram_labels[family] = names
                series = state.histograms.setdefault(family, {})
                buckets = series.get(values)
                if buckets is None:
                    buckets = series[values] = _Buckets([0] * (len(_NETWORK_US) + 1))
                buckets.add(counts, sum_us)
            if lag is not None:
                state.loop_lag.add(*lag)
            state.attempted += snapshot.attempted
            state.dropped += snapshot.dropped
            state.in_flight = snapshot.in_flight
            state.saturated = snapshot.saturated
            self._version += 1

    def collect(self) -> list[Metric]:
        """The metric families as they stand (``prometheus_client``'s collector protocol)."""
        with self._lock:
            return _families(self._state)


def _families(state: _Families) -> list[Metric]:
    out: list[Metric] = []
    for family, counters in sorted(state.counters.items()):
        help_text, names = state.counter_meta[family]
        counter = CounterMetricFamily(family, help_text, labels=names)
        for values, n in sorted(counters.items()):
            counter.add_metric(values, n)
        out.append(counter)
    for family, series in sorted(state.histograms.items()):
        histogram = HistogramMetricFamily(
            family, _histogram_help(family), labels=state.histogram_labels[family]
        )
        for values, buckets in sorted(series.items()):
            histogram.add_metric(values, buckets.buckets(NETWORK_BUCKETS_S), buckets.sum_us / 1e6)
        out.append(histogram)
    lag = HistogramMetricFamily(
        "wsload_generator_loop_lag_seconds",
        "How late the generator's event loop woke up (10 ms ticks).",
        labels=(),
    )
    lag.add_metric((), state.loop_lag.buckets(LAG_BUCKETS_S), state.loop_lag.sum_us / 1e6)
    out += [
        lag,
        GaugeMetricFamily(
            "wsload_generator_saturated",
            "1 when the generator, not the target, is the bottleneck (loop or start lag).",
            value=int(state.saturated),
        ),
        GaugeMetricFamily(
            "wsload_connections_in_flight",
            "Connections open at the end of the last interval.",
            value=state.in_flight,
        ),
        CounterMetricFamily(
            "wsload_connections_dropped",
            "Open-loop connections dropped at max_in_flight (never attempted).",
            value=state.dropped,
        ),
        CounterMetricFamily(
            "wsload_connections_intended",
            "Connections the schedule started or dropped (ended + dropped + in flight).",
            value=state.attempted + state.dropped + state.in_flight,
        ),
    ]
    return out


def _add_counter(state: _Families, label: str, key: str, n: int) -> None:
    """Add ``n`` to the series of flat collector counter ``key`` (``name`` or ``name.key``)."""
    field_name, dot, item = key.partition(".")
    if field_name == "messages":
        _add_message_counter(state, label, item, n)
        return
    how = _counter_family(field_name)
    if how is None:
        return
    family, help_text, names, fixed = how
    if not dot:
        names = names[: len(fixed)]  # an integer counter has no key label
    keyed = item.split(".", len(names) - len(fixed) - 1) if dot else []  # 1006.false: 2 labels
    values = (label, *fixed, *keyed)
    state.counter_meta[family] = (help_text, ("behaviour", *names))
    series = state.counters.setdefault(family, {})
    series[values] = series.get(values, 0) + n


def _add_message_counter(state: _Families, label: str, item: str, n: int) -> None:
    """Add ``n`` to ``wsload_<item>_total{behaviour}``; a behaviour's first message counter
    creates all of them, so a count that stays 0 (``messages_unmatched``) is exported as 0,
    as summary.json writes it, rather than missing."""
    for name in dict.fromkeys((*MESSAGE_COUNTERS, item)):
        family = f"wsload_{_name(name)}"
        help_text = _MESSAGE_HELP.get(name, f"wsload's {name} counter, by close behaviour.")
        state.counter_meta[family] = (help_text, ("behaviour",))
        series = state.counters.setdefault(family, {})
        series[(label,)] = series.get((label,), 0) + (n if name == item else 0)


def _histogram_updates(snapshot: IntervalSnapshot) -> Iterator[_Update]:
    """Per behaviour and metric of the interval: its samples in ``NETWORK_BUCKETS_S``.

    Samples above 1 h (the collector's ``overflow``, not in the HDR histogram) go to +Inf and
    count 1 h each in the sum, so the count stays the summary's ``count``.
    """
    for label, metrics in snapshot.by_label.items():
        overflow = _overflow(snapshot.counters.get(label, {}))
        for metric, histogram in metrics.items():
            yield _update(label, metric, histogram, overflow.pop(metric, 0))
        for metric, n in overflow.items():  # overflow samples only, none recorded
            yield _update(label, metric, None, n)
    for label, counters in snapshot.counters.items():
        if label not in snapshot.by_label:
            for metric, n in _overflow(counters).items():
                yield _update(label, metric, None, n)


def _overflow(counters: Mapping[str, int]) -> dict[str, int]:
    return {k.partition(".")[2]: n for k, n in counters.items() if k.startswith("overflow.")}


def _update(label: str, metric: str, histogram: HdrHistogram | None, overflow: int) -> _Update:
    family, names, values = _histogram_family(metric)
    if histogram is None:
        counts, sum_us = [0] * (len(_NETWORK_US) + 1), 0
    else:
        counts, sum_us = bucket_counts(histogram, _NETWORK_US)
    counts[-1] += overflow
    return family, ("behaviour", *names), (label, *values), counts, sum_us + overflow * HIGHEST_US


def _histogram_help(family: str) -> str:
    metric = family.removeprefix("wsload_").removesuffix("_seconds")
    return f"wsload {metric} latency (s), per close behaviour (docs/observability.md)."
