"""``RunResult`` → the summary.json dict (schema_version 2), documented in docs/results.md.

The summary is a public, versioned interface that CI parses, so its shape does not depend on
what happened: every outcome and every metric is present (zero counts, ``null`` statistics for
metrics without samples), keys come in a fixed order, and codes are string keys because JSON
has no integer keys. Adding a field is compatible; renaming or removing one bumps
``SCHEMA_VERSION``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from wsload import __version__
from wsload._compiled import status
from wsload.core.codes import code_name
from wsload.core.deflate import NAME as DEFLATE
from wsload.core.kinds import KINDS
from wsload.core.outcomes import Outcome
from wsload.core.script import step_metrics
from wsload.metrics.collector import Collector
from wsload.metrics.counts import MESSAGE_COUNTERS, Counts
from wsload.metrics.failures import ErrorTally
from wsload.metrics.histograms import PERCENTILES, empty_stats, histogram_stats
from wsload.metrics.result import RunResult
from wsload.metrics.samples import CLOSE_METRIC
from wsload.metrics.wire import close_events_to_json
from wsload.report.redact import redact_text
from wsload.report.thresholds import ThresholdResult, judged_percentiles
from wsload.scenario.dump import scenario_hash, scenario_to_dict
from wsload.scenario.model import METRICS, Scenario, Threshold

__all__ = [
    "CLEAN_OUTCOMES",
    "SCHEMA_VERSION",
    "TOP_ERRORS",
    "attach_thresholds",
    "build_summary",
    "close_reasons",
    "errors_section",
    "iso_utc",
    "summary_metrics",
    "threshold_percentiles",
    "unfinished_summary",
]

SCHEMA_VERSION = 2

TOP_ERRORS = 10
"""Details listed per outcome in ``errors``; the rest is counted as ``other``."""

CLEAN_OUTCOMES: dict[str, str | None] = {
    kind.value: None if info.clean is None else info.clean.value for kind, info in KINDS.items()
}
"""Per close kind, the outcome docs/design.md §3 calls clean ("clean when"); None: never clean."""


def iso_utc(when: datetime) -> str:
    """``2026-11-21T17:23:46.123456Z``: ISO 8601 in UTC (a naive ``when`` is taken as UTC)."""
    if when.tzinfo is None or when.utcoffset() is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def summary_metrics(result: RunResult) -> tuple[str, ...]:
    """The metrics summary.json lists: every fixed one, then the ``step.<name>`` metrics of
    the scenario's script and any other one with samples (a merge of different scripts)."""
    steps = {*step_metrics(result.scenario.session.steps), *result.load.collector.step_metrics}
    return (*METRICS, *sorted(steps))


