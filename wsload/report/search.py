"""A capacity search as data and as text: summary.json's ``search`` section and its table.

Pure functions: each level's entry is cut from that level's own summary (the same dict a
``wsload run`` at that level would write), so a level's verdict can be recomputed from its
figures, and the terminal table reads only the ``search`` section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from wsload.report._format import format_us

__all__ = ["level_entry", "level_line", "search_section", "search_table"]


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
    }


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
    return Group(table, line, Text(str(search.get("reason", ""))))
