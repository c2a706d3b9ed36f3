"""The histogram layout, the fast record path, statistics and the wire encoding."""

from __future__ import annotations

import base64
import bisect
import gc
import weakref
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsload.metrics.histograms import (
    HIGHEST_US,
    Recorder,
    bucket_counts,
    decode,
    encode,
    histogram_stats,
    new_histogram,
    record,
    same_counts,
    seconds_to_us,
    value_at_percentile,
)

values_us = st.integers(min_value=0, max_value=HIGHEST_US)
EDGES = [0, 1, 2, 1023, 1024, 2047, 2048, 2049, 4095, 4096, 10**6, 10**9, HIGHEST_US]


@settings(max_examples=60, deadline=None)
@given(st.lists(values_us, max_size=200))
def test_fast_record_matches_hdrh_record_value_bucket_for_bucket(values: list[int]) -> None:
    reference, fast = new_histogram(), new_histogram()
    for value in [*EDGES, *values]:
        assert reference.record_value(value)
        record(fast, value)
    assert same_counts(reference, fast)
    assert fast.get_total_count() == reference.get_total_count()
    assert fast.get_min_value() == reference.get_min_value()
    assert fast.get_max_value() == reference.get_max_value()


@settings(max_examples=60, deadline=None)
@given(st.lists(values_us, max_size=200), st.integers(min_value=0, max_value=200))
def test_recorder_fills_what_record_fills(values: list[int], read_at: int) -> None:
    recorder, reference = Recorder(), new_histogram()
    for i, value in enumerate([*values, *EDGES[: len(values) % len(EDGES)]]):
        if i == read_at:  # read in the middle: later samples still count
            assert same_counts(recorder.histogram(), reference)
        recorder.record(value)
        record(reference, value)
    histogram = recorder.histogram()
    assert same_counts(histogram, reference)
    for name in ("get_total_count", "get_min_value", "get_max_value"):
        assert getattr(histogram, name)() == getattr(reference, name)(), name
    assert encode(histogram) == encode(reference)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(values_us, max_size=200),
    st.lists(st.floats(min_value=0.0, max_value=120.0), min_size=1, max_size=5),
)
def test_value_at_percentile_is_hdrhs(values: list[int], percentiles: list[float]) -> None:
    histogram = new_histogram()
    for value in values:
        record(histogram, value)
    for percentile in [0.0, 50.0, 99.0, 99.9, 100.0, *percentiles]:
        expected = histogram.get_value_at_percentile(percentile)
        assert value_at_percentile(histogram, percentile) == expected, percentile


def _nearest_rank(sorted_values: list[int], num: int, den: int) -> int:
    rank = max(1, -(-num * len(sorted_values) // den))
    return sorted_values[rank - 1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2047), min_size=1, max_size=300))
def test_stats_are_exact_nearest_rank_where_buckets_are_1us_wide(values: list[int]) -> None:
    # Below 2048 µs every value has its own bucket: the statistics must be the exact ones.
    h = new_histogram()
    for v in values:
        record(h, v)
    s = histogram_stats(h)
    ordered = sorted(values)
    assert s["count"] == len(values)
    assert s["min"] == ordered[0]
    assert s["max"] == ordered[-1]
    assert s["p50"] == _nearest_rank(ordered, 50, 100)
    assert s["p90"] == _nearest_rank(ordered, 90, 100)
    assert s["p99"] == _nearest_rank(ordered, 99, 100)
    assert s["p999"] == _nearest_rank(ordered, 999, 1000)
    assert s["mean"] == pytest.approx(sum(values) / len(values), abs=0.051)  # 0.1 rounding
    assert s["overflow"] == 0


def test_p999_of_1000_samples_is_the_999th_not_the_1000th() -> None:
    # 99.9 / 100 * 1000 is 999.0000000000001 in floats: a float ceil would pick the 1000th.
    h = new_histogram()
    for v in range(1, 1001):
        record(h, v)
    assert histogram_stats(h)["p999"] == 999
    assert histogram_stats(h)["p99"] == 990


