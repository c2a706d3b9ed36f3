"""Why connections failed, and whether a run measured anything: pure functions of summary.json.

``summary.json`` ``errors`` (``wsload.report.summary.errors_section``) holds the grouped details;
the terminal, report.html and markdown read them through ``why_rows`` so that all three list
the same rows in the same order. ``nothing_measured`` is the verdict that a run which opened no
connection failed, whatever its thresholds say: a green CI job must have measured something.
The one exception is a run whose thresholds speak only of rejections (``http_statuses.401``,
``outcomes.handshake_rejected``): a test that every upgrade is refused measured exactly that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wsload.report._format import format_us

__all__ = ["WhyRow", "nothing_measured", "storm_release", "why_rows"]

_NAMED = 3
"""Outcomes named in the "no connection opened" message (the most common first)."""


@dataclass(frozen=True, slots=True)
class WhyRow:
    """One line of a "Why" table.

    Attributes:
        outcome: the outcome the detail explains.
        count: connections with this outcome and detail.
        detail: the normalised, redacted detail; ``other`` for the rest of the outcome.
        example_seq: one such connection's ``seq`` (None for ``other``).
        first: the outcome's first row (tables print the outcome once).
    """

    outcome: str
    count: int
    detail: str
    example_seq: int | None
    first: bool


def why_rows(errors: Mapping[str, Any]) -> list[WhyRow]:
    """The rows of an ``errors`` section (the run's or one behaviour's), outcome by outcome."""
    rows: list[WhyRow] = []
    for outcome, section in errors.items():
        first = True
        for item in section.get("details", []):
            rows.append(
                WhyRow(outcome, int(item["count"]), str(item["detail"]), item["example_seq"], first)
            )
            first = False
        other = int(section.get("other") or 0)
        if other:
            rows.append(WhyRow(outcome, other, "other", None, first))
    return rows


def nothing_measured(summary: Mapping[str, Any]) -> str | None:
    """Why the run measured nothing (no connection was opened), or None when it opened one.

    ``"no connection opened: 50 refused (Connection refused)"``: the outcomes by count, each
    with its most frequent detail, so that the one line says what to fix.
    """
    totals = summary.get("totals", {})
    if int(totals.get("opened") or 0) > 0:
        return None
    attempted = int(totals.get("attempted") or 0)
    if attempted and _judged_by_rejections(summary):
        return None
    if attempted == 0:
        dropped = int(totals.get("dropped") or 0)
        why = f"{dropped:,} dropped at max_in_flight" if dropped else "none was attempted"
        return f"no connection opened: {why}"
    errors = summary.get("errors", {})
    ranked = sorted(
        ((name, int(n)) for name, n in summary.get("outcomes", {}).items() if n),
        key=lambda item: -item[1],
    )
    parts = []
    for name, n in ranked[:_NAMED]:
        details = errors.get(name, {}).get("details") or []
        reason = f" ({details[0]['detail']})" if details else ""
        parts.append(f"{n:,} {name}{reason}")
    rest = sum(n for _, n in ranked[_NAMED:])
    if rest:
        parts.append(f"{rest:,} more")
    return "no connection opened: " + ", ".join(parts)


def _judged_by_rejections(summary: Mapping[str, Any]) -> bool:
    """The run has thresholds and every one is about rejected upgrades (whole run or one
    behaviour): ``http_statuses.<code>`` or ``outcomes.handshake_rejected``."""
    exprs = [str(t.get("expr", "")) for t in summary.get("thresholds") or ()]
    if not exprs:
        return False
    for expr in exprs:
        parts = expr.split(".")
        if parts[0] == "behaviours":
            parts = parts[2:]
        if parts[:1] != ["http_statuses"] and parts != ["outcomes", "handshake_rejected"]:
            return False
    return True


def storm_release(summary: Mapping[str, Any]) -> str | None:
    """``"released 10,000 closes in 312 ms"`` for a storm (None when nothing was released):
    from the release instant to the last close wsload started (``close_start_lag``). Segments
    count from their shared release instant, so the line says so and how long after it they
    actually released (each also waited for its own connections to open)."""
    stats = summary.get("latency_us", {}).get("close_start_lag") or {}
    count, latest = int(stats.get("count") or 0), stats.get("max")
    if not count or latest is None:
        return None
    release = summary.get("generator", {}).get("storm_release_s") or {}
    planned = release.get("planned")
    text = f"released {count:,} closes in {format_us(latest)}"
    if planned is not None:
        text += " from the segments' shared release instant"
    p50, p99 = stats.get("p50"), stats.get("p99")
    if p50 is not None and p99 is not None:
        text += f" (close_start_lag p50 {format_us(p50)}, p99 {format_us(p99)})"
    if planned is not None:
        first, last = (format_us(1e6 * (release[k] - planned)) for k in ("first", "last"))
        when = first if first == last else f"{first} to {last}"
        text += f"; the segments released {when} after it"
    return text
