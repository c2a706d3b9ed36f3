"""report.html: one self-contained page per run (works offline: plotly.js inlined once).

A pure function from the results data (and an optional comparison) to HTML text; only the
CLI/execute write it (``wsload.report.outputs``). Sections: header with the scenario and
every verdict; percentile distributions of the close metrics (then any other metric measured)
per behaviour; time series of rate, in-flight, outcomes and close p99 per interval; close
codes; the generator's own lag; the built-in server's view; the capacity search when the run
has one. Every string from the run is HTML-escaped.
"""

from __future__ import annotations

import functools
import html
import json
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from hdrh.histogram import HdrHistogram

from wsload.core.codes import label as code_label
from wsload.metrics.histograms import new_histogram
from wsload.report import charts, deploys
from wsload.report._format import SETUP_PHASES, format_share, format_stat, format_us
from wsload.report.compare.engine import CompareResult
from wsload.report.compare.judge import Verdict
from wsload.report.compare.tolerances import ATTENTION
from wsload.report.results import ResultsData
from wsload.report.search import capacity_line
from wsload.report.verdict import verdict_of
from wsload.report.why import storm_release, why_rows
from wsload.scenario.model import METRICS, STEP_PREFIX

__all__ = ["CHART_METRICS", "PLOTLY_JS", "html_report"]

CHART_METRICS: tuple[str, ...] = (
    "close_handshake",
    "close_teardown",
    "close_total",
    *(m for m in METRICS if m not in ("close_handshake", "close_teardown", "close_total")),
)
"""Percentile charts in page order: the close metrics first, then every other one measured."""

_BANDED = ("close_handshake", "close_teardown", "close_total")
"""The judged latencies (compare's defaults): each gets its percentile bands over time."""

