"""Plotly figures for report.html, each a pure function of results data.

The percentile-distribution charts follow HdrHistogram's plotter: the x axis is
``1 / (1 - p)`` on a log scale, labelled 0 %, 90 %, 99 %, 99.9 %..., so each decade of "nines"
gets the same width and the tail, where close problems live, is not squashed into the right
edge. The curves come from the full histograms (the hlog's intervals added), not from the
handful of percentiles in summary.json.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from hdrh.histogram import HdrHistogram

from wsload.core.codes import code_name
from wsload.metrics.histograms import histogram_stats
from wsload.report.results import Interval

__all__ = [
    "close_codes_figure",
    "generator_figure",
    "in_flight_figure",
    "interval_p99_figure",
    "mark_events",
    "outcomes_figure",
    "percentile_bands_figure",
    "percentile_figure",
    "percentile_points",
    "rate_figure",
    "search_figure",
    "server_figure",
]

_LAYOUT: dict[str, Any] = {  # the template is the page's (wsload.report.html.TEMPLATE)
    "height": 360,
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "legend": {"orientation": "h", "y": -0.2},
    "showlegend": True,  # a single-series chart names its series too
}
_STEPS_PER_DECADE = 20


def percentile_points(histogram: HdrHistogram) -> tuple[list[float], list[float], list[float]]:
    """``(x = 1/(1-p), latency ms, percentile %)`` along the distribution, ending at the max.

    Points are spaced evenly on the log axis up to the last rank the sample count supports
    (``x <= count``): beyond it every percentile is the maximum.
    """
    count = histogram.get_total_count()
    xs: list[float] = []
    ys: list[float] = []
    ps: list[float] = []
    if count == 0:
        return xs, ys, ps
    k = 0
    while (x := 10 ** (k / _STEPS_PER_DECADE)) < count:
        percentile = 100.0 * (1.0 - 1.0 / x)
        xs.append(x)
        ys.append(histogram.get_value_at_percentile(percentile) / 1000)
        ps.append(percentile)
        k += 1
    xs.append(float(max(count, 1)))
    ys.append(histogram.get_max_value() / 1000)
    ps.append(100.0)
    return xs, ys, ps


def percentile_figure(metric: str, curves: Mapping[str, HdrHistogram]) -> go.Figure:
    """One metric's latency by percentile, one trace per behaviour (``curves``: label → hist)."""
    fig = go.Figure()
    top = 1.0
    for label, histogram in curves.items():
        xs, ys, ps = percentile_points(histogram)
        if not xs:
            continue
        top = max(top, xs[-1])
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                customdata=ps,
                mode="lines",
                line_shape="hv",
                name=f"{label} ({histogram.get_total_count():,})",
                hovertemplate="p%{customdata:.4f}: %{y:.3f} ms<extra>" + label + "</extra>",
            )
        )
    ticks = [10.0**n for n in range(0, 8) if 10.0**n <= top * 1.001]
    labels = ["0%"] + [f"{100 - 100 / t:.{max(0, n - 2)}f}%" for n, t in enumerate(ticks) if n]
    fig.update_layout(
        title=f"{metric}: latency by percentile",
        xaxis={"type": "log", "tickvals": ticks, "ticktext": labels, "title": "percentile"},
        yaxis={"title": "latency (ms)", "rangemode": "tozero"},
        **_LAYOUT,
    )
    return fig


