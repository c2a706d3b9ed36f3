"""The one histogram shape wsload uses, its wire encoding, and its statistics.

Every latency histogram is an HdrHistogram of integer microseconds from 1 µs to 1 h with 3
significant digits: any two of them can be added exactly (same bucket layout), whichever
process or machine filled them. The encoded form is HdrHistogram's standard compressed V2
"histoblob" (zlib + base64), so HdrHistogram tools in any language can read what wsload writes.

Statistics follow HdrHistogram's Java conventions (nearest rank, reported as the highest value
equivalent to the ranked bucket) computed with integer arithmetic, so ``p999`` of exactly 1000
samples is the 999th and never the 1000th because of a float rounding.
"""

from __future__ import annotations

import math
import weakref
from array import array
from bisect import bisect_left, bisect_right
from functools import cache
from itertools import accumulate
from operator import mul
from typing import Any, Final

from hdrh.histogram import HdrHistogram

from wsload.core.percentiles import SUMMARY_PERCENTILES, fraction

__all__ = [
    "HIGHEST_US",
    "LOWEST_US",
    "PERCENTILES",
    "SIGNIFICANT_DIGITS",
    "Recorder",
    "bucket_bounds",
    "bucket_counts",
    "counts",
    "decode",
    "empty_stats",
    "encode",
    "histogram_stats",
    "new_histogram",
    "record",
    "same_counts",
    "seconds_to_us",
    "value_at_percentile",
]

LOWEST_US: Final = 1
HIGHEST_US: Final = 3_600_000_000
"""1 h in µs: larger values go to a metric's ``overflow`` counter, never into the histogram."""
SIGNIFICANT_DIGITS: Final = 3

PERCENTILES: dict[str, tuple[int, int]] = {key: fraction(key) for key in SUMMARY_PERCENTILES}
"""Percentile stats as exact fractions (numerator, denominator) of the sample count
(``wsload.core.percentiles``: p50, p90, p95, p99, p999 = p99.9, p99.99)."""


def _fractions(extra: tuple[str, ...]) -> list[tuple[str, tuple[int, int]]]:
    """Every percentile a stats dict gives: the summary's, and ``extra`` (percentile keys)."""
    return [*PERCENTILES.items(), *((key, fraction(key)) for key in extra)]


def new_histogram() -> HdrHistogram:
    """An empty µs histogram, 1 µs … 1 h, 3 significant digits (about 190 kB of counters)."""
    return _acyclic(HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS))


def _acyclic(histogram: HdrHistogram) -> HdrHistogram:
    """Break hdrh's histogram <-> encoder reference cycle, so a dropped histogram is freed now.

    hdrh's encoder (which owns the counters) points back at its histogram. In a cycle, the
    ~100 kB of counters of every discarded interval histogram waited for a full cyclic garbage
    collection, which CPython runs only when many long-lived objects have piled up: a long run
    grew by megabytes a second (measured: benchmarks/rss_long_run.py). A weak proxy keeps
    every hdrh method working (it only reads attributes through it) without the cycle.
    """
    histogram.encoder.histogram = weakref.proxy(histogram)
    return histogram


_SUB_BUCKET_HALF_MAGNITUDE: Final = 10  # 2 * 10**3 needs 11 bits of sub-buckets: half is 2**10
_SUB_BUCKET_MASK: Final = (1 << (_SUB_BUCKET_HALF_MAGNITUDE + 1)) - 1
_SUB_BUCKET_HALF: Final = 1 << _SUB_BUCKET_HALF_MAGNITUDE


def _index(value: int) -> int:
    """The counts index of ``value``: HdrHistogram's ``countsArrayIndex`` with unit magnitude 0
    in one expression (hdrh computes it through several method calls and ``bin()``)."""
    bucket = (value | _SUB_BUCKET_MASK).bit_length() - (_SUB_BUCKET_HALF_MAGNITUDE + 1)
    return ((bucket + 1) << _SUB_BUCKET_HALF_MAGNITUDE) + (value >> bucket) - _SUB_BUCKET_HALF


