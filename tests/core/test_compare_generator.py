"""The generator as a suspect (``wsload.report.compare.generator``): when the current run's
generator was distinguishably slower than the baseline's, a latency rise its delay could
produce is ``inconclusive`` and one it could not is still ``regressed``.

The comparisons are of real runs: ``data/gate_runs.json`` holds seven runs of
``scenarios/ci.toml`` from a ``benchmarks/ci_gate.py --hog`` campaign (their summary.json's close
metrics and generator, their total histograms), among them the one hogged run the loop-lag rule
alone had called ``regressed`` and a 2 → 5 ms run whose loop lag stalled."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsload.metrics.histograms import PERCENTILES, decode
from wsload.report.compare.engine import CompareResult, compare
from wsload.report.compare.generator import DELAYS, bound_percentile, generator_slower
from wsload.report.compare.judge import Verdict
from wsload.report.verdict import Word, decide

DATA = Path(__file__).parent / "data" / "gate_runs.json"


@cache
def _runs() -> dict[str, Any]:
    return dict(json.loads(DATA.read_text(encoding="utf-8"))["runs"])


def _summary(run: str) -> dict[str, Any]:
    return json.loads(json.dumps(_runs()[run]["summary"]))  # a copy a test may change


def _compare(baseline: str, current: str, **changes: Any) -> CompareResult:
    runs = _runs()
    hists = [{t: decode(b) for t, b in runs[r]["histograms"].items()} for r in (baseline, current)]
    cur = _summary(current)
    cur["generator"].update(changes)
    return compare(
        _summary(baseline), cur, baseline_histograms=hists[0], current_histograms=hists[1]
    )


def _verdicts(result: CompareResult) -> dict[str, Verdict]:
    return {f"{r.scope}/{r.name}": r.verdict for r in result.rows if r.judged}


def test_identical_runs_have_no_slower_generator_and_no_regression() -> None:
    result = _compare("run-001", "run-002")
    assert result.slower is None
    assert decide(None, result).word is Word.PASS


def test_the_notice_lag_catches_the_hogged_run_the_loop_lag_missed() -> None:
    """run-005's loop lag had stalled (p99 3.17 ms), so the hogged run-008 (4.53 ms) is not
    twice it; its notice lag is (970 µs → 4.4 ms). Its p90 rises (2.61 → 3.75 ms) are within
    what that delay can produce: inconclusive, not regressed."""
    result = _compare("run-005", "run-008")
    assert result.slower is not None
    assert [name for name, _, _ in result.slower.slower] == ["notice"]
    verdicts = _verdicts(result)
    assert verdicts["total/close_handshake.p90"] is Verdict.INCONCLUSIVE
    assert Verdict.REGRESSED not in verdicts.values()
    verdict = decide(None, result)
    assert verdict.word is Word.INCONCLUSIVE
    assert [r.code for r in verdict.reasons] == ["generator_slower"]
    assert "notice lag p99 4.4 ms vs 970 µs" in verdict.reasons[0].message
    # judged by the loop lag alone, the same run would be a regression
    without_notice = _compare("run-005", "run-008", notice_lag_us={"count": 0})
    assert without_notice.slower is None
    assert _verdicts(without_notice)["total/close_handshake.p90"] is Verdict.REGRESSED


def test_a_hog_on_every_core_is_inconclusive_by_both_lags() -> None:
    result = _compare("run-001", "run-004")
    assert result.slower is not None
    assert [name for name, _, _ in result.slower.slower] == ["loop", "notice"]
    assert result.inconclusive and not result.regressions
    assert decide(None, result).word is Word.INCONCLUSIVE


def test_a_slower_server_beside_a_stalled_loop_still_regresses() -> None:
    """run-031's server answered 3 ms later and its loop lag stalled (p99 1.46 → 4.59 ms: the
    generator is slower). Its median rose by 3.2 ms, more than the delays can produce (the
    baseline's p90 2.57 ms plus twice the loop lag p90 1.07 ms: 4.7 ms < 5.6 ms): regressed, and
    the run fails whatever else the delay explains."""
    result = _compare("run-029", "run-031")
    assert result.slower is not None
    verdicts = _verdicts(result)
    assert verdicts["total/close_handshake.p50"] is Verdict.REGRESSED
    assert verdicts["clean/close_total.p50"] is Verdict.REGRESSED
    verdict = decide(None, result)
    assert verdict.word is Word.FAIL
    assert [r.code for r in verdict.reasons] == ["regression"]


def test_the_bound_is_the_baseline_at_p_prime_plus_twice_the_current_delay() -> None:
    result = _compare("run-005", "run-008")
    assert result.slower is not None
    base = _summary("run-005")["latency_us"]["close_handshake"]
    lags = _summary("run-008")["generator"]
    delay = max(lags["loop_lag_us"]["p99"], lags["notice_lag_us"]["p99"])
    assert result.slower.bound("p90", base) == base["p99"] + 2 * delay
    row = next(r for r in result.rows if r.scope == "total" and r.name == "close_handshake.p90")
    assert row.current is not None and row.current <= base["p99"] + 2 * delay


def test_lags_without_samples_are_no_evidence() -> None:
    """A loop-clock run has no notice lag (count 0); older summaries have none at all."""
    base, cur = _summary("run-001"), _summary("run-004")
    for summary in (base, cur):
        summary["generator"]["notice_lag_us"] = {"count": 0, "p99": 0}
    slower = generator_slower(base, cur)
    assert slower is not None and [n for n, _, _ in slower.slower] == ["loop"]
    del cur["generator"]["notice_lag_us"], cur["generator"]["loop_lag_us"]
    assert generator_slower(base, cur) is None


@pytest.mark.parametrize(
    ("stat", "upper"),
    [
        ("p50", "p90"),
        ("p90", "p99"),
        ("p95", "p99"),
        ("p99", "p999"),
        ("p999", "p99.99"),
        ("p99.99", "max"),
    ],
)
def test_the_bounding_percentile_leaves_a_third_of_the_tail(stat: str, upper: str) -> None:
    assert bound_percentile(stat) == upper
    if upper != "max":
        p, q = (Fraction(*PERCENTILES[key]) for key in (stat, upper))
        assert (DELAYS + 1) * (1 - q) <= 1 - p


def _nearest_rank(values: list[int], p: Fraction) -> int:
    """The percentile as summary.json takes it: the ceil(p·n)-th smallest value."""
    return sorted(values)[max(math.ceil(p * len(values)) - 1, 0)]


@given(
    st.lists(
        st.tuples(*(st.integers(0, 5_000) for _ in range(3)), st.integers(0, 10_000)),
        min_size=1,
        max_size=300,
    ),
    st.sampled_from(["p50", "p90", "p95", "p99", "p999"]),
)
def test_two_delays_never_lift_a_percentile_above_the_bound(
    samples: list[tuple[int, int, int, int]], stat: str
) -> None:
    """Brute force on sorted lists: latencies ``T + D_1 + D_2`` (the target's time plus the
    generator's and the target's delay, each measured by a lag no smaller) never have a ``p``
    above the baseline ``T + D_0`` at ``p'`` plus twice the measured delay at ``p'``, whatever
    the samples and however they go together."""
    p = Fraction(*PERCENTILES[stat])
    upper = Fraction(*PERCENTILES[bound_percentile(stat)])
    current = [t + d1 + d2 for d1, d2, _, t in samples]
    baseline = [t + d0 for _, _, d0, t in samples]
    measured = [max(d1, d2) for d1, d2, _, _ in samples]
    bound = _nearest_rank(baseline, upper) + DELAYS * _nearest_rank(measured, upper)
    assert _nearest_rank(current, p) <= bound
