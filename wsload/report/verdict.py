"""The one verdict of a run: ``pass``, ``fail`` or ``inconclusive``, with its reasons.

Decided once, here, from summary.json (and the comparison with a baseline, if any); the exit
code, summary.json (``verdict``, ``reasons``), the terminal, report.html, markdown and JUnit all
print this decision and never judge on their own (docs/results.md, "verdict").

Each reason is found by one check in ``CHECKS``; adding a reason is adding one check function
and its line there. A reason is ``fail`` or ``inconclusive`` and says what to do about it. The
word of the run: ``fail`` when a *certain* failure happened (nothing opened, the managed server
crashed, clients gave up: no measurement problem explains those away), else ``inconclusive``
when the measurement itself is not valid (interrupted, a saturated generator with something to
judge), else ``fail`` when a threshold or the baseline failed, else ``pass``. A run whose
generator was saturated or which was interrupted therefore never passes its gate, nor is its
failure blamed on the target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from wsload.report._format import format_us
from wsload.report.compare.engine import CompareResult
from wsload.report.why import nothing_measured

__all__ = ["CHECKS", "Reason", "Verdict", "Word", "attach", "decide", "verdict_of"]


class Word(StrEnum):
    """The verdict's word, as summary.json writes it."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a run is not a pass.

    Attributes:
        code: a stable name (``thresholds``, ``saturated``, ...): JUnit's case name, CI queries.
        word: ``fail`` or ``inconclusive``.
        message: what happened, with the figures.
        advice: what to do about it ("" when the message says it).
        certain: a failure no measurement problem can explain away (it stays ``fail`` even
            when the run is also inconclusive).
    """

    code: str
    word: Word
    message: str
    advice: str = ""
    certain: bool = False

    def text(self) -> str:
        return f"{self.message}: {self.advice}" if self.advice else self.message

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "verdict": self.word.value,
            "message": self.message,
            "advice": self.advice,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The run's word and every reason for it (empty for a pass)."""

    word: Word
    reasons: tuple[Reason, ...] = ()

    @property
    def passed(self) -> bool:
        return self.word is Word.PASS

    def headline(self) -> str:
        """``pass``, ``fail: 1 threshold failed; ...``, ``inconclusive: interrupted ...``."""
        if not self.reasons:
            return self.word.value
        return f"{self.word.value}: " + "; ".join(r.message for r in self.reasons)


Check = Callable[[Mapping[str, Any], CompareResult | None], "Reason | None"]


def _nothing_opened(summary: Mapping[str, Any], _: CompareResult | None) -> Reason | None:
    empty = nothing_measured(summary) if summary.get("totals") else None
    if empty is None:
        return None
    return Reason("nothing_opened", Word.FAIL, empty, "nothing was measured", certain=True)


def _server_crashed(summary: Mapping[str, Any], _: CompareResult | None) -> Reason | None:
    """A managed server run that exited during the load without an event's signal."""
    process = summary.get("server_process") or {}
    signalled = {e.get("pid") for e in summary.get("events") or [] if e.get("pid") is not None}
    duration = float(summary.get("duration_s") or 0.0)
    crashed = [
        run
        for run in process.get("runs") or []
        if run.get("exit_s") is not None
        and float(run["exit_s"]) < duration
        and run.get("pid") not in signalled
        and not run.get("stopped_by_wsload")  # its own stop: after this run's (segment's) load
    ]
    if not crashed:
        return None
    first = crashed[0]
    return Reason(
        "server_crashed",
        Word.FAIL,
        f"the managed server crashed: pid {first.get('pid')} exited with status "
        f"{first.get('exit_status')} at {float(first['exit_s']):.2f} s, no event had signalled it",
        "see its output (the results directory's server log) for why",
        certain=True,
    )