def record(histogram: HdrHistogram, value: int) -> None:
    """``histogram.record_value(value)`` for wsload's layout, about four times faster
    (:func:`_index`). ``0 <= value <= HIGHEST_US`` is the caller's job. A test checks it
    against ``record_value`` bucket for bucket.
    """
    histogram.counts[_index(value)] += 1
    histogram.total_count += 1
    if value < histogram.min_value:
        histogram.min_value = value
    if value > histogram.max_value:
        histogram.max_value = value


class Recorder:
    """A new histogram filled one sample at a time by one writer (the collector's pending
    interval histograms, the wire clock's notice lag): :meth:`record` as :func:`record` does,
    with the sample count, the lowest and the highest kept in this object's native fields and
    written into the histogram by :meth:`histogram`. Each hdrh attribute read or written per
    sample is a dictionary lookup (hdrh's objects have no slots): :func:`record` makes five
    per sample, this one.
    """

    __slots__ = ("_counts", "_high", "_histogram", "_low", "_total")

    def __init__(self) -> None:
        self._histogram = new_histogram()
        self._counts: Any = self._histogram.counts
        self._total = 0
        self._low = HIGHEST_US + 1
        self._high = 0

    def record(self, value: int) -> None:
        """One sample; ``0 <= value <= HIGHEST_US`` is the caller's job (as for :func:`record`)."""
        self._counts[_index(value)] += 1
        self._total += 1
        if value < self._low:
            self._low = value
        if value > self._high:
            self._high = value

    def histogram(self) -> HdrHistogram:
        """The histogram of every sample so far (the same object each time: its count,
        lowest and highest brought up to date at each call)."""
        histogram = self._histogram
        if self._total:
            histogram.total_count = self._total
            histogram.min_value = self._low
            histogram.max_value = self._high
        return histogram


def seconds_to_us(seconds: float) -> int:
    """Round a duration on the run clock (float seconds) to whole microseconds (halves up).

    ``math.floor`` of a float is a native call in the compiled build; ``round`` is a call
    through the interpreter (≈ 700 instructions: the record of each finished connection and
    each stamped read rounds once per sample, issue 27's callgrind).
    """
    return math.floor(seconds * 1_000_000 + 0.5)


def encode(histogram: HdrHistogram) -> str:
    """HdrHistogram's compressed, base64 V2 encoding (the form interval logs carry)."""
    data: bytes = histogram.encode()
    return data.decode("ascii")


def decode(text: str) -> HdrHistogram:
    """The inverse of ``encode``; checks the layout so that later adds stay exact.

    Raises:
        ValueError: the payload is not a histoblob, or its range/precision is not wsload's
            (adding it would silently re-bucket values).
    """
    try:
        histogram = _acyclic(HdrHistogram.decode(text.encode("ascii")))
    except Exception as exc:  # hdrh raises TypeError, zlib.error, its own cookie errors...
        raise ValueError(f"not an HdrHistogram encoding: {exc}") from exc
    layout = (
        histogram.lowest_trackable_value,
        histogram.highest_trackable_value,
        histogram.significant_figures,
    )
    if layout != (LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS):
        raise ValueError(
            f"histogram layout {layout} is not wsload's "
            f"{(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)}"
        )
    return histogram


def counts(histogram: HdrHistogram) -> array[int]:
    """The histogram's bucket counts as an ``array('Q')``, copied at C speed.

    hdrh keeps them in a ctypes array of native 64-bit words; iterating that from Python costs
    milliseconds per histogram, a bytes copy costs microseconds.
    """
    raw = histogram.counts
    out = array("Q")
    if out.itemsize != 8 or histogram.word_size != 8:  # pragma: no cover - platform guard
        return array("Q", list(raw))
    out.frombytes(bytes(raw))
    return out


def same_counts(a: HdrHistogram, b: HdrHistogram) -> bool:
    """Whether two histograms hold exactly the same counts in every bucket."""
    return a.get_total_count() == b.get_total_count() and counts(a) == counts(b)


