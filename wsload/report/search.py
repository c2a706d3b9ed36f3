"""A capacity search as data and as text: summary.json's ``search`` section and its table.

Pure functions: each level's entry is cut from that level's own summary (the same dict a
``wsload run`` at that level would write), so a level's verdict can be recomputed from its
figures, and the terminal table reads only the ``search`` section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from wsload.core.percentiles import fraction, percentile_key
from wsload.report._format import format_us
from wsload.report.compare.confidence import DEFAULT_CONFIDENCE, percentile_ranks

__all__ = [
    "capacity_line",
    "few_samples",
    "level_entry",
    "level_line",
    "min_samples",
    "search_section",
    "search_table",
]


def level_entry(
    level: float, summary: Mapping[str, Any], *, started_s: float, interrupted: bool = False
) -> dict[str, Any]:
    """One entry of ``search.levels`` from the summary of the run at ``level``.

    ``ok``: every threshold held (and the level ran to its end); ``saturated``: the generator
    could not apply the level, so ``ok`` says nothing about the target.
    """
    totals = summary.get("totals", {})
    attempted = int(totals.get("attempted") or 0)
    clean = totals.get("clean")
    thresholds = list(summary.get("thresholds", []))
    generator = summary.get("generator", {})
    return {
        "level": level,
        "ok": bool(thresholds) and all(t["ok"] for t in thresholds) and not interrupted,
        "saturated": bool(generator.get("saturated", False)),
        "close_p99_us": summary.get("latency_us", {}).get("close_handshake", {}).get("p99"),
        "clean_share": round(clean / attempted, 6) if clean is not None and attempted else None,
        "attempted": attempted,
        "thresholds": thresholds,
        "interrupted": interrupted,
        "loop_lag_p99_us": generator.get("loop_lag_us", {}).get("p99"),
        "start_lag_p99_us": generator.get("start_lag_us", {}).get("p99"),
        "cpu_wait_s": generator.get("cpu_wait_s"),
        "started_s": round(started_s, 3),
        "duration_s": summary.get("duration_s"),
        "few_samples": few_samples(summary),
    }


@cache
def min_samples(key: str, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """The fewest samples whose percentile ``key`` can be bounded at ``confidence`` (what
    ``wsload compare`` needs to judge it: p50 8, p90 51, p99 528, p999 5,296 at 99 %)."""
    num, den = fraction(key)
    low, high = 1, 1
    while percentile_ranks(high, num / den, confidence) is None:
        low, high = high, high * 2
    while low < high:  # the first n that can be bounded (bounding only gets easier with n)
        mid = (low + high) // 2
        low, high = (
            (mid + 1, high) if percentile_ranks(mid, num / den, confidence) is None else (low, mid)
        )
    return low


def few_samples(summary: Mapping[str, Any]) -> list[str]:
    """The latency percentiles the thresholds judge that rest on fewer samples than compare
    needs to bound them: the level's verdict on them is a coin more than a measure."""
    out = []
    for threshold in summary.get("thresholds", []):
        metric, _, stat = str(threshold.get("expr", "")).partition(".")
        key = percentile_key(stat)
        stats = summary.get("latency_us", {}).get(metric)
        if key is None or not isinstance(stats, Mapping):
            continue
        count, needed = int(stats.get("count") or 0), min_samples(key)
        if count < needed:
            out.append(
                f"{threshold['expr']} rests on {count:,} samples; {needed:,} are needed to "
                f"bound it at {100 * DEFAULT_CONFIDENCE:g} % (raise load.search.max_step_duration)"
            )
    return out


def search_section(
    parameter: str,
    levels: Sequence[Mapping[str, Any]],
    capacity: float | None,
    stopped: str,
    reason: str,
    *,
    max_levels: int,
    worst_case_s: float,
    main_level: float | None,
) -> dict[str, Any]:
    """summary.json's ``search`` section (docs/results.md)."""
    return {
        "parameter": parameter,
        "capacity": capacity,
        "stopped": stopped,
        "reason": reason,
        "main_level": main_level,
        "max_levels": max_levels,
        "worst_case_s": round(worst_case_s, 3),
        "levels": [dict(level) for level in levels],
    }


_UNIT = {"rate": "/s", "storm_size": " connections"}


def _level(value: float | None, parameter: str) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
    return text + _UNIT.get(parameter, "")


def _share(share: float | None) -> str:
    """Two decimals: a clean-share gate is often 99.9 %."""
    return "-" if share is None else f"{100 * share:.2f} %"


def _verdict(entry: Mapping[str, Any]) -> Text:
    if entry.get("saturated"):
        return Text("saturated", style="bold red")
    if entry.get("interrupted"):
        return Text("interrupted", style="yellow")
    if entry.get("ok"):
        return Text("pass", style="green")
    failed = [t["expr"] for t in entry.get("thresholds", []) if not t.get("ok")]
    return Text("fail" + (f" ({', '.join(failed)})" if failed else ""), style="red")


def capacity_line(summary: Mapping[str, Any]) -> str | None:
    """What a capacity search found, first in every output: ``capacity 400/s (SLO:
    close_handshake.p99 < 50ms, outcomes.clean > 99%)``; None when the run is not a search."""
    search = summary.get("search")
    if not isinstance(search, Mapping):
        return None
    parameter = str(search.get("parameter", "rate"))
    capacity = search.get("capacity")
    found = _level(capacity, parameter) if capacity is not None else "none (no level passed)"
    slo = ", ".join(
        f"{expr} {cond.get('condition', '') if isinstance(cond, Mapping) else cond}"
        for expr, cond in (summary.get("scenario", {}).get("thresholds") or {}).items()
    )
    return f"capacity {found}" + (f" (SLO: {slo})" if slo else "")


def level_line(entry: Mapping[str, Any], parameter: str) -> str:
    """One line per level as the search goes (the table comes at the end)."""
    p99 = entry.get("close_p99_us")
    return (
        f"  {_level(entry['level'], parameter)}: {_verdict(entry).plain} (close p99 "
        f"{format_us(p99)}, clean {_share(entry.get('clean_share'))}, "
        f"{entry['attempted']:,} attempted)"
    )


def search_table(search: Mapping[str, Any]) -> Group:
    """The levels tried, in order, and the capacity found with why the search stopped."""
    parameter = str(search.get("parameter", "rate"))
    table = Table(title="capacity search", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("rate" if parameter == "rate" else "storm size", justify="right")
    table.add_column("verdict")
    table.add_column("close p99", justify="right")
    table.add_column("clean", justify="right")
    table.add_column("attempted", justify="right")
    for i, entry in enumerate(search.get("levels", []), 1):
        table.add_row(
            str(i),
            _level(entry.get("level"), parameter),
            _verdict(entry),
            format_us(entry.get("close_p99_us")),
            _share(entry.get("clean_share")),
            f"{int(entry.get('attempted') or 0):,}",
        )
    capacity = search.get("capacity")
    style = "bold green" if capacity is not None else "bold red"
    line = Text(f"capacity: {_level(capacity, parameter)}", style=style)
    warnings = [
        Text(f"warning: level {_level(entry.get('level'), parameter)}: {text}", style="yellow")
        for entry in search.get("levels", [])
        for text in entry.get("few_samples") or ()
    ]
    return Group(table, line, Text(str(search.get("reason", ""))), *warnings)