def build_summary(result: RunResult, thresholds: Iterable[ThresholdResult] = ()) -> dict[str, Any]:
    """The summary.json content of one run (a JSON-able dict; see docs/results.md).

    Args:
        result: the finished run.
        thresholds: verdicts from ``wsload.report.thresholds.evaluate`` (which reads a summary
            built without them; ``attach_thresholds`` adds them without recomputing).
    """
    scenario = result.scenario
    collector = result.load.collector
    metrics = summary_metrics(result)
    extra = threshold_percentiles(scenario.thresholds)
    kinds = {spec.label: spec.kind.value for spec in scenario.close}
    labels = [*kinds, *(label for label in collector.labels if label not in kinds)]
    total = collector.counts()
    attempted, dropped = total.attempted, collector.dropped
    intended = result.load.intended if result.load.intended is not None else attempted + dropped
    behaviours: dict[str, Any] = {}
    clean_total: int | None = None
    for label in labels:
        kind = kinds.get(label) or (collector.kind(label) if label in collector.labels else "")
        behaviour = _behaviour(collector, label, kind, metrics, extra)
        behaviours[label] = behaviour
        if behaviour["clean"] is not None:
            clean_total = (clean_total or 0) + behaviour["clean"]
    duration = result.load.duration_s
    generator: dict[str, Any] = {
        "loop_lag_us": histogram_stats(result.load.loop_lag),
        "saturated": bool(result.load.saturated),
        "cpu_seconds": round(result.load.cpu_seconds, 3),
        "cpu_wait_s": (
            None if result.load.cpu_wait_seconds is None else round(result.load.cpu_wait_seconds, 3)
        ),
        "processes": result.load.processes,
        "segment": result.load.segment,
        "workers": None,  # wsload run's sizing of this machine (runner/modes/machine.py)
        "file_limit": None,
        "decisions": [],
        "build": status().label,
    }
    if result.load.start_lag is not None:
        generator["start_lag_us"] = histogram_stats(result.load.start_lag)
    generator["receive_clock"] = result.load.receive_clocks.name
    generator["notice_lag_us"] = histogram_stats(result.load.notice_lag)
    generator["coalesced_stamps"] = result.load.receive_clocks.coalesced
    shift = result.load.start_shift_s
    generator["start_shift_s"] = None if shift is None else round(shift, 3)
    generator["priority_raised"] = result.load.priority_raised
    release = result.load.release_s
    if release is not None:
        generator["storm_release_s"] = {
            "planned": None if release.planned is None else round(release.planned, 6),
            "first": round(release.first, 6),
            "last": round(release.last, 6),
        }
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "wsload_version": __version__,
        "scenario": scenario_to_dict(scenario),
        "scenario_hash": scenario_hash(scenario),
        "started_at": iso_utc(result.started_at),
        "duration_s": round(duration, 6),
        "interrupted": bool(result.load.interrupted),
        "ended_by": result.load.ended_by,
        "intervals": result.load.intervals,
        "totals": {
            "intended": intended,
            "attempted": attempted,
            "dropped": dropped,
            "opened": total.opened,
            "clean": clean_total,
            "close_metric": shared_close_metric(behaviours),
            "extensions": _extensions(scenario, total),
            "subprotocols": dict(sorted(total.subprotocols.items())),
            **{name: total.messages.get(name, 0) for name in MESSAGE_COUNTERS},
        },
        "rates": {
            "intended_per_s": _per_second(intended, duration),
            "attempted_per_s": _per_second(attempted, duration),
        },
        "outcomes": _outcomes(total),
        "close_codes": _codes(total),
        "close_code_names": _code_names(total),
        "close_events": close_events_to_json(total.close_events),
        "http_statuses": _keyed(total.http_statuses),
        "close_reasons": close_reasons(total, scenario.secrets),
        "errors": errors_section(collector.errors()),
        "latency_us": {metric: collector.stats(metric, extra=extra) for metric in metrics},
        "behaviours": behaviours,
        "generator": generator,
        "server": dict(result.server) if result.server is not None else None,
        "target": None,
        "thresholds": [],
    }
    return attach_thresholds(summary, thresholds)


def shared_close_metric(behaviours: Mapping[str, Any]) -> str | None:
    """The headline close metric every behaviour shares (the total's close figure), None
    when they differ: the total of two different figures is no figure."""
    metrics = {b.get("close_metric") for b in behaviours.values()}
    return metrics.pop() if len(metrics) == 1 else None


def unfinished_summary(name: str, started_at: datetime, error: str) -> dict[str, Any]:
    """summary.json of a run that stopped on an error before its result was written: its
    verdict (``fail``) and reason, so that the folder still says what happened and
    ``wsload report`` renders it (docs/results.md, "A run that did not finish")."""
    reason = redact_text(error)
    return {
        "schema_version": SCHEMA_VERSION,
        "wsload_version": __version__,
        "scenario": {"name": name},
        "started_at": iso_utc(started_at),
        "duration_s": round((datetime.now(UTC) - started_at).total_seconds(), 6),
        "interrupted": False,
        "error": reason,
        "verdict": "fail",
        "reasons": [  # the form of wsload.report.verdict's reasons (issue 29)
            {
                "code": "error",
                "verdict": "fail",
                "message": f"the run did not finish: {reason}",
                "advice": "",
            }
        ],
        "totals": {"attempted": 0, "opened": 0},
        "outcomes": {},
        "latency_us": {},
        "behaviours": {},
        "thresholds": [],
    }


def attach_thresholds(
    summary: Mapping[str, Any], thresholds: Iterable[ThresholdResult]
) -> dict[str, Any]:
    """A copy of ``summary`` whose ``thresholds`` list is replaced by ``thresholds``."""
    out = dict(summary)
    out["thresholds"] = [t.as_dict() for t in thresholds]
    return out


