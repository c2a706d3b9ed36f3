"""``wsload run --duration/--rate``: command-line changes to a parsed scenario.

Separate from the parser: it works on the frozen model, not on TOML, and its mistakes are the
user's flags (``UsageError``), not the scenario file's.
"""

from __future__ import annotations

import math
from dataclasses import replace

from wsload.errors import UsageError
from wsload.scenario.model import Scenario

__all__ = ["apply_overrides"]


def apply_overrides(
    scenario: Scenario, *, duration: float | None = None, rate: float | None = None
) -> Scenario:
    """Apply ``wsload run --duration/--rate`` to a parsed scenario (``UsageError`` on misuse).

    ``--duration`` ends the run early or late; stages keep their shape (after the last stage its
    rate holds). ``--rate`` replaces the stages with one constant rate; a run that only the
    stages ended keeps their total length as its duration, so it still ends.
    """
    load = scenario.load
    if load.model == "search" and (duration is not None or rate is not None):
        flag = "--duration" if duration is not None else "--rate"
        raise UsageError(f"{flag} does not apply to the search model (it sets each step's load)")
    if duration is not None:
        if not (duration > 0 and math.isfinite(duration)):
            raise UsageError(f"--duration must be a finite duration > 0, got {duration}")
        if load.model == "storm":
            raise UsageError(
                "--duration does not apply to the storm model (it ends when its connections close)"
            )
        load = replace(load, duration=duration)
    if rate is not None:
        if not (rate > 0 and math.isfinite(rate)):
            raise UsageError(f"--rate must be a finite number > 0, got {rate}")
        if load.model == "concurrency":
            raise UsageError("--rate does not apply to the concurrency model (it is closed loop)")
        if load.stages and load.duration is None and load.connections is None:
            load = replace(load, duration=sum(stage.duration for stage in load.stages))
        load = replace(load, rate=rate, stages=())
    return replace(scenario, load=load)
