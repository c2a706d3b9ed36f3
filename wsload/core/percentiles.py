"""Percentile names: ``p95``, ``p99.9``, ``p99.99``, ... as exact fractions of a sample count.

One table for every place a percentile is named (thresholds, ``compare --metrics``, summary.json,
the markdown): a name is ``p`` and a percentage between 1 and 99 with up to four decimals.
summary.json has written the 99.9th percentile as ``p999`` since its first version, so that key
stays and ``p99.9`` is read through it (``p999`` is accepted everywhere as an alias). Fractions
are integers (``p99.99`` is 9999/10000), so a rank is exact: never one off by a float rounding.
"""

from __future__ import annotations

import re

__all__ = ["SUMMARY_PERCENTILES", "fraction", "percentile_key"]

SUMMARY_PERCENTILES: tuple[str, ...] = ("p50", "p90", "p95", "p99", "p999", "p99.99")
"""The percentiles summary.json gives every latency metric (keys; ``p999`` is p99.9)."""

_KEYS = {"p99.9": "p999"}
"""Names whose summary.json key differs from the name."""

_NAME = re.compile(r"^p([1-9][0-9]?)(?:\.([0-9]{0,3}[1-9]))?$")


def percentile_key(name: str) -> str | None:
    """The summary.json key of percentile ``name`` (``p99.9`` → ``p999``); None when ``name``
    is not a percentile (``p100``, ``p0``, ``p95.0``, ``max``)."""
    if name == "p999":
        return name
    if _NAME.match(name) is None:
        return None
    return _KEYS.get(name, name)


def fraction(key: str) -> tuple[int, int]:
    """``(numerator, denominator)`` of a percentile key: ``p95`` → (95, 100), ``p999`` →
    (999, 1000), ``p99.99`` → (9999, 10000).

    Raises:
        ValueError: ``key`` is not a percentile key.
    """
    if key == "p999":
        return 999, 1000
    if percentile_key(key) != key:
        raise ValueError(f"not a percentile: {key!r}")
    whole, _, decimals = key[1:].partition(".")
    return int(whole + decimals), 100 * 10 ** len(decimals)