def threshold_percentiles(thresholds: Iterable[Threshold]) -> tuple[str, ...]:
    """Percentile keys the thresholds name beyond the ones every summary has (``p75``,
    ``p99.999``): summary.json gives them too, so the verdict is recomputed from it alone."""
    return tuple(k for k in judged_percentiles(thresholds) if k not in PERCENTILES)


def _behaviour(
    collector: Collector,
    label: str,
    kind: str,
    metrics: tuple[str, ...],
    extra: tuple[str, ...],
) -> dict[str, Any]:
    known = label in collector.labels
    counts = collector.counts(label) if known else Counts()
    clean_outcome = CLEAN_OUTCOMES.get(kind)
    return {
        "kind": kind,
        "close_metric": CLOSE_METRIC.get(kind),
        "attempted": counts.attempted,
        "opened": counts.opened,
        "clean": counts.outcomes.get(clean_outcome, 0) if clean_outcome else None,
        "outcomes": _outcomes(counts),
        "close_codes": _codes(counts),
        "close_events": close_events_to_json(counts.close_events),
        "http_statuses": _keyed(counts.http_statuses),
        "errors": errors_section(collector.errors(label)) if known else {},
        "latency_us": {
            metric: collector.stats(metric, label, extra) if known else empty_stats(0, 0, extra)
            for metric in metrics
        },
        **{name: counts.messages.get(name, 0) for name in MESSAGE_COUNTERS},
    }


def close_reasons(
    counts: Counts, secrets: tuple[str, ...] = (), top: int = TOP_ERRORS
) -> dict[str, list[dict[str, Any]]]:
    """Received close code → its ``top`` most frequent reasons (normalised like ``errors``,
    redacted; ``""``: a Close without a reason), most frequent first."""
    by_code: dict[str, list[tuple[str, int]]] = {}
    for key, n in counts.close_reasons.items():
        code, _, reason = key.partition(" ")
        by_code.setdefault(code, []).append((reason, n))
    return {
        code: [
            {"reason": redact_text(reason, secrets), "count": n}
            for reason, n in sorted(rows, key=lambda row: (-row[1], row[0]))[:top]
        ]
        for code, rows in sorted(by_code.items(), key=lambda item: int(item[0]))
    }


def errors_section(tally: ErrorTally, top: int = TOP_ERRORS) -> dict[str, Any]:
    """summary.json's ``errors``: per non-expected outcome (most frequent first) its count,
    its ``top`` most frequent details (redacted) with count and example ``seq``, and ``other``.
    """
    sections: list[tuple[str, dict[str, Any]]] = []
    for outcome in tally.outcomes():
        groups, other = tally.top(outcome, top)
        details = [
            {"detail": redact_text(g.text), "count": g.count, "example_seq": g.example_seq}
            for g in groups
        ]
        count = other + sum(g.count for g in groups)
        sections.append((outcome, {"count": count, "details": details, "other": other}))
    sections.sort(key=lambda item: (-item[1]["count"], item[0]))
    return dict(sections)


def _outcomes(counts: Counts) -> dict[str, int]:
    """Every outcome in enum order, zeros included: a stable shape for CI's queries."""
    out = {outcome.value: counts.outcomes.get(outcome.value, 0) for outcome in Outcome}
    for name, n in counts.outcomes.items():  # from a newer worker: keep, never lose a count
        if name not in out:
            out[name] = n
    return out


def _keyed(counter: Mapping[int, int]) -> dict[str, int]:
    return {str(key): counter[key] for key in sorted(counter)}


def _codes(counts: Counts) -> dict[str, dict[str, int]]:
    return {"sent": _keyed(counts.codes_sent), "received": _keyed(counts.codes_received)}


def _code_names(counts: Counts) -> dict[str, str]:
    codes = sorted({*counts.codes_sent, *counts.codes_received})
    return {str(code): code_name(code) for code in codes}


def _extensions(scenario: Scenario, counts: Counts) -> dict[str, int]:
    """Extension name → connections that negotiated it; an offered one is there even at 0."""
    out = dict(sorted(counts.extensions.items()))
    if scenario.target.compression is not None:
        out.setdefault(DEFLATE, 0)
    return out


def _per_second(n: int, seconds: float) -> float | None:
    return round(n / seconds, 3) if seconds > 0 else None
