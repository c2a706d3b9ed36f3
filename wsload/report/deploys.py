"""A deploy's figures for people: the shutdown audit and the reconnects, in the terminal and in
report.html. Pure functions of summary.json (``events``, ``server_process``, ``reconnect``).
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from typing import Any

import plotly.graph_objects as go
from rich.text import Text

from wsload.core.codes import code_name
from wsload.report._format import format_us
from wsload.report.fit import Col, FitTable

__all__ = [
    "clients_line",
    "closes_after_signal_figure",
    "event_sections",
    "events_table",
    "reconnect_table",
]

_LAYOUT: dict[str, Any] = {  # the template is the page's (wsload.report.html.TEMPLATE)
    "height": 360,
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "legend": {"orientation": "h", "y": -0.2},
}


def _share(count: int, total: int) -> str:
    return f"{count:,}" if total <= 0 else f"{count:,} ({100 * count / total:.1f} %)"


_EVENT_COLUMNS = (
    Col("event"),
    Col("open", "right"),
    Col("clean", "right"),
    Col("1006", "right"),
    Col("open at exit", "right"),
    Col("Close p99", "right"),
    Col("EOF p99", "right"),
    Col("exit (status)", "right"),
)
_RECONNECT_COLUMNS = (
    Col("clients", "right"),
    Col("reconnected", "right"),
    Col("gave up", "right"),
    Col("attempts p99", "right"),
    Col("delay p99", "right"),
    Col("reconnect p50", "right"),
    Col("reconnect p99", "right"),
)


def events_table(summary: Mapping[str, Any]) -> FitTable | None:
    """One row per ``[[target.process.events]]`` entry: what the signal did to the clients."""
    events = summary.get("events") or []
    if not events:
        return None
    table = FitTable("Events (times from the signal)", _EVENT_COLUMNS)
    for index, event in enumerate(events):
        opened = int(event.get("open_at_signal") or 0)
        latency = event.get("latency_us") or {}
        close, eof = latency.get("close_received") or {}, latency.get("eof") or {}
        exit_s, status = event.get("exit_s"), event.get("exit_status")
        ended = "-" if exit_s is None else f"{exit_s:.3f} s ({status})"
        sent = "" if event.get("pid") else " (not running)"
        table.add_row(
            Text(f"{index}: {event.get('signal')} at {float(event.get('at_s') or 0):g}s{sent}"),
            f"{opened:,}",
            _share(int(event.get("closed_clean") or 0), opened),
            _share(int(event.get("closed_abnormal") or 0), opened),
            _share(int(event.get("still_open_at_exit") or 0), opened),
            format_us(close.get("p99")),
            format_us(eof.get("p99")),
            ended,
        )
    return table


def reconnect_table(summary: Mapping[str, Any]) -> FitTable | None:
    """Logical clients: reconnected, gave up, attempts, and the time to be upgraded again."""
    reconnect = summary.get("reconnect")
    if not reconnect:
        return None
    table = FitTable("Reconnects (logical clients)", _RECONNECT_COLUMNS)
    clients = int(reconnect.get("clients") or 0)
    latency = reconnect.get("latency_us") or {}
    ttr = latency.get("time_to_reconnect") or {}
    attempts = reconnect.get("attempts") or {}
    table.add_row(
        f"{clients:,}",
        _share(int(reconnect.get("reconnected") or 0), clients),
        _share(int(reconnect.get("gave_up") or 0), clients),
        str(attempts.get("p99", "-")),
        format_us((latency.get("reconnect_delay") or {}).get("p99")),
        format_us(ttr.get("p50")),
        format_us(ttr.get("p99")),
    )
    return table


def closes_after_signal_figure(index: int, event: Mapping[str, Any]) -> go.Figure:
    """Closes over time after the signal: one cumulative curve per close code (1006: no Close)."""
    fig = go.Figure()
    for code, points in (event.get("closes_over_time") or {}).items():
        fig.add_trace(
            go.Scatter(
                x=[p[0] / 1000 for p in points],
                y=[p[1] for p in points],
                mode="lines",
                line_shape="hv",
                name=f"{code} {code_name(int(code))}",
            )
        )
    fig.update_layout(
        title=f"event {index}: {event.get('signal')} at {event.get('at_s')} s, closes after it",
        xaxis_title="ms after the signal",
        yaxis_title="connections closed",
        **_LAYOUT,
    )
    return fig


def event_sections(summary: Mapping[str, Any]) -> Iterator[tuple[str, go.Figure | None]]:
    """report.html's deploy section: ``(html text, figure to render after it or None)``."""
    events = summary.get("events") or []
    if not events:
        return
    yield "<h2>Events (shutdown audit)</h2>", None
    for index, event in enumerate(events):
        opened = int(event.get("open_at_signal") or 0)
        text = (
            f"event {index}: {event.get('signal')} at {event.get('at_s')} s to pid "
            f"{event.get('pid')}; {opened:,} open at the signal, "
            f"{_share(int(event.get('closed_clean') or 0), opened)} closed clean, "
            f"{_share(int(event.get('closed_abnormal') or 0), opened)} 1006, "
            f"{int(event.get('still_open_at_exit') or 0):,} still open at exit"
        )
        yield f"<p>{html.escape(text)}</p>", closes_after_signal_figure(index, event)


def clients_line(reconnect: Mapping[str, Any]) -> str:
    """``1,000 clients, 3,075 attempts, 1,000 reconnected, 0 gave up; clean 100.0 % of
    clients``: a ``[reconnect]`` run counted in logical clients (every attempt is a
    connection of the outcome tables; the clean share here is per client)."""
    clients = int(reconnect.get("clients") or 0)
    attempts = int(reconnect.get("attempts_total") or 0)
    clean = int(reconnect.get("clean") or 0)
    share = f"{100 * clean / clients:.1f} %" if clients else "-"
    return (
        f"{clients:,} clients, {attempts:,} attempts, {int(reconnect.get('reconnected') or 0):,} "
        f"reconnected, {int(reconnect.get('gave_up') or 0):,} gave up; clean {share} of clients"
    )
