"""Rich renderables: the end-of-run summary (from summary.json's dict) and the live panel.

Both are pure functions of their inputs; the caller prints them (``Console.print``,
``rich.live.Live.update``). The summary table reads only the summary dict, so ``wsload`` can
re-render any results directory exactly as it was shown at the end of its run. Its tables are
``FitTable``s: laid out for the console's width when printed, split rather than cut when the
width is short (an 80-column CI log keeps every number whole).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from wsload.core.codes import label as code_label
from wsload.metrics.histograms import empty_stats, histogram_stats
from wsload.metrics.samples import CLOSE_METRIC
from wsload.metrics.snapshots import IntervalSnapshot
from wsload.plan.schedule import concurrency_at, rate_at
from wsload.report._format import (
    SETUP_PHASES,
    format_count,
    format_ms,
    format_share,
    format_stat,
    format_us,
)
from wsload.report.compare.engine import CompareResult
from wsload.report.compare.judge import Verdict
from wsload.report.compare.tolerances import ATTENTION
from wsload.report.deploys import clients_line, events_table, reconnect_table
from wsload.report.fit import Col, FitTable
from wsload.report.search import capacity_line
from wsload.report.verdict import Word, verdict_of
from wsload.report.why import storm_release, why_rows
from wsload.scenario.model import STEP_PREFIX, Scenario

__all__ = [
    "LiveProgress",
    "comparison_text",
    "intended_load",
    "live_panel",
    "one_process_only",
    "summary_table",
    "verdict_text",
]

_TOP_CODES = 2


class LiveProgress(Protocol):
    """What the live panel reads from the runner's progress (``runner.load.loop.Progress``)."""

    @property
    def started(self) -> float: ...
    @property
    def planned_s(self) -> float | None: ...
    @property
    def attempted(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def peak_in_flight(self) -> int: ...
    @property
    def finished(self) -> int: ...
    @property
    def phase(self) -> str: ...
    @property
    def last_interval(self) -> IntervalSnapshot | None: ...
    @property
    def outcomes(self) -> Mapping[str, int]: ...


# -- end-of-run summary ------------------------------------------------------------------------

_VERDICT_STYLE = {Word.PASS: "bold green", Word.FAIL: "bold red", Word.INCONCLUSIVE: "bold yellow"}


def verdict_text(summary: Mapping[str, Any]) -> Text:
    """The run's one verdict (``wsload.report.verdict``) and each reason with its advice."""
    verdict = verdict_of(summary)
    text = Text(f"verdict: {verdict.word.value.upper()}", style=_VERDICT_STYLE[verdict.word])
    for reason in verdict.reasons:
        text.append(f"\n  {reason.word.value} ({reason.code}): {reason.text()}")
    return text


def summary_table(summary: Mapping[str, Any]) -> Group:
    """The end-of-run report: headline, behaviours table, outcomes, thresholds, warnings."""
    parts: list[RenderableType] = [_headline(summary)]
    # a deploy's own figures first: its events, its logical clients
    parts.extend(t for t in (events_table(summary), reconnect_table(summary)) if t is not None)
    parts.append(_behaviours_table(summary))
    setup = _setup_table(summary)
    if setup is not None:
        parts.append(setup)
    release = storm_release(summary)
    if release is not None:
        parts.append(Text(release))
    outcomes = _outcomes_table(summary)
    if outcomes is not None:
        parts.append(outcomes)
    events = _close_events_table(summary)
    if events is not None:
        parts.append(events)
    declined = _declined(summary)
    if declined is not None:
        parts.append(declined)
    why = _why_table(summary)
    if why is not None:
        parts.append(why)
    parts.extend(_message_tables(summary))
    if summary.get("thresholds"):
        parts.append(_thresholds_table(summary))
    if summary.get("generator", {}).get("saturated"):
        lag = summary["generator"].get("loop_lag_us", {})
        parts.append(
            Text(
                "warning: the load generator was saturated (event-loop lag p99 "
                f"{format_us(lag.get('p99'))}): these figures are limited by wsload, "
                "not by the target" + _starved(summary),
                style="bold red",
            )
        )
    if summary.get("interrupted"):
        parts.append(Text("interrupted: the run stopped before its planned end", style="yellow"))
    return Group(*parts)


def _declined(summary: Mapping[str, Any]) -> Text | None:
    """A note when the server turned down the permessage-deflate offer (on some connections:
    the figures then describe its uncompressed path, for those connections)."""
    totals = summary.get("totals", {})
    deflated = totals.get("extensions", {}).get("permessage-deflate")
    opened = totals.get("opened", 0)
    if deflated is None or deflated >= opened:
        return None
    return Text(
        f"note: permessage-deflate was offered; the server declined it on "
        f"{format_count(opened - deflated)} of {format_count(opened)} connections opened",
        style="yellow",
    )


def one_process_only(scenario: Mapping[str, Any]) -> bool:
    """The scenario (summary.json's ``scenario``) refuses ``--workers``: a capacity search
    (``wsload.runner.options.RunOptions.check``)."""
    return bool(scenario.get("load", {}).get("model") == "search")


def _starved(summary: Mapping[str, Any]) -> str:
    """Why the generator lagged, when the kernel says other processes had its CPU."""
    generator = summary["generator"]
    wait, duration = generator.get("cpu_wait_s"), summary.get("duration_s") or 0.0
    processes = generator.get("processes") or 1
    if wait is None or duration <= 0 or wait < 0.1 * duration * processes:
        if one_process_only(summary.get("scenario", {})):
            return "; lower the load (this scenario runs in one generator process)"
        return "; add --workers, or lower the load"
    return (
        f"; it waited {wait:.2f} s for a CPU taken by other processes "
        f"({100 * wait / (duration * processes):.0f} % of the run): use a quieter machine"
    )


def _headline(summary: Mapping[str, Any]) -> Text:
    totals = summary.get("totals", {})
    name = summary.get("scenario", {}).get("name", "?")
    duration = float(summary.get("duration_s") or 0.0)
    rate = summary.get("rates", {}).get("attempted_per_s")
    text = Text()
    text.append(str(name), style="bold")
    reconnect = summary.get("reconnect")
    if reconnect:  # logical clients first: their attempts are connections too
        text.append(f": {clients_line(reconnect)} in {duration:.2f} s")
        return text
    text.append(
        f": {format_count(totals.get('attempted', 0))} connections in {duration:.2f} s"
        + (f" ({rate:,.1f}/s)" if rate is not None else "")
        + f", {format_count(totals.get('opened', 0))} opened"
    )
    capacity = capacity_line(summary)
    if capacity is not None:  # a search: its answer first, its main level's figures after
        text = Text(capacity + "\n", style="bold green" if "none" not in capacity else "bold red")
        text.append(str(name), style="bold")
        text.append(f": main level, {format_count(totals.get('attempted', 0))} connections")
        return text
    runs = (summary.get("repeat") or {}).get("count")
    if runs:  # --repeat: the figures are every run's, merged
        text.append(f", {runs} runs merged (each in runs/<i>/)")
    dropped = totals.get("dropped", 0)
    if dropped:
        text.append(f", {format_count(dropped)} dropped at max_in_flight", style="yellow")
    return text


def _top_codes(counter: Mapping[str, int]) -> str:
    """The most frequent codes, and how many others there are (never dropped silently)."""
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], int(kv[0])))
    shown = " ".join(f"{code}×{n:,}" for code, n in ranked[:_TOP_CODES]) or "-"
    more = len(ranked) - _TOP_CODES
    return f"{shown} +{more} more" if more > 0 else shown