def _gave_up(summary: Mapping[str, Any], _: CompareResult | None) -> Reason | None:
    """Clients that gave up reconnecting, unless a ``reconnect.gave_up`` threshold says how
    many may (its own verdict, among the thresholds, then decides)."""
    reconnect = summary.get("reconnect") or {}
    gave_up = int(reconnect.get("gave_up") or 0)
    gated = any(t.get("expr") == "reconnect.gave_up" for t in summary.get("thresholds") or ())
    if not gave_up or gated:
        return None
    clients = int(reconnect.get("clients") or 0)
    return Reason(
        "gave_up",
        Word.FAIL,
        f"{gave_up:,} of {clients:,} clients gave up reconnecting",
        "the server did not take them back within [reconnect] max_attempts",
        certain=True,
    )


def _aborted(summary: Mapping[str, Any], _: CompareResult | None) -> Reason | None:
    """An ``abort = true`` threshold stopped the run (``wsload.runner.load.abort``): a failure seen
    live, whatever the rest of the run measured after it."""
    aborted = summary.get("aborted")
    if not aborted:
        return None
    return Reason(
        "aborted",
        Word.FAIL,
        str(aborted.get("reason") or "aborted by a threshold"),
        "the run was stopped early; its figures up to then are complete",
        certain=True,
    )


def _no_capacity(summary: Mapping[str, Any], _: CompareResult | None) -> Reason | None:
    search = summary.get("search")
    if not search or search.get("capacity") is not None:
        return None
    return Reason("no_capacity", Word.FAIL, "the capacity search found no passing level")


def _thresholds(summary: Mapping[str, Any], _: CompareResult | None) -> Reason | None:
    failed = [t for t in summary.get("thresholds") or [] if not t.get("ok")]
    if not failed:
        return None
    names = ", ".join(f"{t.get('expr')} {t.get('condition')} ({t.get('detail')})" for t in failed)
    plural = "s" if len(failed) > 1 else ""
    return Reason("thresholds", Word.FAIL, f"{len(failed)} threshold{plural} failed: {names}")


def _regressions(_: Mapping[str, Any], comparison: CompareResult | None) -> Reason | None:
    if comparison is None or comparison.ok:
        return None
    n = len(comparison.regressions)
    names = ", ".join(f"{r.scope} {r.name}" for r in comparison.regressions[:3])
    more = f" and {n - 3} more" if n > 3 else ""
    return Reason(
        "regression",
        Word.FAIL,
        f"{n} regression{'s' if n > 1 else ''} against {comparison.baseline_name}: {names}{more}",
    )


def _generator_slower(_: Mapping[str, Any], comparison: CompareResult | None) -> Reason | None:
    """Latency rises the slower generator's own delay could produce, when nothing else
    regressed: a rise it could not produce is a regression (``_regressions``) and decides."""
    rows = comparison.inconclusive if comparison is not None else ()
    if comparison is None or comparison.slower is None or not rows or comparison.regressions:
        return None
    names = ", ".join(f"{r.scope} {r.name}" for r in rows[:3])
    return Reason(
        "generator_slower",
        Word.INCONCLUSIVE,
        f"generator slower than the baseline ({comparison.slower.describe()}): "
        f"{len(rows)} latency change{'s' if len(rows) > 1 else ''} its delay could "
        f"explain ({names}{' ...' if len(rows) > 3 else ''})",
        "compare on a machine as quiet as the baseline's",
    )


def _interrupted(summary: Mapping[str, Any], _: CompareResult | None) -> Reason | None:
    if not summary.get("interrupted"):
        return None
    what = (
        "the search was interrupted: its capacity is a lower bound"
        if summary.get("search")
        else "the run was interrupted before its planned end: its figures cover part of it"
    )
    return Reason("interrupted", Word.INCONCLUSIVE, what, "run it again to the end")


def _wsload_error(summary: Mapping[str, Any], _: CompareResult | None) -> Reason | None:
    """Connections an error inside wsload ended (``internal_error``: a bug): they measured
    nothing the target did, so the figures cover the others only."""
    n = int((summary.get("outcomes") or {}).get("internal_error") or 0)
    if not n:
        return None
    details = ((summary.get("errors") or {}).get("internal_error") or {}).get("details") or []
    first = f": {details[0].get('detail')}" if details else ""
    return Reason(
        "wsload_error",
        Word.INCONCLUSIVE,
        f"{n:,} connection{'s' if n > 1 else ''} ended by an error inside wsload{first}; the "
        "figures cover the other connections only",
        "a wsload bug, not the target's: report it with this results folder",
    )


