"""Exit codes of runs on a busy machine: a run that judges latencies while the generator is
saturated is ``inconclusive`` (docs/results.md, "Verdict"), exit 1, never ``fail``. Tests that
expect a pass from a real load accept that, and only that, instead of a pass."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["assert_passed_or_saturated", "summary_of"]


def summary_of(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return data


def assert_passed_or_saturated(code: int, summary: Mapping[str, Any], context: str = "") -> None:
    """``code`` 0 with a ``pass``, or 1 with an ``inconclusive`` verdict whose only reasons
    are the generator's (``saturated``, ``generator_slower``)."""
    if summary.get("verdict") == "pass":
        assert code == 0, context
        return
    reasons = {r.get("code") for r in summary.get("reasons") or []}
    assert summary.get("verdict") == "inconclusive", (summary.get("reasons"), context)
    assert reasons <= {"saturated", "generator_slower"}, (summary.get("reasons"), context)
    assert code == 1, context
