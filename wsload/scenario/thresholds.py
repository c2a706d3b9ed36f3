"""The ``[thresholds]`` table: ``"close_handshake.p99" = "< 50ms"`` → ``Threshold``.

Expressions are validated here against the metric, stat, outcome and label names so that a typo
fails at ``wsload validate`` time instead of silently never matching after a long run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, cast

from wsload.core.outcomes import Outcome
from wsload.scenario._table import Table, either, hint, show
from wsload.scenario.durations import parse_duration
from wsload.scenario.model import METRICS, STATS, STEP_PREFIX, Threshold

__all__ = [
    "EVENT_COUNTS",
    "EVENT_METRICS",
    "RECONNECT_COUNTS",
    "RECONNECT_METRICS",
    "metric_parts",
    "parse_thresholds",
]

_OPS = ("<=", ">=", "==", "!=", "<", ">")
_ROOTS = (
    "behaviours", "outcomes", "close_codes", "close_events", "generator", "events", "attempts",
    "reconnect", "http_statuses", "subprotocols",
)  # fmt: skip
RECONNECT_COUNTS = ("clients", "reconnected", "gave_up")
"""``reconnect.<count>``: logical clients; with a percentage a share of ``reconnect.clients``."""
RECONNECT_METRICS = ("time_to_reconnect", "reconnect_delay")
"""``reconnect.<metric>.<stat>``: summary ``reconnect.latency_us`` (µs)."""
_STATUS_RE = re.compile(r"^[1-9][0-9]{2}$")
_TOKEN_RE = re.compile(r"^[!#$%&'*+^_`|~0-9A-Za-z-]+$")
EVENT_COUNTS = ("open_at_signal", "closed_clean", "closed_abnormal", "still_open_at_exit")
"""``events.<i>.<count>``: a count, or with a percentage a share of ``open_at_signal``."""
EVENT_METRICS = ("close_received", "eof")
"""``events.<i>.<metric>.<stat>``: µs from the event's signal (summary ``latency_us``)."""
_CODE_RE = re.compile(r"^(0|[1-9][0-9]{0,4})$")


def metric_parts(parts: list[str]) -> list[str]:
    """``["step", "subscribe", "p99"]`` → ``["step.subscribe", "p99"]``: the one metric name
    with a dot in it (``step.<name>``) as one part; anything else unchanged."""
    if len(parts) >= 2 and parts[0] == STEP_PREFIX[:-1]:
        return [STEP_PREFIX + parts[1], *parts[2:]]
    return parts


def parse_thresholds(
    t: Table, labels: tuple[str, ...], steps: tuple[str, ...] = (), *, reconnect: bool = True
) -> tuple[Threshold, ...]:
    """Parse ``[thresholds]``: one ``Threshold`` per expression, in file order.

    ``steps`` are the scenario's ``step.<name>`` metrics (its named expect steps);
    ``reconnect``: the scenario has a ``[reconnect]`` table (``reconnect.*`` needs one).

    Expressions may be quoted (``"close_handshake.p99" = "< 50ms"``) or written as TOML dotted
    keys (``close_handshake.p99 = "< 50ms"``, which TOML turns into nested tables); both mean
    the same, so nested tables are flattened back into dotted expressions here.
    """
    out = []
    t.known.extend(t.data)
    flat: dict[str, object] = {}
    for expr, cond in _flatten(t.data, ""):
        if expr in flat:
            raise t.error(expr, "given twice (once quoted, once as a dotted key)")
        flat[expr] = cond
    for expr, cond in flat.items():
        if not isinstance(cond, str):
            raise t.error(
                expr, f'expected a condition string like "< 50ms" or "> 99%", got {show(cond)}'
            )
        unit = _threshold_unit(t, expr, labels, (*METRICS, *steps), reconnect)
        op, value = _condition(t, expr, cond, unit)
        if unit == "count" and cond.strip().endswith("%"):
            unit = "share"
        out.append(
            Threshold(
                expr=expr, op=cast(Any, op), value=value, unit=cast(Any, unit), text=cond.strip()
            )
        )
    t.finish()
    return tuple(out)