def _clean_cell(clean: int | None, attempted: int) -> str:
    return "n/a" if clean is None else format_share(clean, attempted)


def _behaviours_table(summary: Mapping[str, Any]) -> FitTable:
    """One row per behaviour with its headline close figure (``close_metric``): named in the
    table's title when every behaviour has the same one, else in a column of its own."""
    behaviours: Mapping[str, Any] = summary.get("behaviours", {})
    totals = summary.get("totals", {})
    shared = totals.get("close_metric")
    columns = [
        Col("behaviour"),
        Col("kind"),
        Col("conns", "right"),
        Col("clean", "right"),
        Col("codes sent", "right"),
        Col("codes received", "right"),
        *(() if shared else (Col("close figure"),)),
        Col("p50", "right"),
        Col("p99", "right"),
        Col("max", "right"),
    ]
    table = FitTable(f"Close behaviours ({shared or 'close figure'} in ms)", tuple(columns))

    def row(head: Text, kind: str, scope: Mapping[str, Any], metric: str | None) -> None:
        stats = scope.get("latency_us", {}).get(metric) if metric else None
        codes = scope.get("close_codes", {})
        attempted = scope.get("attempted", 0)
        table.add_row(
            head,
            Text(kind),
            format_count(attempted),
            _clean_cell(scope.get("clean"), attempted),
            _top_codes(codes.get("sent", {})),
            _top_codes(codes.get("received", {})),
            *(() if shared else (Text(metric or "-"),)),
            *(format_stat(stats, s, format_ms) for s in ("p50", "p99", "max")),
        )

    for label, b in behaviours.items():
        row(Text(label), b.get("kind", ""), b, b.get("close_metric"))
    table.add_section()
    total = {**totals, "close_codes": summary.get("close_codes", {})}
    total["latency_us"] = summary.get("latency_us", {})
    row(Text("total", style="bold"), "", total, shared)
    return table