@cache
def _bucket_values() -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Per counts index: lowest, highest and median equivalent value (computed once, ~5 ms).

    hdrh derives these per call in Python; its ``get_mean_value`` walks an iterator and takes
    tens of milliseconds on a well-filled histogram. With these tables a whole summary's
    statistics cost a few vector passes per histogram. The arithmetic is HdrHistogram's
    ``valueFromIndex`` for unit magnitude 0; a test checks every index against hdrh.
    """
    lowest: list[int] = []
    highest: list[int] = []
    for index in range(new_histogram().counts_len):
        bucket = (index >> _SUB_BUCKET_HALF_MAGNITUDE) - 1
        sub = (index & (_SUB_BUCKET_HALF - 1)) + _SUB_BUCKET_HALF
        if bucket < 0:
            sub -= _SUB_BUCKET_HALF
            bucket = 0
        low = sub << bucket
        lowest.append(low)
        highest.append(low + (1 << bucket) - 1)
    median = tuple(lo + ((hi - lo + 1) >> 1) for lo, hi in zip(lowest, highest, strict=True))
    return tuple(lowest), tuple(highest), median


def value_at_percentile(histogram: HdrHistogram, percentile: float) -> int:
    """``histogram.get_value_at_percentile(percentile)``, the same value, without hdrh's
    method call per bucket below it (thousands of them: the lag monitor asks once a second
    whether the run is saturated). A test checks it against hdrh."""
    requested = min(percentile, 100.0)
    target = max(int(requested * histogram.total_count / 100 + 0.5), 1)  # hdrh's rounding
    lowest, highest, _ = _bucket_values()
    running = 0
    for index, n in enumerate(counts(histogram)):
        running += n
        if running >= target:
            return highest[index] if percentile else lowest[index]
    return 0


def last_value_not_above(line: int) -> int:
    """The largest value whose bucket's highest equivalent is at most ``line``.

    A sample reads above ``line`` in :func:`value_at_percentile`'s answers (which give a
    bucket's highest value) exactly when it is above this: so counting the samples above it
    as they are recorded says whether a percentile is above ``line`` without a pass over the
    buckets (``wsload.runner.load.lag``). ``0 <= line <= HIGHEST_US``.
    """
    layout = new_histogram()  # asked once per process: hdrh's own bucket arithmetic
    if layout.get_highest_equivalent_value(line) == line:
        return line
    return int(layout.get_lowest_equivalent_value(line)) - 1


def percentile_above(total: int, above: int, percentile: float) -> bool:
    """Whether :func:`value_at_percentile` of a histogram of ``total`` samples, ``above`` of
    them above :func:`last_value_not_above` of a line, is above that line (the same rank
    rounding); False for an empty histogram (its percentiles read 0)."""
    target = max(int(min(percentile, 100.0) * total / 100 + 0.5), 1)
    return total > 0 and total - above < target


def bucket_bounds() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per counts index: the lowest and the highest value its bucket stands for (µs).

    What turns a rank into a value range (``wsload.report.compare.confidence``); computed once.
    """
    lowest, highest, _ = _bucket_values()
    return lowest, highest