def _flatten(data: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, object]]:
    """``{"a": {"b": x}}`` → ``("a.b", x)``, depth first, in file order.

    Iterative: TOML nests dotted keys thousands deep without recursing, so must this.
    """
    stack: list[tuple[Iterator[tuple[str, Any]], str]] = [(iter(data.items()), prefix)]
    while stack:
        items, base = stack[-1]
        for key, value in items:
            expr = f"{base}{key}"
            if isinstance(value, dict) and value:
                stack.append((iter(value.items()), expr + "."))
                break
            yield expr, value
        else:
            stack.pop()


def _threshold_unit(
    t: Table, expr: str, labels: tuple[str, ...], metrics: tuple[str, ...], reconnect: bool
) -> str:
    """Validate an expression's shape; return its unit.

    ``count`` (outcomes, close codes, ``<metric>.count``) becomes ``share`` when the condition
    is a percentage: a share of the connections attempted (in that behaviour).
    """
    parts = expr.split(".")
    if parts[0] == "reconnect":
        if not reconnect:
            raise t.error(expr, "needs a [reconnect] table (no client reconnects without one)")
        return _reconnect_unit(t, expr, parts)
    if parts[0] == "subprotocols":
        if len(parts) != 2 or not _TOKEN_RE.match(parts[1]):
            raise t.error(
                expr,
                "expected subprotocols.<name> (a subprotocol the server selected; "
                "subprotocols.none: connections it selected none for)",
            )
        return "count"
    if parts[0] == "attempts":  # [reconnect]: a step's count per attempt, not per client
        metric = metric_parts(parts[1:])
        if len(metric) != 2 or metric[0] not in metrics or metric[1] != "count":
            raise t.error(expr, "expected attempts.<metric>.count (a count per attempt)")
        return "count"
    if parts[0] == "generator":
        if parts != ["generator", "saturated"]:
            raise t.error(expr, "expected generator.saturated (the only generator threshold)")
        return "bool"
    if parts[0] == "events":
        return _event_unit(t, expr, parts)
    if parts[0] == "behaviours":
        if len(parts) < 3:
            raise t.error(
                expr,
                "expected behaviours.<label>.<metric>.<stat>, behaviours.<label>.outcomes."
                "<outcome>, behaviours.<label>.close_codes.<sent|received>.<code> or "
                "behaviours.<label>.close_events.<...>",
            )
        if parts[1] not in labels:
            raise t.error(expr, f"no close behaviour labelled {parts[1]!r}{hint(parts[1], labels)}")
        parts = parts[2:]
    if parts[0] == "http_statuses":
        if len(parts) != 2 or not _STATUS_RE.match(parts[1]):
            got = parts[1] if len(parts) > 1 else ""
            raise t.error(
                expr, f"expected http_statuses.<status> like http_statuses.401, got {got!r}"
            )
        return "count"
    if parts[0] == "outcomes":
        names = tuple(o.value for o in Outcome)
        if len(parts) != 2 or parts[1] not in names:
            got = parts[1] if len(parts) > 1 else ""
            raise t.error(
                expr, f"expected outcomes.<outcome> with one of {either(names)}{hint(got, names)}"
            )
        return "count"
    if parts[0] == "close_codes":
        if len(parts) != 3 or parts[1] not in ("sent", "received"):
            raise t.error(expr, "expected close_codes.sent.<code> or close_codes.received.<code>")
        _check_code(t, expr, parts[2])
        return "count"
    if parts[0] == "close_events":
        # close_events.<code>, close_events.<code>.<clean|unclean>, close_events.<clean|unclean>
        rest = parts[1:]
        tail = rest[-1:] == ["clean"] or rest[-1:] == ["unclean"]
        code = rest[:-1] if tail else rest
        if len(code) > 1 or not (code or tail) or code[:1] in (["clean"], ["unclean"]):
            raise t.error(
                expr,
                "expected close_events.<code> (like close_events.1006), "
                "close_events.<code>.<clean|unclean> or close_events.<clean|unclean>",
            )
        if code:
            _check_code(t, expr, code[0])
        return "count"
    parts = metric_parts(parts)
    if len(parts) != 2 or parts[0] not in metrics or parts[1] not in STATS:
        if parts[0] not in metrics:
            suggestion = hint(parts[0], (*metrics, *_ROOTS))
            raise t.error(
                expr,
                f"unknown metric {parts[0]!r}{suggestion}; metrics: {', '.join(metrics)} "
                "(or outcomes.*, close_codes.*, close_events.*, behaviours.*, "
                "generator.saturated; step.<name> for a named expect step)",
            )
        got = parts[1] if len(parts) > 1 else ""
        raise t.error(
            expr, f"expected <metric>.<stat> with stat one of {', '.join(STATS)}{hint(got, STATS)}"
        )
    return "count" if parts[1] == "count" else "us"