def rate_figure(timeline: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Connections started, finished and dropped per second, per interval.

    The collector counts a connection when it finishes; the ones started in an interval are
    those that finished plus the growth of the in-flight gauge.
    """
    fig = go.Figure()
    t = [e.get("t", 0.0) for e in timeline]
    previous = 0
    started = []
    for entry in timeline:
        in_flight = int(entry.get("in_flight", 0))
        started.append({**entry, "started": int(entry.get("attempted", 0)) + in_flight - previous})
        previous = in_flight
    series = (("started", "started/s"), ("attempted", "finished/s"), ("dropped", "dropped/s"))
    for key, name in series:
        ys = [_per_second(e, key) for e in started]
        if key == "dropped" and not any(ys):
            continue
        fig.add_trace(go.Scatter(x=t, y=ys, mode="lines+markers", name=name))
    fig.update_layout(
        title="rate per interval", xaxis_title="seconds", yaxis_title="per second", **_LAYOUT
    )
    return fig


def in_flight_figure(timeline: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Connections open at the end of each interval."""
    fig = go.Figure(
        go.Scatter(
            x=[e.get("t", 0.0) for e in timeline],
            y=[e.get("in_flight", 0) for e in timeline],
            mode="lines+markers",
            name="in flight",
        )
    )
    fig.update_layout(
        title="in flight", xaxis_title="seconds", yaxis_title="connections", **_LAYOUT
    )
    return fig


def outcomes_figure(timeline: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Outcomes of the connections that finished in each interval (stacked)."""
    names: list[str] = []
    for entry in timeline:
        names += [n for n in entry.get("outcomes", {}) if n not in names]
    t = [e.get("t", 0.0) for e in timeline]
    fig = go.Figure(
        [
            go.Bar(x=t, y=[e.get("outcomes", {}).get(name, 0) for e in timeline], name=name)
            for name in names
        ]
    )
    fig.update_layout(
        title="outcomes per interval",
        barmode="stack",
        xaxis_title="seconds",
        yaxis_title="connections",
        **_LAYOUT,
    )
    return fig


def interval_p99_figure(series: Mapping[str, Sequence[Interval]]) -> go.Figure:
    """p99 of each metric (tag → its intervals) per interval."""
    fig = go.Figure()
    for tag, intervals in series.items():
        fig.add_trace(
            go.Scatter(
                x=[i.t for i in intervals],
                y=[i.histogram.get_value_at_percentile(99) / 1000 for i in intervals],
                mode="lines+markers",
                name=tag,
            )
        )
    fig.update_layout(
        title="close p99 per interval", xaxis_title="seconds", yaxis_title="ms", **_LAYOUT
    )
    return fig


_BANDS = (("p50", None), ("p90", "tonexty"), ("p99", "tonexty"))


def percentile_bands_figure(metric: str, intervals: Sequence[Interval]) -> go.Figure:
    """p50, p90 and p99 of ``metric`` per interval with the bands between them filled, and the
    max dotted: how the distribution moved over the run (Gatling's percentiles over time)."""
    t = [i.t for i in intervals]
    stats = [histogram_stats(i.histogram) for i in intervals]
    fig = go.Figure()
    for key, fill in (*_BANDS, ("max", None)):
        y = [None if s[key] is None else s[key] / 1000 for s in stats]
        line = {"dash": "dot"} if key == "max" else {}
        fig.add_trace(go.Scatter(x=t, y=y, mode="lines", name=key, fill=fill, line=line))
    fig.update_layout(
        title=f"{metric}: percentiles per interval",
        xaxis_title="seconds",
        yaxis_title="ms",
        **_LAYOUT,
    )
    return fig


def mark_events(fig: go.Figure, events: Sequence[Mapping[str, Any]]) -> go.Figure:
    """A dotted line at each deploy event's signal (``events[].at_s``, seconds from the start
    of the load: the time axis of every time chart)."""
    for event in events:
        at = event.get("at_s")
        if isinstance(at, int | float):
            fig.add_vline(
                x=at, line_dash="dot", line_color="#6c757d", annotation_text=str(event["signal"])
            )
    return fig


def close_codes_figure(behaviours: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """Close codes sent and received, grouped by code, one bar per behaviour and direction."""
    codes = sorted(
        {
            int(code)
            for b in behaviours.values()
            for side in ("sent", "received")
            for code in b.get("close_codes", {}).get(side, {})
        }
    )
    x = [f"{code} {code_name(code)}" for code in codes]
    fig = go.Figure()
    for label, behaviour in behaviours.items():
        for side in ("sent", "received"):
            counted = behaviour.get("close_codes", {}).get(side, {})
            if counted:
                y = [counted.get(str(code), 0) for code in codes]
                fig.add_trace(go.Bar(x=x, y=y, name=f"{label} {side}"))
    fig.update_layout(
        title="close codes sent and received", barmode="group", yaxis_title="frames", **_LAYOUT
    )
    return fig


def generator_figure(generator: Mapping[str, Any], limit_ms: float = 20.0) -> go.Figure:
    """The generator's loop lag (and start lag) percentiles against the saturation limit."""
    stats = ("p50", "p90", "p99", "p999", "max")
    fig = go.Figure()
    for key, name in (("loop_lag_us", "loop lag"), ("start_lag_us", "start lag")):
        values = generator.get(key)
        if values and values.get("count"):
            y = [(values.get(s) or 0) / 1000 for s in stats]
            fig.add_trace(go.Bar(x=list(stats), y=y, name=name))
    fig.add_hline(y=limit_ms, line_dash="dash", annotation_text=f"saturation {limit_ms:g} ms")
    saturated = "SATURATED" if generator.get("saturated") else "not saturated"
    fig.update_layout(
        title=f"generator lag ({saturated})", barmode="group", yaxis_title="ms", **_LAYOUT
    )
    return fig


def server_figure(server: Mapping[str, Any]) -> go.Figure:
    """The built-in server's side of the closes: codes it received (a connection that ended
    without a Close counts as 1006, as the server logs it) and sent, and who closed TCP first."""
    received = {str(k): int(v) for k, v in (server.get("close_codes_received") or {}).items()}
    sent = {str(k): int(v) for k, v in (server.get("close_codes_sent") or {}).items()}
    codes = sorted({*received, *sent}, key=int)
    x = [f"{code} {code_name(int(code))}" for code in codes]
    tcp_first = server.get("tcp_closed_first") or {}
    fig = go.Figure(
        [
            go.Bar(x=x, y=[received.get(c, 0) for c in codes], name="received"),
            go.Bar(x=x, y=[sent.get(c, 0) for c in codes], name="sent"),
            go.Bar(
                x=["TCP closed first by server", "TCP closed first by client"],
                y=[int(tcp_first.get("server") or 0), int(tcp_first.get("client") or 0)],
                name="TCP closed first",
            ),
        ]
    )
    fig.update_layout(
        title="server side: closes", barmode="group", yaxis_title="connections", **_LAYOUT
    )
    return fig


def search_figure(search: Mapping[str, Any]) -> go.Figure:
    """Capacity search: close p99 and clean share against the load level, the levels sorted by
    load (a line between two levels then joins neighbours, never levels visited one after
    the other with others between them), each labelled with its place in the visit order."""
    visited = list(search.get("levels", []))
    order = sorted(range(len(visited)), key=lambda i: float(visited[i].get("level") or 0))
    levels = [visited[i] for i in order]
    labels = [f"#{i + 1}" for i in order]
    x = [lv.get("level") for lv in levels]
    p99 = [None if lv.get("close_p99_us") is None else lv["close_p99_us"] / 1000 for lv in levels]
    share = [None if lv.get("clean_share") is None else 100 * lv["clean_share"] for lv in levels]
    colours = ["#2a9d8f" if lv.get("ok") else "#e63946" for lv in levels]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=p99,
            mode="lines+markers+text",
            text=labels,
            textposition="top center",
            name="close p99 (ms)",
            marker={"color": colours, "size": 10},
        )
    )
    fig.add_trace(
        go.Scatter(x=x, y=share, mode="lines+markers", name="clean share (%)", yaxis="y2")
    )
    capacity = search.get("capacity")
    if capacity is not None:
        fig.add_vline(x=capacity, line_dash="dash", annotation_text=f"capacity {capacity:g}")
    parameter = str(search.get("parameter", "level"))
    fig.update_layout(
        title=f"capacity search by {parameter}",
        xaxis_title=parameter,
        yaxis={"title": "close p99 (ms)", "rangemode": "tozero"},
        yaxis2={
            "title": "clean share (%)",
            "overlaying": "y",
            "side": "right",
            "range": [0, 101],
            "tickvals": [0, 20, 40, 60, 80, 100],
        },
        **_LAYOUT,
    )
    return fig


def _per_second(entry: Mapping[str, Any], key: str) -> float:
    length = float(entry.get("length") or 0.0)
    return round(float(entry.get(key, 0)) / length, 3) if length > 0 else 0.0
