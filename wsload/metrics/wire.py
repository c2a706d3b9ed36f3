"""Counters in the collector's wire form (``Collector.to_wire``), written and read back.

Apart from the collector so that it stays one readable file: these are the JSON shapes of its
counters and their strict validation when a worker's form is read back (a bad field raises
``ValueError`` naming it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["close_events_to_json", "count", "counter", "parse_close_events"]


def close_events_to_json(events: Mapping[tuple[int, bool], int]) -> dict[str, dict[str, int]]:
    """``{(1000, True): 5}`` → ``{"1000": {"clean": 5, "unclean": 0}}``, codes in order.

    The summary.json and wire form of close-event counts: both keys always present, so a
    query for ``close_events["1006"]["unclean"]`` never needs a default.
    """
    out: dict[str, dict[str, int]] = {}
    for code in sorted({code for code, _ in events}):
        out[str(code)] = {
            "clean": events.get((code, True), 0),
            "unclean": events.get((code, False), 0),
        }
    return out


def parse_close_events(value: Any, where: str) -> dict[tuple[int, bool], int]:
    """The inverse of ``close_events_to_json`` (zero counts dropped), validated."""
    out: dict[tuple[int, bool], int] = {}
    for code, pair in _counter_items(value, f"{where}.close_events", int):
        if not isinstance(pair, Mapping) or set(pair) - {"clean", "unclean"}:
            raise ValueError(f"{where}.close_events.{code}: expected {{clean, unclean}} counts")
        for name, clean in (("clean", True), ("unclean", False)):
            n = count(pair.get(name, 0), f"{where}.close_events.{code}.{name}")
            if n:
                out[code, clean] = n
    return out


def count(value: Any, where: str) -> int:
    """``value`` as a count (an int >= 0, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: expected a count >= 0, got {value!r}")
    return value


def _counter_items(value: Any, where: str, key_type: type[Any]) -> Iterator[tuple[Any, Any]]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object")
    for key, item in value.items():
        try:
            typed = key_type(key)
        except ValueError:
            raise ValueError(f"{where}: bad key {key!r}") from None
        yield typed, item


def counter(value: Any, where: str, key_type: type[Any]) -> dict[Any, int]:
    """A JSON object of counts with its keys made ``key_type`` (codes and statuses: int)."""
    return {key: count(n, f"{where}.{key}") for key, n in _counter_items(value, where, key_type)}