def _reconnect_unit(t: Table, expr: str, parts: list[str]) -> str:
    """``reconnect.gave_up`` (count/share of clients) or ``reconnect.time_to_reconnect.p99``."""
    shape = (
        f"expected reconnect.<{'|'.join(RECONNECT_COUNTS)}> or "
        f"reconnect.<{'|'.join(RECONNECT_METRICS)}>.<stat>"
    )
    if len(parts) == 2 and parts[1] in RECONNECT_COUNTS:
        return "count"
    if len(parts) == 3 and parts[1] in RECONNECT_METRICS and parts[2] in STATS:
        return "count" if parts[2] == "count" else "us"
    got = parts[1] if len(parts) > 1 else ""
    raise t.error(expr, f"{shape}{hint(got, (*RECONNECT_COUNTS, *RECONNECT_METRICS))}")


def _check_code(t: Table, expr: str, code: str) -> None:
    # Results key codes by their decimal spelling: "01000" or "1e3" would never match.
    if not _CODE_RE.match(code) or int(code) > 65535:
        raise t.error(
            expr, f"expected a close code 0-65535 written plainly (like 1000), got {code!r}"
        )


def _event_unit(t: Table, expr: str, parts: list[str]) -> str:
    """``events.0.closed_clean`` (count/share) or ``events.0.close_received.p99`` (µs)."""
    shape = (
        f"expected events.<index>.<{'|'.join(EVENT_COUNTS)}> or "
        f"events.<index>.<{'|'.join(EVENT_METRICS)}>.<stat>"
    )
    if len(parts) < 3 or not _CODE_RE.match(parts[1]):
        raise t.error(expr, shape)
    if len(parts) == 3 and parts[2] in EVENT_COUNTS:
        return "count"
    if len(parts) == 4 and parts[2] in EVENT_METRICS and parts[3] in STATS:
        return "count" if parts[3] == "count" else "us"
    got = parts[2]
    raise t.error(expr, f"{shape}{hint(got, (*EVENT_COUNTS, *EVENT_METRICS))}")


def _condition(t: Table, expr: str, cond: str, unit: str) -> tuple[str, float]:
    text = cond.strip()
    op = next((o for o in _OPS if text.startswith(o)), None)
    if op is None:
        raise t.error(expr, f'expected a condition like "< 50ms", "> 99%" or "== 0", got {cond!r}')
    rest = text[len(op) :].strip()
    if unit == "bool":
        if rest not in ("true", "false") or op not in ("==", "!="):
            raise t.error(expr, f'expected "== false" or "== true", got {cond!r}')
        return op, 1.0 if rest == "true" else 0.0
    if unit == "us":
        if _is_number(rest):
            raise t.error(expr, f'a latency needs a unit, e.g. "{op} {rest}ms", got {cond!r}')
        try:
            micros = parse_duration(rest) * 1e6
        except ValueError as exc:
            raise t.error(expr, f"{exc} in {cond!r}") from None
        # "50ms" is 50000 µs, not 50000.000000000004: snap float noise to whole microseconds.
        whole = round(micros)
        return op, float(whole) if abs(micros - whole) < 1e-6 else micros
    if rest.endswith("%"):
        number = rest[:-1].strip()
        if not _is_number(number) or not 0 <= float(number) <= 100:
            raise t.error(expr, f"expected a percentage 0-100%, got {cond!r}")
        return op, float(number) / 100
    if not _is_number(rest) or float(rest) < 0:
        raise t.error(expr, f'expected a count >= 0 or a percentage like "> 99%", got {cond!r}')
    return op, float(rest)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