def _outcomes_table(summary: Mapping[str, Any]) -> FitTable | None:
    outcomes = {k: n for k, n in summary.get("outcomes", {}).items() if n}
    if not outcomes:
        return None
    attempted = summary.get("totals", {}).get("attempted", 0)
    table = FitTable("Outcomes", (Col("outcome"), Col("count", "right"), Col("share", "right")))
    for name, n in sorted(outcomes.items(), key=lambda kv: -kv[1]):
        table.add_row(Text(name), format_count(n), format_share(n, attempted))
    statuses = summary.get("http_statuses", {})
    if statuses:
        table.add_section()
        for status, n in statuses.items():
            table.add_row(f"HTTP {status}", format_count(n), format_share(n, attempted))
    return table


def _close_events_table(summary: Mapping[str, Any]) -> FitTable | None:
    """What browsers' ``onclose`` would have seen: code, wasClean true/false, share."""
    events: Mapping[str, Mapping[str, int]] = summary.get("close_events", {})
    if not events:
        return None
    attempted = summary.get("totals", {}).get("attempted", 0)
    columns: tuple[Col, ...] = (
        Col("code"),
        Col("clean", "right"),
        Col("unclean", "right"),
        Col("share", "right"),
    )
    # the server's most frequent reason per code, when any Close carried one
    reasons: Mapping[str, list[Mapping[str, Any]]] = summary.get("close_reasons", {})
    shown = any(row["reason"] for rows in reasons.values() for row in rows)
    if shown:
        columns = (*columns, Col("top reason"))
    table = FitTable("Browser close events", columns)
    ranked = sorted(events.items(), key=lambda kv: (-sum(kv[1].values()), int(kv[0])))
    for code, pair in ranked:
        cells: list[str | Text] = [
            Text(code_label(int(code))),
            format_count(pair.get("clean", 0)),
            format_count(pair.get("unclean", 0)),
            format_share(sum(pair.values()), attempted),
        ]
        if shown:
            top = reasons.get(code) or [{"reason": ""}]
            more = f" (+{len(top) - 1} more)" if len(top) > 1 else ""
            cells.append(Text(f"{top[0]['reason']}{more}" if top[0]["reason"] else ""))
        table.add_row(*cells)
    return table


def _message_tables(summary: Mapping[str, Any]) -> list[FitTable]:
    """Data message totals and step latencies of a session script (none in echo mode)."""
    if not summary.get("scenario", {}).get("session", {}).get("steps"):
        return []
    totals = summary.get("totals", {})
    names = ("messages_sent", "messages_received", "messages_unmatched", "bytes_sent")
    columns = tuple(Col(n.replace("messages_", "").replace("_", " "), "right") for n in names)
    messages = FitTable("Messages", (*columns, Col("bytes received", "right")))
    messages.add_row(*(format_count(totals.get(n, 0)) for n in (*names, "bytes_received")))
    latency = summary.get("latency_us", {})
    steps = [m for m in latency if m.startswith(STEP_PREFIX)]
    if not steps:
        return [messages]
    reconnect = summary.get("reconnect") or {}
    clients = int(reconnect.get("clients") or 0)
    per_client = (Col("clients", "right"),) if reconnect else ()
    stats_columns = (
        Col("attempts' count" if reconnect else "count", "right"),
        *per_client,
        *(Col(f"{s} ms", "right") for s in _STEP_STATS),
    )
    table = FitTable("Steps", (Col("step"), *stats_columns))
    for metric in steps:
        stats = latency[metric]
        matched = int((reconnect.get("steps") or {}).get(metric, 0))
        table.add_row(
            Text(metric),
            format_count(stats.get("count") or 0),
            *((f"{matched:,} ({format_share(matched, clients)})",) if reconnect else ()),
            *(format_stat(stats, s, format_ms) for s in _STEP_STATS),
        )
    return [messages, table]


