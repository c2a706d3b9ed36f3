"""The capacity-search side of a comparison: the ``search/capacity`` row and its warnings.

Split from ``wsload.report.compare`` (which calls it) because a capacity is not a sample of a
distribution: it is a level the search found, judged by a fixed tolerance
(``--max-regression``), with warnings when the two summaries do not compare like with like.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from wsload.report.compare.judge import Method, Verdict
from wsload.report.compare.rows import Row, format_level

__all__ = ["capacity_rows", "search_warnings"]


def search_warnings(base: Mapping[str, Any] | None, cur: Mapping[str, Any] | None) -> list[str]:
    """Why the figures of a search's summary may not compare like with like.

    A search's summary holds the figures of its main level: against another level, or against
    a single run at some other load, its percentiles and shares measure a different load.
    """
    if base is None or cur is None:
        for search, side, other in ((base, "baseline", "current"), (cur, "current", "baseline")):
            if search is not None:
                level = format_level(search.get("main_level"), str(search.get("parameter")))
                return [
                    f"the {side} run is a capacity search and the {other} is not: its figures "
                    f"are those of its main level ({level}), compared with a single run"
                ]
        return []
    parameter = str(cur.get("parameter"))
    if base.get("parameter") != parameter:
        return [
            f"the searches are over different parameters ({base.get('parameter')} vs "
            f"{parameter}): their capacities and figures are not comparable"
        ]
    out: list[str] = []
    b_main, c_main = base.get("main_level"), cur.get("main_level")
    if b_main != c_main:
        out.append(
            f"the searches' main levels differ ({format_level(b_main, parameter)} vs "
            f"{format_level(c_main, parameter)}): the other figures compare different loads"
        )
    for side, search in (("baseline", base), ("current", cur)):
        if search.get("stopped") == "saturated":
            out.append(
                f"the {side} search stopped on a saturated generator: its capacity is a lower bound"
            )
    return out


def capacity_rows(
    base: Mapping[str, Any] | None, cur: Mapping[str, Any] | None, max_regression: float
) -> Iterator[Row]:
    """``search/capacity`` when both summaries are searches over the same parameter.

    A capacity is a level the search found, not a sample of a distribution: no sample count
    to judge, and ``None`` (no level passed) is the worst capacity there is.
    """
    if base is None or cur is None or base.get("parameter") != cur.get("parameter"):
        return
    unit = str(cur.get("parameter"))
    limit = max_regression
    b_val, c_val = _number(base.get("capacity")), _number(cur.get("capacity"))
    change = (c_val - b_val) / b_val if b_val and c_val is not None else None
    if b_val is None and c_val is None:
        verdict, detail = Verdict.MISSING, "no level passed in either search"
    elif c_val is None:
        verdict, detail = Verdict.REGRESSED, "no level passed in the current search"
    elif b_val is None:
        verdict, detail = Verdict.IMPROVED, "no level passed in the baseline search"
    else:
        if change is not None and change < -limit - 1e-9:
            verdict = Verdict.REGRESSED
        elif change is not None and change > limit + 1e-9:
            verdict = Verdict.IMPROVED
        else:
            verdict = Verdict.WITHIN_NOISE
        detail = (
            f"{format_level(b_val, unit)} ({base.get('stopped')}) → "
            f"{format_level(c_val, unit)} ({cur.get('stopped')})"
        )
    yield Row("search", "capacity", unit, b_val, c_val, change, f"-{100 * limit:g} %",
              verdict, detail, method=Method.TOLERANCE)  # fmt: skip


def _number(raw: Any) -> float | None:
    return None if raw is None else float(raw)
