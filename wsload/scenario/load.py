"""``[load]`` → frozen ``LoadConfig`` (used only by the parser).

The load model (arrival, concurrency, storm, search), its stages and the rules that tie its keys
together, checked after unknown keys so that a typo is reported as a typo.
"""

from __future__ import annotations

from typing import Any, cast

from wsload.scenario._table import Table, show
from wsload.scenario.model import LOAD_MODELS, LoadConfig, Stage
from wsload.scenario.search import SEARCH_KEYS, check_search_load, parse_search

__all__ = ["LOAD_TABLE_KEYS", "parse_load"]

LOAD_TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "load": (
        "model", "rate", "concurrency", "duration", "connections", "stages", "max_in_flight",
        "open_deadline", "drain", "shutdown_grace", "search",
    ),
    "load.stages": ("duration", "rate", "concurrency"),
    "load.search": SEARCH_KEYS,
}  # fmt: skip
"""Every key of ``[load]`` and its sub-tables (merged into ``parse.TABLE_KEYS``)."""
LOAD_KEYS = LOAD_TABLE_KEYS["load"]


def parse_load(t: Table) -> LoadConfig:
    """``[load]`` → ``LoadConfig``: the load model and its cross-key rules."""
    t.allow(LOAD_KEYS)
    model = t.choice("model", LOAD_MODELS, "arrival")
    if t.has("search") and model != "search":
        raise t.error("search", f'only used by model = "search" (this is model = "{model}")')
    search = parse_search(t.table("search")) if t.has("search") else None
    if model == "search":
        check_search_load(t, search)
    rate = t.opt_number("rate")
    concurrency = t.opt_integer("concurrency", 1)
    duration = t.opt_duration("duration")
    connections = t.opt_integer("connections", 1)
    stages = _stages(t, model)
    config = LoadConfig(
        model=cast(Any, model),
        rate=rate,
        concurrency=concurrency,
        duration=duration,
        connections=connections,
        stages=stages,
        max_in_flight=t.integer("max_in_flight", 10000, minimum=1),
        open_deadline=t.duration("open_deadline", 30.0, positive=True),
        drain=t.duration("drain", 30.0),
        shutdown_grace=t.duration("shutdown_grace", 2.0),
        search=search,
    )
    t.finish()
    _check_load(t, config)
    return config


def _check_load(t: Table, load: LoadConfig) -> None:
    """Cross-key rules, checked after unknown keys so a typo is reported as a typo."""
    model, rate, concurrency, stages = load.model, load.rate, load.concurrency, load.stages
    duration, connections = load.duration, load.connections
    if model == "search":
        return  # checked by check_search_load before the other keys were read
    if model == "arrival":
        if rate is None and not stages:
            raise t.error("rate", "the arrival model needs rate (connections/s) or stages")
        if duration is None and connections is None and not stages:
            raise t.error(
                "duration", "the arrival model needs duration or connections (or stages) to end"
            )
        if concurrency is not None:
            raise t.error(
                "concurrency", "not used by the arrival model (did you mean max_in_flight?)"
            )
    elif model == "concurrency":
        if concurrency is None and not stages:
            raise t.error(
                "concurrency", "the concurrency model needs concurrency (slots) or stages"
            )
        if duration is None and connections is None and not stages:
            raise t.error(
                "duration", "the concurrency model needs duration or connections (or stages) to end"
            )
        if rate is not None:
            raise t.error("rate", "not used by the concurrency model (it is closed loop)")
    else:
        if concurrency is None:
            raise t.error(
                "concurrency",
                "the storm model needs concurrency (how many connections close at once)",
            )
        if stages:
            raise t.error("stages", "not used by the storm model")
        if connections is not None:
            raise t.error("connections", "not used by the storm model (its size is concurrency)")
        if duration is not None:
            raise t.error(
                "duration",
                "not used by the storm model (it ends when its concurrency connections have "
                "closed; open_deadline bounds the opening, drain the closing)",
            )


def _stages(t: Table, model: str) -> tuple[Stage, ...]:
    raw = t.get("stages")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise t.error(
            "stages", 'expected a non-empty list of tables like { duration = "10s", rate = 500 }'
        )
    if model == "storm":
        raise t.error("stages", "not used by the storm model (it opens concurrency connections)")
    field = "rate" if model == "arrival" else "concurrency"
    other = "concurrency" if field == "rate" else "rate"
    stages = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise t.error(f"stages[{i}]", f"expected a table, got {show(item)}")
        st = Table(t.source, t.key(f"stages[{i}]"), item)
        if st.has(other):
            raise st.error(other, f"not used by the {model} model (its stages take {field})")
        st.allow(("duration", field))
        duration = st.duration("duration", 0.0, positive=True)
        if not st.has("duration"):
            raise st.error("duration", "required")
        if not st.has(field):
            raise st.error(field, f"required for the {model} model")
        if field == "rate":
            rate = st.number("rate", 0.0)
            stages.append(Stage(duration=duration, rate=rate))
        else:
            stages.append(
                Stage(duration=duration, concurrency=st.integer("concurrency", 0, minimum=0))
            )
        st.finish()
    return tuple(stages)
