"""Pass/fail of the scenario's ``[thresholds]`` against a summary dict.

Evaluation reads only the summary (the same JSON CI keeps), so a verdict can be recomputed from
a results directory alone. A threshold whose figure does not exist in the run (a metric with no
samples, a share of zero attempted connections, an unknown label) *fails* with a value that
says so: a run that measured nothing must not pass a latency gate.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wsload.metrics.histograms import HIGHEST_US
from wsload.report._format import format_stat, format_us
from wsload.scenario.model import STATS, STEP_PREFIX, Threshold, is_metric
from wsload.scenario.thresholds import metric_parts

__all__ = ["ThresholdResult", "evaluate", "evaluate_one"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    """The verdict on one threshold.

    Attributes:
        expr: the expression (``close_handshake.p99``).
        condition: the user's condition text (``< 50ms``).
        unit: ``us``, ``share`` (0..1), ``count`` or ``bool`` (0/1).
        value: what the run measured, in ``unit`` (``inf`` past the histogram's 1 h range),
            None when there is nothing to measure.
        ok: the threshold holds.
        detail: the measured value for people: ``62.1 ms``, ``81.2 % (812 of 1000)``,
            ``no samples``.
    """

    expr: str
    condition: str
    unit: str
    value: float | None
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """The summary.json form (``value`` null when not finite or not measured)."""
        value = self.value
        if value is not None and math.isinf(value):
            value = None
        elif value is not None and self.unit in ("count", "us") and value == int(value):
            value = int(value)
        elif value is not None and self.unit == "bool":
            value = bool(value)
        return {
            "expr": self.expr,
            "condition": self.condition,
            "unit": self.unit,
            "value": value,
            "ok": self.ok,
            "detail": self.detail,
        }


def evaluate(thresholds: Iterable[Threshold], summary: Mapping[str, Any]) -> list[ThresholdResult]:
    """Evaluate every threshold against ``summary`` (``build_summary`` output), in order."""
    return [evaluate_one(threshold, summary) for threshold in thresholds]


def evaluate_one(threshold: Threshold, summary: Mapping[str, Any]) -> ThresholdResult:
    """Evaluate one threshold; never raises on a missing figure (it fails instead)."""
    value, detail = _measure(threshold, summary)
    compare = _OPS.get(threshold.op)
    if compare is None:
        ok, detail = False, f"unknown operator {threshold.op!r}"
    else:
        target = threshold.value
        if threshold.unit == "us":
            # "999us" parses to 999.0000000000001 µs through float seconds; whole ns is plenty.
            target = round(target, 3)
        ok = value is not None and compare(value, target)
    return ThresholdResult(
        expr=threshold.expr,
        condition=threshold.text or f"{threshold.op} {threshold.value:g}",
        unit=threshold.unit,
        value=value,
        ok=ok,
        detail=detail,
    )


def _measure(threshold: Threshold, summary: Mapping[str, Any]) -> tuple[float | None, str]:
    """The measured value for ``threshold.expr`` in its unit, and how to show it."""
    parts = threshold.expr.split(".")
    if parts == ["generator", "saturated"]:
        saturated = bool(summary.get("generator", {}).get("saturated", False))
        return (1.0 if saturated else 0.0), ("true" if saturated else "false")
    scope: Mapping[str, Any] = summary
    attempted = int(summary.get("totals", {}).get("attempted", 0))
    if parts[0] == "events" and len(parts) >= 3:
        return _event(threshold, summary, parts)
    if parts[0] == "reconnect" and len(parts) >= 2:
        return _reconnect(threshold, summary, parts)
    if parts[0] == "subprotocols" and len(parts) == 2:
        chosen = summary.get("totals", {}).get("subprotocols", {})
        count = int(chosen.get("" if parts[1] == "none" else parts[1], 0))
        return _counted(threshold.unit, count, int(summary.get("totals", {}).get("opened", 0)))
    if parts[0] == "behaviours":
        if len(parts) < 3:
            return None, "incomplete expression"
        behaviour = summary.get("behaviours", {}).get(parts[1])
        if behaviour is None:
            return None, f"no behaviour labelled {parts[1]!r} in this run"
        scope, attempted, parts = behaviour, int(behaviour.get("attempted", 0)), parts[2:]
    if parts[0] == "outcomes" and len(parts) == 2:
        count = int(scope.get("outcomes", {}).get(parts[1], 0))
        return _counted(threshold.unit, count, attempted)
    if parts[0] == "http_statuses" and len(parts) == 2:
        count = int(scope.get("http_statuses", {}).get(parts[1], 0))
        return _counted(threshold.unit, count, attempted)
    if parts[0] == "close_codes" and len(parts) == 3 and parts[1] in ("sent", "received"):
        count = int(scope.get("close_codes", {}).get(parts[1], {}).get(parts[2], 0))
        return _counted(threshold.unit, count, attempted)
    if parts[0] == "close_events" and 2 <= len(parts) <= 3:
        if "close_events" not in scope:
            return None, "no close_events in this summary (an older wsload wrote it)"
        return _counted(threshold.unit, _close_events(scope, parts[1:]), attempted)
    per_attempt = parts[0] == "attempts"
    parts = metric_parts(parts[1:] if per_attempt else parts)
    if len(parts) == 2 and is_metric(parts[0]) and parts[1] in STATS:
        stats = scope.get("latency_us", {}).get(parts[0])
        if stats is None:
            return None, f"{parts[0]} not in the summary"
        reconnect = summary.get("reconnect")
        stepped = parts[0].startswith(STEP_PREFIX) and scope is summary
        if parts[1] == "count" and reconnect and stepped and not per_attempt:
            # [reconnect]: a step's share is of the logical clients that matched it
            matched = int((reconnect.get("steps") or {}).get(parts[0], 0))
            clients = int(reconnect.get("clients") or 0)
            value, detail = _counted(threshold.unit, matched, clients)
            return value, f"{detail} clients" if threshold.unit == "share" else detail
        if parts[1] == "count":
            return _counted(threshold.unit, int(stats.get("count") or 0), attempted)
        return _latency(stats, parts[1])
    return None, "not an expression wsload knows"


def _close_events(scope: Mapping[str, Any], path: list[str]) -> int:
    """Connections whose browser close event matches ``<code>``, ``<code>.<clean|unclean>``
    or ``<clean|unclean>`` (all codes)."""
    events: Mapping[str, Mapping[str, int]] = scope.get("close_events", {})
    if path[-1] in ("clean", "unclean"):
        codes = [path[0]] if len(path) == 2 else list(events)
        return sum(int(events.get(code, {}).get(path[-1], 0)) for code in codes)
    return sum(int(n) for n in events.get(path[0], {}).values())


def _event(
    threshold: Threshold, summary: Mapping[str, Any], parts: list[str]
) -> tuple[float | None, str]:
    """``events.<i>.<count>`` (share: of ``open_at_signal``) or ``events.<i>.<metric>.<stat>``."""
    events = summary.get("events") or []
    index = int(parts[1]) if parts[1].isdigit() else -1
    if not 0 <= index < len(events):
        return None, f"no event {parts[1]} in this run ({len(events)} events)"
    event = events[index]
    if event.get("pid") is None:
        return None, "the signal was not sent (the target was not running)"
    opened = int(event.get("open_at_signal") or 0)
    if len(parts) == 3:
        return _counted(threshold.unit, int(event.get(parts[2]) or 0), opened)
    stats = event.get("latency_us", {}).get(parts[2])
    if stats is None:
        return None, f"{parts[2]} not in the event"
    if parts[3] == "count":
        return _counted(threshold.unit, int(stats.get("count") or 0), opened)
    return _latency(stats, parts[3])


def _reconnect(
    threshold: Threshold, summary: Mapping[str, Any], parts: list[str]
) -> tuple[float | None, str]:
    """``reconnect.<count>`` (share: of the logical clients) or ``reconnect.<metric>.<stat>``."""
    reconnect = summary.get("reconnect")
    if not reconnect:
        return None, "no reconnect figures in this run"
    clients = int(reconnect.get("clients") or 0)
    if len(parts) == 2:
        return _counted(threshold.unit, int(reconnect.get(parts[1]) or 0), clients)
    stats = reconnect.get("latency_us", {}).get(parts[1])
    if stats is None:
        return None, f"{parts[1]} not in the summary"
    if parts[2] == "count":
        return _counted(threshold.unit, int(stats.get("count") or 0), clients)
    return _latency(stats, parts[2])


def _counted(unit: str, count: int, attempted: int) -> tuple[float | None, str]:
    if unit != "share":
        return float(count), f"{count:,}"
    if attempted <= 0:
        return None, "no connections attempted"
    share = count / attempted
    return share, f"{100 * share:.1f} % ({count:,} of {attempted:,})"


def _latency(stats: Mapping[str, Any], stat: str) -> tuple[float | None, str]:
    if stats.get(f"{stat}_censored"):  # unknown, beyond a timeout: an unknown value never passes
        return None, f"{format_stat(stats, stat)}: among the censored (unknown, never passes)"
    value = stats.get(stat)
    overflow = int(stats.get("overflow") or 0)
    if overflow and (value is None or value >= HIGHEST_US or stat == "mean"):
        # Samples over 1 h are counted, not binned: the statistic is "at least 1 h".
        return math.inf, f">= 1 h ({overflow:,} samples over the 1 h range)"
    if value is None:
        return None, "no samples"
    return float(value), format_us(value)
