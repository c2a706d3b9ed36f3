"""JUnit XML for CI test reporters: every threshold and every compare rule is a test case.

CI systems (GitHub test-reporter actions, GitLab, Jenkins) understand JUnit, so a failed close
gate shows as a failed test with the measured value as its message. Verdicts map as: threshold
not ok / regressed → ``<failure>``; insufficient samples / missing figure → ``<skipped>`` (not
judged, not passed); everything else passes.

A run whose thresholds all held can still not be trusted: cut short by Ctrl-C (its figures
cover part of the planned load) or limited by wsload's own event loop (its figures describe
the generator, not the target), or one that opened no connection at all (it measured nothing).
Such a run gets a failing ``run`` test case, so CI never shows green for it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from wsload.report._format import format_us
from wsload.report.compare.engine import CompareResult
from wsload.report.compare.judge import Verdict
from wsload.report.why import gave_up, nothing_measured

__all__ = ["junit_xml", "run_failures"]


def junit_xml(summary: Mapping[str, Any] | None, comparison: CompareResult | None = None) -> str:
    """The JUnit XML document (UTF-8 text) for a run's thresholds and/or a comparison.

    Args:
        summary: a summary.json dict whose ``thresholds`` become the ``thresholds`` suite
            (None: no such suite).
        comparison: ``compare`` output, the ``compare`` suite (None: no such suite).
    """
    root = ET.Element("testsuites", name="wsload")
    name = str((summary or {}).get("scenario", {}).get("name", "wsload"))
    if summary is not None:
        suite = _suite(root, f"wsload.thresholds.{name}")
        for verdict in summary.get("thresholds", []):
            case = _case(suite, "thresholds", f"{verdict['expr']} {verdict['condition']}")
            if not verdict.get("ok"):
                _child(case, "failure", f"measured {verdict.get('detail')}")
            ET.SubElement(case, "system-out").text = str(verdict.get("detail"))
        for case_name, message in run_failures(summary):
            _child(_case(suite, "run", case_name), "failure", message)
    if comparison is not None:
        suite = _suite(root, f"wsload.compare.{name}")
        if comparison.warnings:
            properties = ET.SubElement(suite, "properties")
            for warning in comparison.warnings:
                ET.SubElement(properties, "property", name="warning", value=warning)
        for row in comparison.rows:
            case = _case(suite, f"compare.{row.scope}", row.name)
            message = (
                f"{row.format_value(row.baseline)} → {row.format_value(row.current)} "
                f"({row.format_change()}, floor {row.limit}): {row.detail}"
            )
            if row.fails:
                _child(case, "failure", message)
            elif row.verdict in (Verdict.INSUFFICIENT, Verdict.MISSING):
                _child(case, "skipped", f"{row.verdict.value}: {row.detail}")
            ET.SubElement(case, "system-out").text = f"{row.verdict_text}: {message}"
    for suite in root:
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
        suite.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def run_failures(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What makes a run's figures untrustworthy whatever its thresholds say: (name, message).

    ``interrupted``: the run (or search) stopped before its planned end. ``generator.saturated``:
    the generator fell behind; left out when a ``generator.saturated`` threshold exists, whose
    own verdict already says it (the user chose what saturation means for this scenario).
    ``nothing_measured``: no connection was opened (``wsload.report.why``).
    ``reconnect_gave_up``: logical clients gave up reconnecting and no threshold allows it.
    """
    out = []
    empty = nothing_measured(summary)
    if empty is not None:
        out.append(("nothing_measured", empty))
    lost = gave_up(summary)
    if lost is not None:
        out.append(("reconnect_gave_up", lost))
    if summary.get("interrupted"):
        what = (
            "the search was interrupted: its capacity is a lower bound"
            if summary.get("search")
            else "the run was interrupted before its planned end: its figures cover part of it"
        )
        out.append(("interrupted", what))
    generator = summary.get("generator", {})
    gated = any(t.get("expr") == "generator.saturated" for t in summary.get("thresholds", []))
    if generator.get("saturated") and not gated:
        lags = [
            f"{what} lag p99 {format_us(p99)}"
            for what in ("loop", "start")
            if (p99 := (generator.get(f"{what}_lag_us") or {}).get("p99")) is not None
        ]
        why = f" ({', '.join(lags)})" if lags else ""
        out.append(
            (
                "generator.saturated",
                f"the load generator was saturated{why}: the figures describe wsload, not the "
                "target",
            )
        )
    return out


def _suite(root: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(root, "testsuite", name=name)


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")


def _child(case: ET.Element, tag: str, message: str) -> None:
    ET.SubElement(case, tag, message=message).text = message
