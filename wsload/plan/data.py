"""Which ``[data]`` row a logical client takes: a pure function of its ``seq``. No I/O.

Connection sequence numbers are global (``wsload.plan.segment``): every worker process and
cluster segment numbers its connections from the one schedule, so a row chosen from ``seq``
alone is handed out once across the whole run without any coordination: ``unique`` gives
connection ``seq`` row ``seq - 1`` and has no row for a ``seq`` past the file's end (the load
then ends, with a reason). A reconnecting client keeps its ``seq``, hence its row.
"""

from __future__ import annotations

import random

from wsload.scenario.model import DataConfig

__all__ = ["exhausted_reason", "row_for"]


def row_for(data: DataConfig, seq: int, seed: int | None) -> tuple[str, ...] | None:
    """The row of logical client ``seq`` (1-based); None when ``unique`` rows ran out."""
    rows = data.rows
    if data.order == "unique":
        return rows[seq - 1] if seq <= len(rows) else None
    if data.order == "sequential":
        return rows[(seq - 1) % len(rows)]
    return rows[random.Random(f"wsload-data:{seed}:{seq}").randrange(len(rows))]


def exhausted_reason(data: DataConfig) -> str:
    """Why the load ended early: the ``unique`` rows ran out."""
    return (
        f"data: every row of {data.file} was used ({len(data.rows)} rows, order = "
        '"unique"); the load ended there'
    )