_INTERVAL_TAGS = ("close_handshake", "close_teardown", "close_total", "server_close_timeout")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em;
       color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1b7f3b; font-weight: bold; } .fail { color: #c62828; font-weight: bold; }
.warn { background: #fff4e5; border-left: 4px solid #f0a500; padding: 0.4em 0.8em; }
.meta { color: #555; } .charts { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
@media (max-width: 900px) { .charts { grid-template-columns: 1fr; } }
"""


def html_report(data: ResultsData, comparison: CompareResult | None = None) -> str:
    """The whole report.html for ``data`` (and ``comparison`` when the run was compared)."""
    summary = data.summary
    figures = _Figures()
    body = [
        *_header(summary, comparison),
        *_setup(summary),
        *_distributions(data, figures),
        *_time_series(data, figures),
        *_codes(summary, figures),
        *_generator(summary, figures),
        *_server(summary, figures),
        *_events(summary, figures),
        *_search(summary, figures),
    ]
    name = html.escape(str(summary.get("scenario", {}).get("name", "")))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>wsload report: {name}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


PLOTLY_JS = resources.files("wsload.report") / "vendor" / "plotly-basic.min.js"
"""plotly.js's basic bundle (scatter, bar, pie: every trace the charts use), vendored from npm:
a quarter of the full bundle the Python package ships (wsload/report/vendor/README.md)."""


TEMPLATE = "plotly_white"
"""Every chart's plotly template, set in its JSON as it is rendered (:class:`_Figures`)."""


@functools.cache
def _template() -> dict[str, Any]:
    """:data:`TEMPLATE` as figure JSON, once per process.

    Not named in each figure's ``update_layout``: plotly validates and deep-copies a template
    set there, ≈ 12 ms of CPU per figure, 17 figures in a report and most test runs write one
    (docs/testing.md, session 9); the figure's JSON is the same.
    """
    return dict(pio.templates[TEMPLATE].to_plotly_json())


class _Figures:
    """Renders figures to divs on :data:`TEMPLATE`; the first one carries plotly.js, inlined
    (no CDN)."""

    def __init__(self) -> None:
        self.count = 0

    def div(self, fig: go.Figure) -> str:
        self.count += 1
        script = ""
        if self.count == 1:
            script = f'<script type="text/javascript">{PLOTLY_JS.read_text("utf-8")}</script>\n'
        spec = fig.to_dict()
        spec["layout"]["template"] = _template()
        return script + str(
            pio.to_html(
                spec,
                validate=False,  # a go.Figure's own JSON: validated as it was built
                full_html=False,
                include_plotlyjs=False,
                include_mathjax=False,
                div_id=f"chart-{self.count}",
                config={"displaylogo": False, "responsive": True},
            )
        )


def _target_url(summary: Mapping[str, Any]) -> str:
    """The URL the run connected to: a managed server's ``{port}`` filled in."""
    url = str(summary.get("scenario", {}).get("target", {}).get("url", "?"))
    port = (summary.get("server_process") or {}).get("port")
    return url.replace("{port}", str(port)) if port is not None else url


def _setup(summary: Mapping[str, Any]) -> Iterator[str]:
    """Connection setup: the TCP connect and the upgrade, as the terminal shows them."""
    latency = summary.get("latency_us", {})
    measured = [m for m in SETUP_PHASES if (latency.get(m) or {}).get("count")]
    if not measured:
        return
    stats = ("p50", "p95", "p99", "max")
    yield '<h2>Connection setup</h2><table id="setup"><tr><th>phase</th><th>count</th>'
    yield "".join(f"<th>{s}</th>" for s in stats) + "</tr>"
    for metric in measured:
        row = latency[metric]
        cells = "".join(f"<td class=n>{format_us(row.get(s))}</td>" for s in stats)
        count = f"<td class=n>{int(row['count']):,}</td>"
        yield f"<tr><td>{SETUP_PHASES[metric]}</td>{count}{cells}</tr>"
    yield "</table>"


def _e(value: object) -> str:
    return html.escape(str(value))


def _header(summary: Mapping[str, Any], comparison: CompareResult | None) -> Iterator[str]:
    scenario = summary.get("scenario", {})
    totals = summary.get("totals", {})
    attempted = int(totals.get("attempted") or 0)
    clean = totals.get("clean")
    verdict = verdict_of(summary, comparison)
    saturated = bool(summary.get("generator", {}).get("saturated"))
    reconnect = summary.get("reconnect")
    counted = (
        deploys.clients_line(reconnect)  # logical clients first: the clean share is theirs
        if reconnect
        else f"{attempted:,} connections, clean "
        f"{format_share(clean, attempted) if clean is not None else 'n/a'}"
    )
    capacity = capacity_line(summary)
    if capacity is not None:  # a search: its answer is the header's first line
        yield f'<h1 id="capacity">{_e(capacity)}</h1>'
        yield f"<p><b>wsload: {_e(scenario.get('name', ''))}</b></p>"
    else:
        yield f"<h1>wsload: {_e(scenario.get('name', ''))}</h1>"
    if scenario.get("description"):
        yield f"<p>{_e(scenario['description'])}</p>"
    yield (
        f'<p class="meta">started {_e(summary.get("started_at"))} · '
        f"{float(summary.get('duration_s') or 0):.2f} s · load model "
        f"{_e(scenario.get('load', {}).get('model', '?'))} · target "
        f"{_e(_target_url(summary))} · scenario hash "
        f"{_e(summary.get('scenario_hash'))} · wsload {_e(summary.get('wsload_version'))}</p>"
    )
    yield (
        f'<p>Verdict: <span class="{"ok" if verdict.passed else "fail"}" id="verdict">'
        f"{verdict.word.value.upper()}</span> · {_e(counted)}"
        f"{' · <b>interrupted</b>' if summary.get('interrupted') else ''}"
        f"{' · <b>generator saturated</b>' if saturated else ''}"
        "</p>"
    )
    if verdict.reasons:
        yield (
            '<ul id="reasons">'
            + "".join(
                f"<li><b>{_e(r.word.value)} ({_e(r.code)})</b>: {_e(r.text())}</li>"
                for r in verdict.reasons
            )
            + "</ul>"
        )
    if comparison is not None:
        yield from (f'<p class="warn">{_e(w)}</p>' for w in comparison.warnings)
    thresholds = list(summary.get("thresholds", []))
    if thresholds:
        yield "<h2>Thresholds</h2><table><tr><th>expression</th><th>condition</th>"
        yield "<th>measured</th><th>verdict</th></tr>"
        for t in thresholds:
            mark = '<span class="ok">ok</span>' if t.get("ok") else '<span class="fail">FAIL</span>'
            yield (
                f"<tr><td><code>{_e(t.get('expr'))}</code></td><td>{_e(t.get('condition'))}</td>"
                f"<td>{_e(t.get('detail'))}</td><td>{mark}</td></tr>"
            )
        yield "</table>"
    yield from _behaviour_table(summary)
    yield from _close_events_table(summary)
    yield from _why(summary)
    if comparison is not None:
        yield from _comparison(comparison)


_PERCENTILES = ("p50", "p99", "p999")


def _behaviour_table(summary: Mapping[str, Any]) -> Iterator[str]:
    yield "<h2>Behaviours</h2><table><tr><th>behaviour</th><th>kind</th><th>attempted</th>"
    yield "<th>clean</th><th>outcomes</th><th>close figure</th>"
    yield "<th>p50</th><th>p99</th><th>p999</th></tr>"
    for label, b in summary.get("behaviours", {}).items():
        attempted = int(b.get("attempted") or 0)
        clean = b.get("clean")
        outcomes = ", ".join(f"{k} {v:,}" for k, v in b.get("outcomes", {}).items() if v)
        metric = b.get("close_metric")
        stats = b.get("latency_us", {}).get(metric) if metric else None
        yield (
            f"<tr><td>{_e(label)}</td><td>{_e(b.get('kind'))}</td><td class=n>{attempted:,}</td>"
            f"<td class=n>{format_share(clean, attempted) if clean is not None else 'n/a'}</td>"
            f"<td>{_e(outcomes or '-')}</td><td>{_e(metric or '-')}</td>"
            + "".join(
                f"<td class=n>{_e(format_stat(stats, s))}</td>" for s in ("p50", "p99", "p999")
            )
            + "</tr>"
        )
    yield "</table>"


def _close_events_table(summary: Mapping[str, Any]) -> Iterator[str]:
    """The ``CloseEvent`` browsers would have fired: total and per behaviour (clean/unclean)."""
    events: Mapping[str, Mapping[str, int]] = summary.get("close_events", {})
    if not events:
        return
    attempted = int(summary.get("totals", {}).get("attempted") or 0)
    behaviours: Mapping[str, Any] = summary.get("behaviours", {})
    yield '<h2>Browser close events</h2><table id="close-events"><tr><th>code</th>'
    yield "<th>wasClean true</th><th>wasClean false</th><th>share</th>"
    yield "".join(f"<th>{_e(label)} (clean / unclean)</th>" for label in behaviours) + "</tr>"
    for code, pair in events.items():
        cells = [
            f"<td>{_e(code_label(int(code)))}</td>",
            f"<td class=n>{pair.get('clean', 0):,}</td>",
            f"<td class=n>{pair.get('unclean', 0):,}</td>",
            f"<td class=n>{format_share(sum(pair.values()), attempted)}</td>",
        ]
        for b in behaviours.values():
            mine = b.get("close_events", {}).get(code, {})
            cells.append(f"<td class=n>{mine.get('clean', 0):,} / {mine.get('unclean', 0):,}</td>")
        yield "<tr>" + "".join(cells) + "</tr>"
    yield "</table>"


def _why(summary: Mapping[str, Any]) -> Iterator[str]:
    """The storm's release spread, and why connections failed: the run's rows, then each
    behaviour's when there are several behaviours."""
    release = storm_release(summary)
    if release:
        yield f"<p id=storm-release>{_e(release)}</p>"
    sections = [("all", summary.get("errors", {}))]
    behaviours = summary.get("behaviours", {})
    if len(behaviours) > 1:
        sections += [(label, b.get("errors", {})) for label, b in behaviours.items()]
    if not any(errors for _, errors in sections):
        return
    yield "<h2>Why connections failed</h2><table id=why><tr><th>behaviour</th><th>outcome</th>"
    yield "<th>count</th><th>detail</th><th>example seq</th></tr>"
    for label, errors in sections:
        for r in why_rows(errors):
            yield (
                f"<tr><td>{_e(label)}</td><td>{_e(r.outcome)}</td><td class=n>{r.count:,}</td>"
                f"<td>{_e(r.detail)}</td><td class=n>{_e(r.example_seq or '')}</td></tr>"
            )
    yield "</table>"


def _comparison(comparison: CompareResult) -> Iterator[str]:
    shown = [r for r in comparison.rows if r.verdict in ATTENTION]  # informational ones too
    unjudged = sum(1 for r in comparison.rows if r.verdict is Verdict.INSUFFICIENT)
    yield f"<h2>Compared with {_e(comparison.baseline_name)}</h2>"
    yield (
        f"<p>{len(comparison.rows)} figures compared: {len(comparison.regressions)} "
        f"regressions, {unjudged} not judged (too few samples); the figures that changed "
        "beyond the noise (informational ones are not gated on):</p>"
    )
    yield "<table><tr><th>scope</th><th>figure</th><th>baseline</th><th>current</th>"
    yield "<th>change</th><th>floor</th><th>verdict</th><th>why</th></tr>"
    for r in shown:
        cls = "fail" if r.fails else ""
        yield (
            f"<tr><td>{_e(r.scope)}</td><td><code>{_e(r.name)}</code></td>"
            f"<td class=n>{_e(r.format_value(r.baseline))}</td>"
            f"<td class=n>{_e(r.format_value(r.current))}</td>"
            f"<td class=n>{_e(r.format_change())}</td><td>{_e(r.limit)}</td>"
            f'<td class="{cls}">{_e(r.verdict_text)}</td><td>{_e(r.detail)}</td></tr>'
        )
    yield "</table>"


def _distributions(data: ResultsData, figures: _Figures) -> Iterator[str]:
    labels = list(data.summary.get("behaviours", {}))
    divs = []
    levels = _search_levels(data)
    steps = sorted({tag.partition(":")[0] for tag in data.totals if tag.startswith(STEP_PREFIX)})
    for metric in (*CHART_METRICS, *steps):
        curves: dict[str, HdrHistogram] = {}
        if levels:
            curves = _level_curves(data, metric, levels)
            if curves:
                divs.append(figures.div(charts.percentile_figure(metric, curves)))
            continue
        for label in labels:
            histogram = data.totals.get(f"{metric}:{label}")
            if histogram is not None and histogram.get_total_count():
                curves[label] = histogram
        if len(curves) > 1 and data.totals.get(metric) is not None:
            curves = {"all": data.totals[metric], **curves}
        if curves:
            divs.append(figures.div(charts.percentile_figure(metric, curves)))
    yield "<h2>Latency distributions</h2>"
    if not divs:
        yield "<p>No latency samples in histograms.hlog.</p>"
    yield '<div class="charts">' + "".join(divs) + "</div>"


def _search_levels(data: ResultsData) -> list[Mapping[str, Any]]:
    """A search's levels that say where they lie on the hlog's time axis (else none)."""
    search = data.summary.get("search")
    if not isinstance(search, Mapping):
        return []
    levels = search.get("levels") or []
    return [
        level
        for level in levels
        if isinstance(level, Mapping)
        and isinstance(level.get("started_s"), int | float)
        and isinstance(level.get("duration_s"), int | float)
    ]


def _level_curves(
    data: ResultsData, metric: str, levels: list[Mapping[str, Any]]
) -> dict[str, HdrHistogram]:
    """One curve per search level: the intervals of ``metric`` (all behaviours) logged while
    that level ran. The hlog's totals would mix every level, so a passing capacity and a
    failing overload would read as one distribution."""
    unit = "/s" if data.summary["search"].get("parameter") == "rate" else ""
    starts = [float(level["started_s"]) for level in levels]
    totals = [new_histogram() for _ in levels]
    for interval in data.intervals.get(metric, ()):
        # levels run one after another: an interval is the last level begun by its midpoint
        i = bisect_right(starts, interval.t + interval.length / 2) - 1
        totals[max(i, 0)].add(interval.histogram)
    return {
        f"{level['level']:g}{unit} {'pass' if level.get('ok') else 'fail'}": total
        for level, total in zip(levels, totals, strict=True)
        if total.get_total_count()
    }


def _time_series(data: ResultsData, figures: _Figures) -> Iterator[str]:
    yield "<h2>Over time</h2>"
    events = data.summary.get("events") or []
    timed = []
    if data.timeline:
        timed.append(charts.rate_figure(data.timeline))
        timed.append(charts.in_flight_figure(data.timeline))
        timed.append(charts.outcomes_figure(data.timeline))
    else:
        yield "<p>No timeline.jsonl in this results directory: no rate or outcome series.</p>"
    series = {tag: data.intervals[tag] for tag in _INTERVAL_TAGS if data.intervals.get(tag)}
    if series:
        timed.append(charts.interval_p99_figure(series))
    for metric in _BANDED:
        if data.intervals.get(metric):
            timed.append(charts.percentile_bands_figure(metric, data.intervals[metric]))
    divs = [figures.div(charts.mark_events(fig, events)) for fig in timed]
    yield '<div class="charts">' + "".join(divs) + "</div>"


def _codes(summary: Mapping[str, Any], figures: _Figures) -> Iterator[str]:
    behaviours = summary.get("behaviours", {})
    yield "<h2>Close codes</h2>"
    if any(any(b.get("close_codes", {}).values()) for b in behaviours.values()):
        yield figures.div(charts.close_codes_figure(behaviours))
    else:
        yield "<p>No Close frame was sent or received.</p>"


def _wait(seconds: object) -> str:
    """``generator.cpu_wait_s``: time other processes held the CPU the generator wanted."""
    return "n/a" if not isinstance(seconds, int | float) else f"{seconds:.2f} s"


def _generator(summary: Mapping[str, Any], figures: _Figures) -> Iterator[str]:
    generator = summary.get("generator", {})
    yield "<h2>Generator</h2>"
    yield (
        f"<p>saturated: <b id=saturated>{'yes' if generator.get('saturated') else 'no'}</b> · "
        f"CPU {float(generator.get('cpu_seconds') or 0):.2f} s · waiting for a CPU "
        f"{_wait(generator.get('cpu_wait_s'))} · processes "
        f"{_e(generator.get('processes', 1))} · loop lag p99 "
        f"{format_us((generator.get('loop_lag_us') or {}).get('p99'))}</p>"
    )
    yield figures.div(charts.generator_figure(generator))


def _server(summary: Mapping[str, Any], figures: _Figures) -> Iterator[str]:
    server = summary.get("server")
    if not server:
        return
    yield "<h2>Server side (built-in server)</h2>"
    yield figures.div(charts.server_figure(server))
    yield '<table id="server">'
    for key, value in server.items():
        yield f"<tr><th>{_e(key.replace('_', ' '))}</th><td>{_e(_in_words(key, value))}</td></tr>"
    yield "</table>"


def _in_words(key: str, value: object) -> str:
    """A server counter for people: ``1000 (Normal Closure) × 800, 1006 (Abnormal Closure) × 200``
    for a code table, ``server 800, client 200`` for another table, ``-`` for an empty one."""
    if isinstance(value, Mapping):
        if not value:
            return "-"
        coded = key.startswith("close_codes")
        return ", ".join(
            f"{code_label(int(name)) if coded and str(name).isdigit() else name} × {n:,}"
            if isinstance(n, int)
            else f"{name}: {n}"
            for name, n in value.items()
        )
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return json.dumps(value) if isinstance(value, list) else str(value)


def _events(summary: Mapping[str, Any], figures: _Figures) -> Iterator[str]:
    for text, fig in deploys.event_sections(summary):
        yield text
        if fig is not None:
            yield figures.div(fig)


def _search(summary: Mapping[str, Any], figures: _Figures) -> Iterator[str]:
    search = summary.get("search")
    if not isinstance(search, Mapping) or not search.get("levels"):
        return
    capacity = search.get("capacity")
    yield "<h2>Capacity search</h2>"
    yield (
        f"<p>{_e(search.get('parameter'))}: capacity "
        f"<b>{_e('not found' if capacity is None else f'{capacity:g}')}</b> "
        f"({_e(search.get('reason', ''))})</p>"
    )
    for entry in search.get("levels", []):
        for text in entry.get("few_samples") or ():
            level = float(entry.get("level") or 0)
            yield f'<p class="warn">level {level:g}: {_e(text)}</p>'
    yield figures.div(charts.search_figure(search))
