"""The counters of one behaviour: ``Counts``, whose fields are the one table of counters.

Every counter is a field of ``Counts``; its ``metadata`` says how its keys read back from JSON.
Copying, merging, the flat ``name.key`` form of the interval snapshots (and so ``/metrics``)
and the wire form between processes all walk ``fields(Counts)``, so a counter added here
reaches every one of them without another list to update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.metrics.wire import close_events_to_json, count, counter, parse_close_events

__all__ = ["COUNTER_FIELDS", "MAX_REASONS", "MESSAGE_COUNTERS", "Counts", "message_counts"]

MAX_REASONS = 100
"""Distinct close reasons counted per behaviour (a server putting ids in its reasons is
bounded; the rest are ``other``)."""

MESSAGE_COUNTERS = (
    "messages_sent",
    "messages_received",
    "bytes_sent",
    "bytes_received",
    "messages_unmatched",
    "messages_auto_replied",
    "inbox_overflow",
)
"""Per-connection message counters summed per behaviour (summary.json ``totals``)."""


def message_counts(record: ConnectionRecord) -> tuple[int, int, int, int, int, int, int]:
    """``record``'s ``MESSAGE_COUNTERS``, in that order: read as attributes, not by name
    (``getattr`` with a name is a dictionary lookup even in the compiled build; the collector
    reads them once per finished connection). tests/core checks the order."""
    return (
        record.messages_sent,
        record.messages_received,
        record.bytes_sent,
        record.bytes_received,
        record.messages_unmatched,
        record.messages_auto_replied,
        record.inbox_overflow,
    )


_INT_KEYS = {"key": int}  # close codes, HTTP statuses: integers, string keys in JSON
_STR_KEYS = {"key": str}
_PAIR_KEYS: dict[str, Any] = {"key": None}  # (code, wasClean): its own JSON form (wire.py)


def _messages() -> dict[str, int]:
    return dict.fromkeys(MESSAGE_COUNTERS, 0)


@dataclass(slots=True)
class Counts:
    """Counters of one behaviour (or of all).

    ``Collector.counts`` hands out a copy, safe to keep; the collector's own per-behaviour
    entries are a subclass updated in place on the hot path.

    Attributes:
        attempted: connections that got a record (dropped ones are not attempted).
        opened: connections whose upgrade succeeded (``upgraded`` stamped).
        outcomes: outcome name → count; sums to ``attempted``.
        codes_sent: close code → count of our Close frames that carried it.
        codes_received: close code → count of peer Close frames; a Close without a code counts
            as 1005, the code RFC 6455 §7.1.5 assigns to it. 1006 never appears: no Close came
            (see the ``abnormal`` outcome).
        http_statuses: non-101 upgrade status → count.
        overflow: metric → samples above 1 h (not in the histogram).
        censored: metric → measurements that started and never ended (timeout, reset,
            interrupted: ``wsload.metrics.samples.censored_samples``; not in the histogram).
        close_events: ``(code, wasClean)`` of the browser's close event
            (``wsload.core.browser``) → count; sums to ``attempted``.
        extensions: WebSocket extension name → connections that negotiated it.
        subprotocols: the subprotocol the server selected (``""``: none) → upgraded
            connections.
        close_reasons: ``"<code> <reason>"`` of the peer's Close frames, the reason normalised
            (``wsload.metrics.failures.normalise``) → count; at most ``MAX_REASONS`` keys per
            behaviour, the rest counted as ``"<code> other"``.
        messages: each of ``MESSAGE_COUNTERS`` → its sum over the connections.
    """

    attempted: int = 0
    opened: int = 0
    outcomes: dict[str, int] = field(default_factory=dict, metadata=_STR_KEYS)
    codes_sent: dict[int, int] = field(default_factory=dict, metadata=_INT_KEYS)
    codes_received: dict[int, int] = field(default_factory=dict, metadata=_INT_KEYS)
    http_statuses: dict[int, int] = field(default_factory=dict, metadata=_INT_KEYS)
    overflow: dict[str, int] = field(default_factory=dict, metadata=_STR_KEYS)
    censored: dict[str, int] = field(default_factory=dict, metadata=_STR_KEYS)
    close_events: dict[tuple[int, bool], int] = field(default_factory=dict, metadata=_PAIR_KEYS)
    extensions: dict[str, int] = field(default_factory=dict, metadata=_STR_KEYS)
    subprotocols: dict[str, int] = field(default_factory=dict, metadata=_STR_KEYS)
    close_reasons: dict[str, int] = field(default_factory=dict, metadata=_STR_KEYS)
    messages: dict[str, int] = field(default_factory=_messages, metadata=_STR_KEYS)

    def copy(self) -> Counts:
        """A plain ``Counts`` holding copies of every counter."""
        return Counts(**{name: _copied(getattr(self, name)) for name in COUNTER_FIELDS})

    def add(self, other: Counts) -> None:
        """Add every counter of ``other`` into this one (merges are exact sums)."""
        for name in COUNTER_FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, int):
                setattr(self, name, mine + theirs)
            else:
                for key, n in theirs.items():
                    mine[key] = mine.get(key, 0) + n

    def flat(self) -> dict[str, int]:
        """Every counter as flat ``name`` / ``name.key`` counts (interval snapshots)."""
        out: dict[str, int] = {}
        for name in COUNTER_FIELDS:
            value = getattr(self, name)
            if isinstance(value, int):
                out[name] = value
            else:
                for key, n in value.items():
                    out[f"{name}.{_flat_key(key)}"] = n
        return out

    def to_wire(self) -> dict[str, Any]:
        """A JSON-able form: close codes and HTTP statuses become string keys."""
        out: dict[str, Any] = {}
        for f in fields(Counts):
            value = getattr(self, f.name)
            if isinstance(value, int):
                out[f.name] = value
            elif f.metadata["key"] is None:
                out[f.name] = close_events_to_json(value)
            else:
                out[f.name] = {str(key): n for key, n in value.items()}
        return out

    @classmethod
    def from_wire(cls, item: Mapping[str, Any], where: str) -> Counts:
        """The inverse of ``to_wire``, validated; a keyed counter absent from ``item`` is
        empty (message counters: 0), so older wire forms still read.

        Raises:
            ValueError: a malformed field (the message names it).
        """
        out = cls()
        for f in fields(Counts):
            name, key = f.name, f.metadata.get("key")
            if "key" not in f.metadata:
                setattr(out, name, count(item.get(name), f"{where}.{name}"))
            elif key is None:
                setattr(out, name, parse_close_events(item.get(name, {}), where))
            else:
                getattr(out, name).update(counter(item.get(name, {}), f"{where}.{name}", key))
        for name in out.outcomes:
            if name not in _OUTCOMES:
                raise ValueError(f"{where}.outcomes: unknown outcome {name!r}")
        return out


COUNTER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Counts))
"""The counters' names, in the order every form lists them."""


_OUTCOMES = frozenset(o.value for o in Outcome)


def _copied(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def _flat_key(key: Any) -> str:
    """A counter's key in flat form: a close event ``(1006, False)`` reads ``1006.false``."""
    if isinstance(key, tuple):
        code, clean = key
        return f"{code}.{'true' if clean else 'false'}"
    return str(key)
