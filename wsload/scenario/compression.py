"""``[target] compression``: ``"none"``, ``"deflate"`` (what browsers offer) or a table.

The table starts from a named offer (``offer = "browser"``, the default, or ``"lean"``: the
core's :data:`~wsload.core.deflate.OFFERS`) and any of :data:`COMPRESSION_KEYS` change it.
Kept apart from the parser so that the parser stays one readable file; the parsed value is the
core's :class:`~wsload.core.deflate.DeflateSettings` (None for ``"none"``), and ``dump`` writes
it back the way it reads (``"deflate"`` for the browsers' offer, ``{ offer = "lean" }`` for
the lean one, else the whole table).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from wsload.core.deflate import OFFERS, DeflateSettings
from wsload.scenario._table import Table, show

__all__ = [
    "COMPRESSION_KEYS",
    "compression_to_toml",
    "parse_compression",
    "parse_server_compression",
]

COMPRESSION_KEYS = (
    "client_max_window_bits",
    "server_max_window_bits",
    "client_no_context_takeover",
    "server_no_context_takeover",
    "threshold",
)
_BROWSER = OFFERS["browser"]


def parse_compression(t: Table, name: str = "compression") -> DeflateSettings | None:
    """Read ``t[name]``: None for ``"none"`` (the default), settings for ``"deflate"`` or a
    table of :data:`COMPRESSION_KEYS` (a table means deflate)."""
    value = t.get(name)
    if value is None or value == "none":
        return None
    if value == "deflate":
        return _BROWSER
    if not isinstance(value, dict):
        raise t.error(name, f'expected "none", "deflate" or a table, got {show(value)}')
    table = Table(t.source, t.key(name), value)
    table.allow(("offer", *COMPRESSION_KEYS))
    base = OFFERS[table.choice("offer", tuple(OFFERS), "browser")]
    client_bits = _window(table, "client_max_window_bits")
    server_bits = _window(table, "server_max_window_bits")
    client_reset = table.boolean("client_no_context_takeover", base.client_no_context_takeover)
    server_reset = table.boolean("server_no_context_takeover", base.server_no_context_takeover)
    settings = DeflateSettings(
        client_max_window_bits=base.client_max_window_bits if client_bits is None else client_bits,
        server_max_window_bits=base.server_max_window_bits if server_bits is None else server_bits,
        client_no_context_takeover=client_reset,
        server_no_context_takeover=server_reset,
        threshold=table.integer("threshold", base.threshold, minimum=0),
    )
    table.finish()
    return settings


def parse_server_compression(t: Table) -> Literal["deflate"] | None:
    """``[target.server] compression``: ``"deflate"`` accepts clients' offers (None: refuse)."""
    return None if t.choice("compression", ("none", "deflate"), "none") == "none" else "deflate"


def _window(t: Table, name: str) -> int | None:
    bits = t.opt_integer(name, 8)
    if bits is not None and bits > 15:
        raise t.error(name, f"must be 8-15 (a window of 2^bits bytes), got {bits}")
    return bits


def compression_to_toml(settings: DeflateSettings) -> str | dict[str, Any]:
    """``"deflate"`` for the browsers' offer, ``{ offer = name }`` for another named one, else
    the table that reads back to it (from the browsers' offer; unset window bits left out)."""
    if settings == _BROWSER:
        return "deflate"
    for name, offer in OFFERS.items():
        if settings == offer:
            return {"offer": name}
    return {key: value for key, value in asdict(settings).items() if value is not None}