def empty_stats(
    overflow: int = 0, censored: int | None = None, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Statistics of a metric with no recorded sample (every value ``None``)."""
    out: dict[str, Any] = {"count": overflow, "min": None, "mean": None}
    out.update(dict.fromkeys(name for name, _ in _fractions(extra)))
    out["max"] = None
    out["overflow"] = overflow
    return _with_censored(out, overflow, censored, extra)


def _with_censored(
    out: dict[str, Any], finished: int, censored: int | None, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``out`` with ``started``, ``censored`` and a ``<stat>_censored`` flag per percentile
    and for the max, when the caller counts censored measurements (``censored`` not None).

    A percentile whose rank falls above the ``finished`` samples lies among the censored
    ones: its value is unknown (``None``), never the largest finished one.
    """
    if censored is None:
        return out
    total = finished + censored
    out["started"] = total
    out["censored"] = censored
    for name, (num, den) in _fractions(extra):
        beyond = censored > 0 and max(1, -(-num * total // den)) > finished
        if beyond:
            out[name] = None
        out[f"{name}_censored"] = beyond
    if censored:
        out["max"] = None
    out["max_censored"] = censored > 0
    return out


def histogram_stats(
    histogram: HdrHistogram,
    overflow: int = 0,
    censored: int | None = None,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``count, min, mean, p50, p90, p95, p99, p999, p99.99, max, overflow`` of one metric, in
    µs, and the percentiles ``extra`` names (keys of ``wsload.core.percentiles``).

    ``count`` includes the ``overflow`` samples (values over 1 h, not in the histogram); they
    rank above every recorded value, so a percentile or the max that falls among them reads
    ``HIGHEST_US`` (1 h, "at least") and the ``overflow`` field says why. ``mean`` is over the
    recorded samples only (an overflow sample has no known value). A metric without any
    sample has ``None`` statistics: "no samples" is not zero latency.

    ``censored``: measurements that started and never ended (``wsload.metrics.samples``);
    they rank above every finished one (right-censoring), so the percentiles are taken over
    ``started = count + censored`` and one that falls among them is ``None`` with
    ``<stat>_censored: true`` (``_with_censored``). None: the metric cannot be censored (the
    generator's own figures), and the output has no censored fields.
    """
    lowest, highest, median = _bucket_values()
    values = counts(histogram)
    if len(values) != len(lowest):
        raise ValueError("histogram layout is not wsload's (use new_histogram())")
    cumulative = list(accumulate(values))
    recorded = cumulative[-1]  # the buckets themselves, not a running total kept beside them
    if recorded == 0:
        return empty_stats(overflow, censored, extra)
    total = recorded + overflow + (censored or 0)
    first = bisect_left(cumulative, 1)
    last = bisect_left(cumulative, recorded)
    out: dict[str, Any] = {
        "count": recorded + overflow,
        "min": lowest[first],
        "mean": round(sum(map(mul, values, median)) / recorded, 1),
    }
    for name, (num, den) in _fractions(extra):
        rank = max(1, -(-num * total // den))  # ceil without floats
        out[name] = HIGHEST_US if rank > recorded else highest[bisect_left(cumulative, rank)]
    out["max"] = HIGHEST_US if overflow else highest[last]
    out["overflow"] = overflow
    return _with_censored(out, recorded + overflow, censored, extra)


@cache
def _cuts(bounds_us: tuple[int, ...]) -> tuple[int, ...]:
    """Per bound, the first counts index whose values are all above it."""
    _, highest, _ = _bucket_values()
    return tuple(bisect_right(highest, bound) for bound in bounds_us)


def bucket_counts(histogram: HdrHistogram, bounds_us: tuple[int, ...]) -> tuple[list[int], int]:
    """The histogram's samples re-counted into coarse buckets, and their sum (µs).

    Bucket ``i`` holds the samples above ``bounds_us[i-1]`` and at most ``bounds_us[i]``; one
    more bucket at the end holds those above the last bound. A sample is placed by the highest
    value equivalent to its HDR bucket (as the percentiles report it), so a bound is exact to
    HdrHistogram's 3 significant digits. The sum uses the median equivalent values, as the
    ``mean`` of ``histogram_stats`` does. Only the counters from the histogram's min to its max
    are read (an interval's histogram: a fraction of a millisecond, on the run's own loop).

    Args:
        bounds_us: ascending upper bounds, µs.
    """
    if histogram.get_total_count() == 0:
        return [0] * (len(bounds_us) + 1), 0
    # hdrh's add() can leave min_value at 0: a wider span, never a wrong one
    first, last = _index(histogram.min_value), _index(histogram.max_value) + 1
    values = counts(histogram)
    out: list[int] = []
    start = first
    for cut in _cuts(bounds_us):
        end = min(max(cut, first), last)
        out.append(sum(values[start:end]) if end > start else 0)
        start = max(start, end)
    out.append(sum(values[start:last]) if last > start else 0)
    _, _, median = _bucket_values()
    sum_us = sum(map(mul, values[first:last], median[first:last]))
    return out, sum_us