_STEP_STATS = ("p50", "p99", "max")

_SETUP_STATS = ("p50", "p95", "p99", "max")


def _setup_table(summary: Mapping[str, Any]) -> FitTable | None:
    """How long connections took to open: the TCP connect and the upgrade, before any close
    (a slow accept queue shows here first)."""
    latency = summary.get("latency_us", {})
    measured = [m for m in SETUP_PHASES if (latency.get(m) or {}).get("count")]
    if not measured:
        return None
    columns = (Col("count", "right"), *(Col(f"{s} ms", "right") for s in _SETUP_STATS))
    table = FitTable("Connection setup", (Col("phase"), *columns))
    for metric in measured:
        stats = latency[metric]
        table.add_row(
            Text(SETUP_PHASES[metric]),
            format_count(stats.get("count") or 0),
            *(format_ms(stats.get(s)) for s in _SETUP_STATS),
        )
    return table


def _why_table(summary: Mapping[str, Any]) -> FitTable | None:
    """Why connections ended other than as their behaviour intends (summary ``errors``)."""
    rows = why_rows(summary.get("errors", {}))
    if not rows:
        return None
    columns = (
        Col("outcome"),
        Col("count", "right"),
        Col("detail", wrap=True),
        Col("e.g. seq", "right"),
    )
    table = FitTable("Why", columns)
    for r in rows:
        table.add_row(
            Text(r.outcome if r.first else ""),
            format_count(r.count),
            Text(r.detail),
            "" if r.example_seq is None else f"#{r.example_seq}",
        )
    return table


def _thresholds_table(summary: Mapping[str, Any]) -> FitTable:
    columns = (
        Col("threshold"),
        Col("condition"),
        Col("measured", "right", wrap=True),
        Col("result"),
    )
    table = FitTable("Thresholds", columns)
    for t in summary.get("thresholds", []):
        verdict = Text("pass", style="green") if t.get("ok") else Text("FAIL", style="bold red")
        table.add_row(
            Text(t.get("expr", "")),
            Text(t.get("condition", "")),
            Text(t.get("detail", "")),
            verdict,
        )
    return table


# -- live panel --------------------------------------------------------------------------------

_stats_cache: dict[tuple[int, str], tuple[IntervalSnapshot, dict[str, Any]]] = {}


def _interval_close_stats(snapshot: IntervalSnapshot, metric: str) -> dict[str, Any]:
    """The last interval's stats of a close metric, its censored ones counted (the
    ``censored.<metric>`` counters), computed once per snapshot (~2 ms each)."""
    cached = _stats_cache.get((id(snapshot), metric))
    if cached is not None and cached[0] is snapshot:
        return cached[1]
    censored = sum(c.get(f"censored.{metric}", 0) for c in snapshot.counters.values())
    histogram = snapshot.histograms.get(metric)
    overflow = snapshot.overflow.get(metric, 0)
    if histogram is None:
        stats = empty_stats(overflow, censored)
    else:
        stats = histogram_stats(histogram, overflow, censored)
    if len(_stats_cache) > 8:
        _stats_cache.clear()
    _stats_cache[id(snapshot), metric] = (snapshot, stats)
    return stats


