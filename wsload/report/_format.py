"""Number formatting shared by the text renderers (thresholds' details, terminal tables)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from wsload.metrics.histograms import HIGHEST_US

__all__ = ["format_count", "format_ms", "format_share", "format_stat", "format_us"]


def format_us(us: float | None) -> str:
    """A µs latency in the unit that reads best: ``850 µs``, ``62.1 ms``, ``1.20 s``.

    ``None`` is ``-`` (no samples); 1 h or more (the histogram's top, or an overflow) reads
    ``>= 1 h`` because beyond that wsload only counts.
    """
    if us is None:
        return "-"
    if math.isinf(us) or us >= HIGHEST_US:
        return ">= 1 h"
    if us < 1000:
        return f"{us:.0f} µs"
    if us < 1_000_000:
        return f"{us / 1000:.3g} ms" if us < 100_000 else f"{us / 1000:.0f} ms"
    return f"{us / 1_000_000:.3g} s" if us < 100_000_000 else f"{us / 1_000_000:.0f} s"


def format_ms(us: float | None) -> str:
    """A µs latency as milliseconds with 2 decimals (table columns in ms), ``-`` for None."""
    if us is None:
        return "-"
    if math.isinf(us) or us >= HIGHEST_US:
        return ">=1h"
    return f"{us / 1000:.2f}"


def format_share(part: int, whole: int) -> str:
    """``81.2 %``; ``-`` when ``whole`` is 0 (a share of nothing is not 0 %)."""
    if whole <= 0:
        return "-"
    return f"{100 * part / whole:.1f} %"


def format_count(n: int) -> str:
    """Thousands separated with a thin space-free comma: ``12,345``."""
    return f"{n:,}"


def format_stat(
    stats: Mapping[str, Any] | None, stat: str, fmt: Callable[[float | None], str] = format_us
) -> str:
    """One statistic of a summary.json latency entry, in ``fmt`` (``format_us``, ``format_ms``).

    A percentile (or max) that lies among the censored measurements has no value: it reads
    ``> 500 ms (timeout)``: the smallest known lower bound of a censored one and the most
    common reason (docs/results.md, censored latencies), whatever ``fmt`` is.
    """
    if not stats:
        return fmt(None)
    if stats.get(f"{stat}_censored"):
        why = next(iter(stats.get("censored_by") or {}), "censored")
        after = stats.get("censored_after_us")
        return f"> {format_us(after)} ({why})" if after is not None else f"unknown ({why})"
    return fmt(stats.get(stat))
