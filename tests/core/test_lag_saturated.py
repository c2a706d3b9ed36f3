"""The lag monitor's saturation check from counts gives the percentile's own answer.

``LagMonitor.saturated`` is asked once a second; it no longer walks the histograms' buckets
(``value_at_percentile``) but counts, as samples are recorded, those above the line's bucket
(``last_value_not_above``). These tests hold the two to the same answer, bucket edges included.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from wsload.metrics.histograms import (
    HIGHEST_US,
    last_value_not_above,
    new_histogram,
    percentile_above,
    record,
    value_at_percentile,
)
from wsload.runner.load.lag import MIN_STALLS, SATURATION_US, LagMonitor


def test_the_line_splits_the_buckets_as_hdrh_does() -> None:
    h = new_histogram()
    for line in (1, 2047, 2048, 2049, 4095, 4096, 19_999, 20_000, 20_001, 123_456, HIGHEST_US):
        last = last_value_not_above(line)
        for v in range(max(0, last - 40), min(HIGHEST_US, last + 40) + 1):
            assert (h.get_highest_equivalent_value(v) > line) == (v > last), (line, v)


@settings(max_examples=200, deadline=None)
@given(
    line=st.integers(1, 200_000),
    samples=st.lists(st.integers(0, 400_000), min_size=0, max_size=400),
    percentile=st.sampled_from([50.0, 90.0, 99, 99.9, 100.0]),
)
def test_counts_answer_as_the_percentile_does(
    line: int, samples: list[int], percentile: float
) -> None:
    h = new_histogram()
    last = last_value_not_above(line)
    for v in samples:
        record(h, v)
    above = sum(v > last for v in samples)
    expected = value_at_percentile(h, percentile) > line
    assert percentile_above(h.total_count, above, percentile) == expected


def test_the_monitor_says_what_the_p99_says() -> None:
    rng = random.Random(3)
    for share in (0.0, 0.005, 0.0099, 0.01, 0.0101, 0.02, 0.5):
        monitor = LagMonitor()
        for _ in range(2_000):
            late = SATURATION_US + rng.randint(1, 30) if rng.random() < share else 19_990
            monitor.record_start(late / 1e6)
        p99 = value_at_percentile(monitor.start_lag, 99)
        expected = monitor.start_stalls >= MIN_STALLS and p99 > SATURATION_US
        assert monitor.saturated == expected, (share, p99)