@settings(max_examples=40, deadline=None)
@given(st.lists(values_us, min_size=1, max_size=100))
def test_stats_stay_within_the_3_digit_resolution(values: list[int]) -> None:
    h = new_histogram()
    for v in values:
        record(h, v)
    s = histogram_stats(h)
    ordered = sorted(values)
    for key, (num, den) in {"p50": (50, 100), "p99": (99, 100)}.items():
        exact = _nearest_rank(ordered, num, den)
        assert exact <= s[key] <= exact + max(1, exact // 1000)
    assert ordered[-1] <= s["max"] <= ordered[-1] + max(1, ordered[-1] // 1000)
    assert s["min"] <= ordered[0]


def test_empty_histogram_has_no_statistics_not_zero_latency() -> None:
    s = histogram_stats(new_histogram())
    assert s == {
        "count": 0,
        "min": None,
        "mean": None,
        "p50": None,
        "p90": None,
        "p95": None,
        "p99": None,
        "p999": None,
        "p99.99": None,
        "max": None,
        "overflow": 0,
    }


def test_overflow_samples_rank_above_every_recorded_value() -> None:
    h = new_histogram()
    for v in range(1, 100):  # 99 recorded samples, 1 overflow: 100 in all
        record(h, v)
    s = histogram_stats(h, overflow=1)
    assert s["count"] == 100
    assert s["overflow"] == 1
    assert s["p50"] == 50
    assert s["p99"] == 99  # rank 99 of 100 is still recorded
    assert s["p999"] == HIGHEST_US  # rank 100 is the overflow: "at least 1 h"
    assert s["max"] == HIGHEST_US
    assert s["mean"] == 50.0  # over recorded samples only
    only_overflow = histogram_stats(new_histogram(), overflow=3)
    assert only_overflow["count"] == 3 and only_overflow["p50"] is None


@settings(max_examples=30, deadline=None)
@given(st.lists(values_us, max_size=100))
def test_encoding_round_trips_exactly(values: list[int]) -> None:
    h = new_histogram()
    for v in values:
        record(h, v)
    text = encode(h)
    assert text.isascii()
    back = decode(text)
    assert same_counts(h, back)
    assert back.get_total_count() == len(values)
    if values:
        assert histogram_stats(back) == histogram_stats(h)


def test_encoding_is_hdrhistogram_v2_compressed_base64() -> None:
    h = new_histogram()
    record(h, 1234)
    raw = base64.b64decode(encode(h))
    cookie = int.from_bytes(raw[:4], "big")
    assert cookie & ~0xF0 == 0x1C849304  # V2 compressed-encoding cookie (word size in 0xF0)
    length = int.from_bytes(raw[4:8], "big")
    inner = zlib.decompress(raw[8 : 8 + length])
    assert int.from_bytes(inner[:4], "big") & ~0xF0 == 0x1C849303  # V2 encoding cookie


def test_decode_rejects_garbage_and_other_layouts() -> None:
    from hdrh.histogram import HdrHistogram

    with pytest.raises(ValueError, match="not an HdrHistogram"):
        decode("bm90IGEgaGlzdG9ncmFt")
    other = HdrHistogram(1, 60_000_000, 2)
    other.record_value(5)
    with pytest.raises(ValueError, match="layout"):
        decode(other.encode().decode())


def test_seconds_to_us_rounds_to_nearest() -> None:
    assert seconds_to_us(0.0025) == 2500
    assert seconds_to_us(1e-7) == 0
    assert seconds_to_us(0.0000006) == 1
    assert seconds_to_us(3600.0) == HIGHEST_US


def test_bucket_value_tables_match_hdrh_at_every_index() -> None:
    from wsload.metrics.histograms import _bucket_values

    lowest, highest, median = _bucket_values()
    h = new_histogram()
    assert len(lowest) == h.counts_len
    for index in range(h.counts_len):
        value = h.get_value_from_index(index)
        assert lowest[index] == value
        assert highest[index] == h.get_highest_equivalent_value(value)
        assert median[index] == h._hdr_median_equiv_value(value)


def test_a_dropped_histogram_is_freed_at_once_without_the_cycle_collector() -> None:
    """hdrh's histogram <-> encoder cycle kept every discarded interval histogram (~100 kB)
    until a full GC: a long run's memory grew by MBs a second. Now refcounting frees them."""
    gc.disable()
    try:
        fresh = new_histogram()
        fresh.record_value(42)
        decoded = decode(encode(fresh))
        assert decoded.get_total_count() == 1 and encode(decoded) == encode(fresh)
        refs = [weakref.ref(fresh), weakref.ref(decoded)]
        del fresh, decoded
        assert [ref() for ref in refs] == [None, None]
    finally:
        gc.enable()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(values_us, max_size=200),
    st.lists(values_us, min_size=1, max_size=20, unique=True),
)
def test_bucket_counts_agree_with_counting_each_sample(
    values: list[int], bounds: list[int]
) -> None:
    """Coarse buckets (``/metrics``) hold what counting each sample by its reported value gives.

    A sample is placed by the highest value of its HDR bucket (what the percentiles report),
    so the reference counts that value against the bounds; the sum is over median values.
    """
    bounds_us = tuple(sorted(bounds))
    h = new_histogram()
    for value in values:
        record(h, value)
    got, sum_us = bucket_counts(h, bounds_us)
    expected = [0] * (len(bounds_us) + 1)
    for value in values:
        expected[bisect.bisect_left(bounds_us, h.get_highest_equivalent_value(value))] += 1
    assert got == expected
    assert sum_us == sum(h._hdr_median_equiv_value(value) for value in values)
