"""A GitHub-flavoured markdown summary of a run and/or a comparison (a CI job summary).

Fit for ``$GITHUB_STEP_SUMMARY``: a one-line verdict first, the warnings that qualify it, the
headline figures, the thresholds, then the comparison with the rows that need attention (not
``pass``) up front and the full table folded in ``<details>``.

The verdict line is the run's one verdict (``wsload.report.verdict``: pass, fail or
inconclusive, each reason with its advice), and a capacity search says which level the figures
are from: a summary must not read as a clean, complete run when it is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from wsload.report._format import format_share, format_stat, format_us
from wsload.report.compare.engine import CompareResult
from wsload.report.compare.judge import Verdict
from wsload.report.compare.rows import Row, format_level
from wsload.report.compare.tolerances import ATTENTION
from wsload.report.deploys import clients_line
from wsload.report.verdict import Word, verdict_of
from wsload.report.why import storm_release, why_rows

__all__ = ["markdown_report"]

_WORD_MARK = {Word.PASS: "✅", Word.FAIL: "❌", Word.INCONCLUSIVE: "⚠️"}

_MARK = {
    Verdict.WITHIN_NOISE: "✅",
    Verdict.IMPROVED: "🟢",
    Verdict.REGRESSED: "❌",
    Verdict.INSUFFICIENT: "⚪",
    Verdict.MISSING: "⚪",
    Verdict.NOISY: "🟡",
    Verdict.INCONCLUSIVE: "⚠️",
}


def markdown_report(
    summary: Mapping[str, Any] | None, comparison: CompareResult | None = None
) -> str:
    """Markdown for a run's summary (None: comparison only) and an optional comparison."""
    name = str((summary or {}).get("scenario", {}).get("name", ""))
    thresholds = list((summary or {}).get("thresholds", []))
    verdict = verdict_of(summary, comparison)
    mark = _WORD_MARK[verdict.word]
    lines = [f"### {mark} wsload {name}: {verdict.word.value}".replace("  ", " "), ""]
    lines += [
        f"> {_WORD_MARK[r.word]} **{r.code}** ({r.word.value}): {_cell(r.text())}"
        for r in verdict.reasons
    ]
    if verdict.reasons:
        lines.append("")
    if comparison is not None:
        lines += [f"> ⚠️ {_cell(w)}" for w in comparison.warnings]
        if comparison.warnings:
            lines.append("")
    if summary is not None:
        lines += _search_line(summary.get("search"))
        lines += _headline(summary)
        lines += _why(summary)
        if thresholds:
            lines += ["", "| threshold | condition | measured | |", "|---|---|---|---|"]
            lines += [
                f"| `{t['expr']}` | {_cell(t['condition'])} | {_cell(t['detail'])} | "
                f"{'✅' if t.get('ok') else '❌'} |"
                for t in thresholds
            ]
    if comparison is not None:
        lines += ["", f"**Compared with {_cell(comparison.baseline_name)}**", ""]
        attention = [r for r in comparison.rows if r.verdict in ATTENTION and r.judged]
        if attention:
            lines += _rows_table(attention)
        else:
            lines.append(f"All {len(comparison.rows)} compared figures within noise.")
        informational = sum(1 for r in comparison.rows if r.verdict in ATTENTION and not r.judged)
        if informational:
            lines += ["", f"{informational} informational figures changed (not gated on)."]
        unjudged = sum(1 for r in comparison.rows if r.verdict is Verdict.INSUFFICIENT)
        if unjudged:
            lines += ["", f"{unjudged} percentiles not judged: too few samples to bound them."]
        lines += ["", "<details><summary>every compared figure</summary>", ""]
        lines += _rows_table(comparison.rows)
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _search_line(search: Mapping[str, Any] | None) -> list[str]:
    """A search's summary holds one level's figures: say which, and what the search found."""
    if not search:
        return []
    parameter, capacity = str(search.get("parameter")), search.get("capacity")
    found = "none" if capacity is None else format_level(capacity, parameter)
    return [
        f"Capacity search over {parameter}: capacity **{found}** ({search.get('stopped')}: "
        f"{_cell(search.get('reason'))}). The figures below are those of the main level, "
        f"{format_level(search.get('main_level'), parameter)}.",
        "",
    ]


def _headline(summary: Mapping[str, Any]) -> list[str]:
    totals = summary.get("totals", {})
    attempted = int(totals.get("attempted") or 0)
    clean = totals.get("clean")
    generator = summary.get("generator", {})
    reconnect = summary.get("reconnect")
    counted = (
        clients_line(reconnect)  # logical clients first: the clean share is theirs
        if reconnect
        else f"{attempted:,} connections, clean "
        f"{format_share(clean, attempted) if clean is not None else 'n/a'}"
    )
    lines = [
        f"{counted} in {summary.get('duration_s', 0):.1f} s; "
        f"generator {'**saturated**' if generator.get('saturated') else 'not saturated'} "
        f"(loop lag p99 {format_us(generator.get('loop_lag_us', {}).get('p99'))}).",
        "",
        "| behaviour | attempted | clean | metric | p50 | p99 | p999 |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for label, behaviour in summary.get("behaviours", {}).items():
        b_att = int(behaviour.get("attempted") or 0)
        b_clean = behaviour.get("clean")
        share = format_share(b_clean, b_att) if b_clean is not None else "n/a"
        metric = behaviour.get("close_metric")
        stats = behaviour.get("latency_us", {}).get(metric) if metric else None
        cells = " | ".join(format_stat(stats, s) for s in ("p50", "p99", "p999"))
        lines.append(f"| {_cell(label)} | {b_att:,} | {share} | {metric or '-'} | {cells} |")
    return lines


def _why(summary: Mapping[str, Any]) -> list[str]:
    """The storm's release line and the "Why" table (top details per failed outcome)."""
    lines = []
    release = storm_release(summary)
    if release:
        lines += ["", release + "."]
    rows = why_rows(summary.get("errors", {}))
    if rows:
        lines += ["", "| why | count | detail | e.g. seq |", "|---|---:|---|---:|"]
        lines += [
            f"| {r.outcome if r.first else ''} | {r.count:,} | {_cell(r.detail)} | "
            f"{'' if r.example_seq is None else r.example_seq} |"
            for r in rows
        ]
    return lines


def _rows_table(rows: Sequence[Row] | Iterable[Row]) -> list[str]:
    lines = [
        "| scope | figure | baseline | current | change | floor | verdict | why |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    lines += [
        f"| {_cell(r.scope)} | `{r.name}` | {r.format_value(r.baseline)} | "
        f"{r.format_value(r.current)} | {r.format_change()} | {r.limit} | "
        f"{_MARK[r.verdict]} {r.verdict_text} | {_cell(r.detail)} |"
        for r in rows
    ]
    return lines


def _cell(text: object) -> str:
    """Text safe inside a markdown table cell (pipes and line breaks escaped)."""
    return str(text).replace("|", "\\|").replace("\n", " ")
