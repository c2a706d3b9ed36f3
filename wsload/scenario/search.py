"""``[load.search]`` → ``SearchConfig``: the capacity search's keys (used only by the parser).

Kept apart from ``parse.py`` so the search's rules live in one place. Every value that bounds
the search is required or has a bounded default: ``max`` caps the levels, ``factor > 1`` makes
the climb finite and ``precision > 0`` makes the bisection finite.
"""

from __future__ import annotations

import math
from typing import Any, cast

from wsload.scenario._table import Table, show
from wsload.scenario.model import SEARCH_OVER, SearchConfig

__all__ = ["SEARCH_KEYS", "check_search_load", "parse_search"]

SEARCH_KEYS: tuple[str, ...] = (
    "over", "start", "max", "factor", "step_duration", "precision", "cooldown",
    "max_step_duration",
)  # fmt: skip
"""Every key ``[load.search]`` accepts (docs/scenarios.md lists each)."""

_MAX_FACTOR = 1000.0
_STRETCH = 4.0
"""Default ``max_step_duration``: a rate step may be lengthened to 4 × ``step_duration``."""


def parse_search(t: Table) -> SearchConfig:
    """Read a ``[load.search]`` table (``t``); ``ScenarioError`` naming the key on any mistake."""
    t.allow(SEARCH_KEYS)
    for key in ("over", "start", "max"):
        if not t.has(key):
            raise t.error(key, "required by the search model")
    over = t.choice("over", SEARCH_OVER, "rate")
    if over == "storm_size":
        start: float = t.integer("start", 1, minimum=1)
        top: float = t.integer("max", 1, minimum=1)
        if t.has("step_duration"):
            raise t.error(
                "step_duration",
                'not used with over = "storm_size" (a storm step ends when its connections '
                "have closed; load.open_deadline and load.drain bound it)",
            )
    else:
        start = t.number("start", 1.0, positive=True)
        top = t.number("max", 1.0, positive=True)
    if top < start:
        raise t.error("max", f"must be >= start ({show(t.data.get('start'))}), got {show(top)}")
    factor = t.number("factor", 2.0, positive=True)
    if not 1.0 < factor <= _MAX_FACTOR:
        raise t.error("factor", f"must be > 1 and <= {_MAX_FACTOR:g}, got {show(factor)}")
    step = t.duration("step_duration", 5.0, positive=True)
    longest = 0.0
    if over == "rate":
        longest = t.duration("max_step_duration", _STRETCH * step)
        if longest < step:
            raise t.error(
                "max_step_duration", f"must be >= step_duration ({step:g} s), got {longest:g} s"
            )
    elif t.has("max_step_duration"):
        raise t.error("max_step_duration", 'not used with over = "storm_size"')
    config = SearchConfig(
        over=cast(Any, over),
        start=float(start),
        max=float(top),
        factor=factor,
        step_duration=step,
        precision=_precision(t),
        cooldown=t.duration("cooldown", 1.0),
        max_step_duration=longest,
    )
    t.finish()
    return config


def _precision(t: Table) -> float:
    """``"5%"`` or a fraction ``0.05``: how close the last pass and the first fail must get."""
    raw = t.get("precision")
    if raw is None:
        return 0.05
    value: float | None = None
    if isinstance(raw, str) and raw.strip().endswith("%"):
        try:
            value = float(raw.strip()[:-1]) / 100
        except ValueError:
            value = None
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    if value is None or not math.isfinite(value) or not 0.0 < value < 1.0:
        raise t.error(
            "precision",
            f'expected a percentage like "5%" or a fraction like 0.05 (above 0, below 1), '
            f"got {show(raw)}",
        )
    return value


def check_search_load(t: Table, search: SearchConfig | None) -> None:
    """The ``[load]`` keys a search step takes from the search instead (``t`` is ``[load]``).

    Each step's load shape comes from the level: the rate and ``step_duration`` of an arrival
    step, the size of a storm step. ``rate`` stays allowed for storms: it is the opening rate.
    """
    if search is None:
        raise t.error(
            "search",
            'required by model = "search": a [load.search] table with over, start and max',
        )
    taken = {
        "concurrency": "the level of a storm_size search is the storm size",
        "duration": "a rate level lasts load.search.step_duration, a storm until it closed",
        "connections": "a rate level lasts load.search.step_duration, a storm until it closed",
        "stages": "the search sets each step's level",
    }
    if search.over == "rate":
        taken["rate"] = "the level of a rate search is the arrival rate"
    for key, why in taken.items():
        if t.has(key):
            raise t.error(key, f"not used by the search model ({why})")