def _live_close_rows(snapshot: IntervalSnapshot, scenario: Scenario) -> Iterator[tuple[str, str]]:
    """One line per headline close metric of the scenario's behaviours; a censored percentile
    reads ``> <timeout> (timeout)``: the shortest timeout of the behaviours it belongs to."""
    metrics: dict[str, float] = {}
    for spec in scenario.close:
        metric = CLOSE_METRIC[spec.kind]
        metrics[metric] = min(metrics.get(metric, spec.timeout), spec.timeout)
    for metric, timeout in metrics.items():
        stats = _interval_close_stats(snapshot, metric)
        bound = {"censored_after_us": round(timeout * 1e6), "censored_by": {"timeout": 1}}
        stats = {**stats, **bound}
        yield (
            metric,
            (
                f"p50 {format_stat(stats, 'p50', _ms)}, p99 {format_stat(stats, 'p99', _ms)} "
                f"(last {snapshot.length:.1f} s, {stats['count']:,} closes"
                + (f", {stats['censored']:,} censored)" if stats["censored"] else ")")
            ),
        )


def _ms(us: float | None) -> str:
    return f"{format_ms(us)} ms"


def intended_load(scenario: Scenario, elapsed: float) -> str:
    """What the load model asks for at ``elapsed`` seconds: a rate, slots or a storm."""
    load = scenario.load
    if load.model == "arrival":
        return f"{rate_at(load, max(0.0, elapsed)):,.1f}/s"
    if load.model == "concurrency":
        return f"{concurrency_at(load, max(0.0, elapsed)):,} slots"
    size = load.concurrency or 0
    return f"storm of {size:,}" + (f" at {load.rate:,.0f}/s" if load.rate else "")


def live_panel(progress: LiveProgress, scenario: Scenario, now: float) -> Panel:
    """The panel shown while a run goes: time, rates, in flight, outcomes, last close p50/p99.

    Args:
        progress: the runner's live figures.
        scenario: what is running (name, load model for the intended rate).
        now: run-clock time (``trio.current_time()``).
    """
    elapsed = max(0.0, now - progress.started)
    planned = progress.planned_s
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    time_text = f"{elapsed:.1f} s"
    if planned is not None:
        time_text += f" of {planned:.1f} s ({max(0.0, planned - elapsed):.1f} s left)"
    grid.add_row("time", Text(f"{time_text} · {progress.phase}"))
    last = progress.last_interval
    achieved = f"{last.rate:,.1f}/s" if last is not None else "-"
    grid.add_row("rate", Text(f"intended {intended_load(scenario, elapsed)}, achieved {achieved}"))
    grid.add_row(
        "connections",
        Text(
            f"{progress.attempted:,} attempted, {progress.finished:,} finished, "
            f"{progress.in_flight:,} in flight (peak {progress.peak_in_flight:,})"
            + (f", {progress.dropped:,} dropped" if progress.dropped else "")
        ),
    )
    ranked = sorted(progress.outcomes.items(), key=lambda kv: -kv[1])
    grid.add_row("outcomes", Text("  ".join(f"{name} {n:,}" for name, n in ranked) or "-"))
    if last is not None:
        for metric, line in _live_close_rows(last, scenario):
            grid.add_row(metric, Text(line))
    return Panel(grid, title=Text(f"wsload: {scenario.name}"), title_align="left")


def comparison_text(result: CompareResult) -> str:
    """Plain text for the terminal: warnings, the ``ATTENTION`` rows with why, the verdict."""
    lines = [f"warning: {w}" for w in result.warnings]
    informational = 0
    for row in result.rows:
        if row.verdict in ATTENTION:
            if not row.judged:
                informational += 1
                continue
            lines.append(
                f"{row.verdict.value:>20}  {row.test_name}: {row.format_value(row.baseline)} → "
                f"{row.format_value(row.current)} ({row.format_change()}): {row.detail}"
            )
    if informational:
        lines.append(
            f"{informational} informational figures changed (not gated on; --metrics names the "
            "gated ones): see --json or the report"
        )
    unjudged = sum(1 for r in result.rows if r.verdict is Verdict.INSUFFICIENT)
    if unjudged:
        lines.append(
            f"{unjudged} percentiles not judged: too few samples to bound them (--min-samples, "
            "--confidence)"
        )
    regressions = len(result.regressions)
    lines.append(
        f"compared {len(result.rows)} figures with {result.baseline_name}: "
        + (f"{regressions} regression{'s' if regressions != 1 else ''}" if regressions else "ok")
    )
    return "\n".join(lines) + "\n"
