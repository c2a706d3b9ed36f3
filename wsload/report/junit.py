"""JUnit XML for CI test reporters: every threshold and every compare rule is a test case.

CI systems (GitHub test-reporter actions, GitLab, Jenkins) understand JUnit, so a failed close
gate shows as a failed test with the measured value as its message. Verdicts map as: threshold
not ok / regressed → ``<failure>``; insufficient samples / missing figure → ``<skipped>`` (not
judged, not passed); everything else passes.

The run's one verdict (``wsload.report.verdict``) is its own suite, ``wsload.verdict.<name>``: a
case named after the word (``pass``, ``fail``, ``inconclusive``) and a failing case per reason
(``interrupted``, ``saturated``, ``nothing_opened``, ...), so CI never shows green for a run
whose verdict is not a pass.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from wsload.report.compare.engine import CompareResult
from wsload.report.compare.judge import Verdict
from wsload.report.verdict import verdict_of

__all__ = ["junit_xml"]


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
    verdict = verdict_of(summary, comparison)
    run = _suite(root, f"wsload.verdict.{name}")
    case = _case(run, "verdict", verdict.word.value)
    ET.SubElement(case, "system-out").text = verdict.headline()
    for reason in verdict.reasons:  # every reason, fail or inconclusive: never green
        _child(_case(run, "verdict", reason.code), "failure", f"{reason.word}: {reason.text()}")
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
            elif row.verdict in _NOT_JUDGED:
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


_NOT_JUDGED = (Verdict.INSUFFICIENT, Verdict.MISSING, Verdict.NOISY, Verdict.INCONCLUSIVE)
"""Rows skipped (not judged, not passed); an inconclusive row makes the run's verdict so."""


def _suite(root: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(root, "testsuite", name=name)


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")


def _child(case: ET.Element, tag: str, message: str) -> None:
    ET.SubElement(case, tag, message=message).text = message