def _segment_failed(summary: Mapping[str, Any], _: CompareResult | None) -> Reason | None:
    """A share of a split run died or failed: the figures cover the others only."""
    failed = summary.get("failed_segments") or []
    if not failed:
        return None
    named = "; ".join(
        f"{f.get('segment')} ({f.get('error')}; it had measured {int(f.get('attempted') or 0):,} "
        f"connections in {int(f.get('intervals') or 0)} s)"
        for f in failed
    )
    return Reason(
        "segment_failed",
        Word.INCONCLUSIVE,
        f"generator segment{'s' if len(failed) > 1 else ''} failed: {named}; the figures cover "
        "the other segments only",
        "see the segment's error; run again",
    )


def _saturated(summary: Mapping[str, Any], comparison: CompareResult | None) -> Reason | None:
    """A saturated generator makes a run that judges latencies (a latency threshold, a
    baseline) inconclusive: its latencies are wsload's. Counts and shares it does not
    invalidate; a ``generator.saturated`` threshold judges saturation itself instead."""
    generator = summary.get("generator") or {}
    thresholds = summary.get("thresholds") or []
    latencies = comparison is not None or any(t.get("unit") == "us" for t in thresholds)
    if not generator.get("saturated") or not latencies:
        return None
    if any(t.get("expr") == "generator.saturated" for t in thresholds):
        return None
    lags = [
        f"{what} lag p99 {format_us(p99)}"
        for what in ("loop", "start")
        if (p99 := (generator.get(f"{what}_lag_us") or {}).get("p99")) is not None
    ]
    why = f" ({', '.join(lags)})" if lags else ""
    return Reason(
        "saturated",
        Word.INCONCLUSIVE,
        f"the load generator was saturated{why}: the figures describe wsload, not the target",
        "run on a quieter machine, with --workers, or at a lower load",
    )


CHECKS: tuple[Check, ...] = (
    _nothing_opened,
    _server_crashed,
    _gave_up,
    _aborted,
    _no_capacity,
    _thresholds,
    _regressions,
    _generator_slower,
    _interrupted,
    _wsload_error,
    _segment_failed,
    _saturated,
)
"""Every reason a run may not pass, in the order the outputs list them."""


def decide(
    summary: Mapping[str, Any] | None,
    comparison: CompareResult | None = None,
    extra: Sequence[Reason] = (),
) -> Verdict:
    """The verdict of ``summary`` (None: a comparison alone) and ``comparison``.

    Args:
        extra: reasons only the caller knows (``--repeat``: runs that failed their own gate).
    """
    data: Mapping[str, Any] = summary or {}
    reasons = [r for check in CHECKS if (r := check(data, comparison)) is not None]
    reasons += extra
    if any(r.certain for r in reasons):
        word = Word.FAIL
    elif any(r.word is Word.INCONCLUSIVE for r in reasons):
        word = Word.INCONCLUSIVE
    else:
        word = Word.FAIL if reasons else Word.PASS
    return Verdict(word, tuple(reasons))


def attach(summary: Mapping[str, Any], verdict: Verdict) -> dict[str, Any]:
    """A copy of ``summary`` with ``verdict`` and ``reasons`` (docs/results.md)."""
    out = dict(summary)
    out["verdict"] = verdict.word.value
    out["reasons"] = [r.as_dict() for r in verdict.reasons]
    return out


def verdict_of(
    summary: Mapping[str, Any] | None, comparison: CompareResult | None = None
) -> Verdict:
    """The verdict a renderer prints: the one summary.json carries when it has one (decided
    with the run's own comparison), else decided now."""
    if summary is not None and summary.get("verdict") in {w.value for w in Word}:
        reasons = tuple(
            Reason(str(r.get("code")), Word(r.get("verdict")), str(r.get("message")),
                   str(r.get("advice") or ""))
            for r in summary.get("reasons") or []
        )  # fmt: skip
        return Verdict(Word(summary["verdict"]), reasons)
    return decide(summary, comparison)
