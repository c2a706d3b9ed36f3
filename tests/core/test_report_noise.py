"""The statistics under ``wsload compare``: percentile intervals from HDR counts (order
statistics), Wilson share intervals, the Mann-Whitney U test against published tables, and
the comparison of synthetic histograms with known distributions — identical distributions
sampled twice stay ``within noise``, a shift is found — with a single run, a baseline's
run-to-run spread and repeats on both sides."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsload.metrics.histograms import histogram_stats, new_histogram, record
from wsload.report.compare.confidence import (
    percentile_intervals,
    percentile_ranks,
    share_interval,
    t_value,
)
from wsload.report.compare.engine import compare
from wsload.report.compare.judge import Evidence, Floor, Method, Verdict, judge, spread_band
from wsload.report.compare.ranktest import mann_whitney, min_p_value
from wsload.report.compare.tolerances import Tolerances

pytestmark = pytest.mark.usefixtures("bounded_sync")

Sampler = Callable[[random.Random], float]


def _binomial_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@pytest.mark.parametrize("n", [8, 20, 51, 100, 300, 528, 1000])
@pytest.mark.parametrize("p", [0.5, 0.9, 0.99])
def test_percentile_ranks_are_the_exact_binomial_ones(n: int, p: float) -> None:
    """The ranks cut at most 0.5 % from each tail of Binomial(n, p), and are the tightest
    that do (one rank further in would cut more)."""
    ranks = percentile_ranks(n, p, 0.99)
    tail = 0.005
    if ranks is None:  # too few samples: even the extreme order statistic is not enough
        assert (1 - p) ** n > tail or p**n > tail
        return
    lo, hi = ranks
    assert 1 <= lo <= math.ceil(n * p) <= hi <= n
    assert _binomial_cdf(lo - 1, n, p) <= tail < _binomial_cdf(lo, n, p)
    assert 1 - _binomial_cdf(hi - 1, n, p) <= tail < 1 - _binomial_cdf(hi - 2, n, p)


def test_the_sample_sizes_each_percentile_needs_at_99_percent() -> None:
    needs = {}
    for p in (0.5, 0.9, 0.99, 0.999):
        needs[p] = next(n for n in range(1, 10_000) if percentile_ranks(n, p, 0.99) is not None)
    assert needs == {0.5: 8, 0.9: 51, 0.99: 528, 0.999: 5296}
    # large counts use the normal approximation: about ± 2.576 sd around n p
    lo, hi = percentile_ranks(10_000_000, 0.5, 0.99) or (0, 0)
    assert abs((hi - lo) / 2 - 2.576 * math.sqrt(2_500_000)) < 3


def _histogram(values: list[float]) -> Any:
    histogram = new_histogram()
    for value in values:
        record(histogram, max(1, round(value)))
    return histogram


def test_percentile_intervals_cover_the_true_quantile_at_their_confidence() -> None:
    """Monte Carlo: an exponential with mean 2 ms; the 99 % intervals of p50 and p90 from
    500 samples contain the true quantiles in at least 98 % of 300 seeded trials."""
    mean = 2000.0
    truth = {"p50": mean * math.log(2), "p90": mean * math.log(10)}
    hits = dict.fromkeys(truth, 0)
    rng = random.Random(7)
    trials = 300
    for _ in range(trials):
        intervals = percentile_intervals(
            _histogram([rng.expovariate(1 / mean) for _ in range(500)])
        )
        for name, value in truth.items():
            bounds = intervals[name]
            assert bounds is not None
            hits[name] += bounds[0] <= value <= bounds[1]
    assert all(h >= 0.98 * trials for h in hits.values()), hits
    assert percentile_intervals(_histogram([1000.0] * 500))["p99"] is None  # 500 < 528


def test_wilson_share_intervals() -> None:
    low, high = share_interval(0, 1000)
    assert low == 0 and 0.006 < high < 0.007  # 0 of 1,000 is not "exactly 0 %"
    low, high = share_interval(500, 1000, 0.95)
    assert low == pytest.approx(0.469, abs=0.001) and high == pytest.approx(0.531, abs=0.001)
    assert share_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("m", "n", "critical", "alpha"),
    [
        # one-sided 0.05 table (e.g. Siegel & Castellan, table J): U <= critical is significant
        (5, 5, 4, 0.05),
        (4, 6, 3, 0.05),
        (8, 8, 15, 0.05),
        # two-sided 0.05 (one-sided 0.025): n1 = n2 = 10 → 23, 6 vs 7 → 6
        (10, 10, 23, 0.025),
        (6, 7, 6, 0.025),
    ],
)
def test_mann_whitney_exact_matches_the_published_critical_values(
    m: int, n: int, critical: int, alpha: float
) -> None:
    """Tables give the lower tail P(U <= c); by symmetry it is P(U >= m n - c) of the
    one-sided "current greater" test."""

    def p_for(u: int) -> float:
        baseline = [float(i) for i in range(m)]
        below = [min(m, max(0, u - m * j)) for j in range(n)]  # baseline values under each
        current = [k - 0.5 + j * 1e-6 for j, k in enumerate(below)]
        test = mann_whitney(baseline, current)
        assert test.method == "exact" and test.u == u
        return test.p_value

    assert p_for(m * n - critical) <= alpha < p_for(m * n - critical - 1)


def test_mann_whitney_ties_and_large_samples() -> None:
    assert min_p_value(3, 3) == pytest.approx(0.05) and min_p_value(5, 5) == pytest.approx(1 / 252)
    separated = mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert separated.u == 25 and separated.p_value == pytest.approx(1 / 252)
    tied = mann_whitney([1, 2, 3, 4, 5], [5, 7, 8, 9, 10])
    assert tied.method == "exact (ties)" and tied.u == 24.5
    assert tied.p_value == pytest.approx(2 / 252)
    assert mann_whitney([3, 3, 3], [3, 3, 3]).p_value == 1.0
    # 30 vs 30 without ties: the normal approximation is within 0.01 of the exact value
    rng = random.Random(3)
    a = [rng.random() for _ in range(30)]
    b = [rng.random() + 0.2 for _ in range(30)]
    exact = mann_whitney(a, b).p_value
    a_tied, b_tied = [*a, 0.5, 0.5], [*b, 0.5]
    assert mann_whitney(a_tied, b_tied).method == "normal"
    assert abs(mann_whitney(a_tied, b_tied).p_value - exact) < 0.05
    with pytest.raises(ValueError, match="both sides"):
        mann_whitney([], [1.0])


def test_judge_says_why_with_each_method() -> None:
    floor = Floor(0.10, 500)
    common: dict[str, Any] = {"alpha": 0.01, "fmt": lambda v: f"{v:g} us", "confidence": 0.99}
    spread = judge(Evidence(2700, runs=(2650, 2700, 2760, 2720, 2690)), Evidence(3700), floor,
                   worse_up=True, **common)  # fmt: skip
    assert spread.verdict is Verdict.REGRESSED and spread.method is Method.SPREAD
    low, high = spread_band((2650, 2700, 2760, 2720, 2690), 0.01)
    assert f"outside the baseline's 5-run band [{low:g} us, {high:g} us]" in spread.why
    inside = judge(Evidence(2700, runs=(2650, 2760)), Evidence(3100), floor, worse_up=True,
                   **common)  # fmt: skip
    # two runs: their band (the prediction interval of one more run) is wider than its median
    assert inside.verdict is Verdict.NOISY and "record it with --repeat 5 or more" in inside.why
    steady = judge(Evidence(2700, runs=(2650, 2700, 2760, 2720, 2690)), Evidence(3100), floor,
                   worse_up=True, **common)  # fmt: skip
    assert steady.verdict is Verdict.WITHIN_NOISE and "± the floor 500 us" in steady.why
    ranked = judge(
        Evidence(2700, runs=(2650, 2700, 2760, 2720, 2690)),
        Evidence(3700, runs=(3650, 3700, 3760, 3720, 3690)),
        floor, worse_up=True, **common,
    )  # fmt: skip
    assert ranked.verdict is Verdict.REGRESSED and ranked.method is Method.RANK_TEST
    assert ranked.p_value == pytest.approx(1 / 252) and "Mann-Whitney U over 5 vs 5" in ranked.why
    # 3 vs 3 runs can never reach p <= 0.01: the baseline's spread decides instead
    few = judge(Evidence(1, runs=(1, 2, 3)), Evidence(9000, runs=(9000, 9001, 9002)), floor,
                worse_up=True, **common)  # fmt: skip
    assert few.method is Method.SPREAD
    bare = judge(Evidence(2700), Evidence(3000), floor, worse_up=True, **common)
    assert bare.method is Method.FLOOR and "no interval" in bare.why
    assert bare.verdict is Verdict.WITHIN_NOISE


def _summary_and_histograms(
    sampler: Sampler, rng: random.Random, n: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A minimal summary.json (total scope only) and its histograms for ``close_handshake``."""
    histogram = _histogram([sampler(rng) for _ in range(n)])
    summary = {
        "schema_version": 1,
        "scenario_hash": "x",
        "totals": {"attempted": n, "clean": n},
        "outcomes": {"clean": n},
        "latency_us": {"close_handshake": histogram_stats(histogram)},
    }
    return summary, {"close_handshake": histogram}


def _lognormal(median_us: float, sigma: float, shift_us: float = 0.0) -> Sampler:
    return lambda rng: shift_us + rng.lognormvariate(math.log(median_us), sigma)


def _verdicts(base: Any, cur: Any, tol: Tolerances | None = None) -> dict[str, Verdict]:
    result = compare(base[0], cur[0], tol, baseline_histograms=base[1], current_histograms=cur[1])
    return {r.name: r.verdict for r in result.rows if r.unit == "us"}


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    median=st.floats(200, 20_000),
    sigma=st.floats(0.05, 1.0),
    n=st.integers(200, 3000),
    seed=st.integers(0, 2**32 - 1),
)
def test_identical_distributions_sampled_twice_are_within_noise(
    median: float, sigma: float, n: int, seed: int
) -> None:
    """Even without any floor, two samples of one distribution are told apart by their 99 %
    intervals far less often than 1 % of the figures (docs/ci.md): never in these examples."""
    rng = random.Random(seed)
    sampler = _lognormal(median, sigma)
    base, cur = _summary_and_histograms(sampler, rng, n), _summary_and_histograms(sampler, rng, n)
    no_floor = Tolerances(max_regression=0.0, min_change_us=0.0, min_samples=0)
    verdicts = _verdicts(base, cur, no_floor)
    assert set(verdicts.values()) <= {Verdict.WITHIN_NOISE, Verdict.INSUFFICIENT}, verdicts


@settings(derandomize=True, max_examples=30, deadline=None)
@given(
    median=st.floats(1000, 5000),
    sigma=st.floats(0.05, 0.3),
    n=st.integers(500, 3000),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_shifted_distribution_is_found(median: float, sigma: float, n: int, seed: int) -> None:
    """+3 ms on a close of a few ms (the CI gate's server delay 2 → 5 ms) regresses p50 and
    p90 with the default floors; the other way round it is an improvement."""
    rng = random.Random(seed)
    base = _summary_and_histograms(_lognormal(median, sigma), rng, n)
    slower = _summary_and_histograms(_lognormal(median, sigma, 3000.0), rng, n)
    verdicts = _verdicts(base, slower)
    assert verdicts["close_handshake.p50"] is Verdict.REGRESSED
    assert verdicts["close_handshake.p90"] is Verdict.REGRESSED
    assert _verdicts(slower, base)["close_handshake.p50"] is Verdict.IMPROVED


def _repeated(sampler: Sampler, rng: random.Random, runs: int, n: int) -> tuple[Any, Any]:
    """A ``--repeat`` summary: the merged figures plus each run's in ``repeat.figures``."""
    parts = [_summary_and_histograms(sampler, rng, n) for _ in range(runs)]
    merged = new_histogram()
    for _, histograms in parts:
        merged.add(histograms["close_handshake"])
    summary, _ = parts[0]
    summary = {
        **summary,
        "totals": {"attempted": n * runs, "clean": n * runs},
        "outcomes": {"clean": n * runs},
        "latency_us": {"close_handshake": histogram_stats(merged)},
        "repeat": {
            "count": runs,
            "figures": {
                "total": {
                    "attempted": [n] * runs,
                    "clean": [n] * runs,
                    "outcomes": {"clean": [n] * runs},
                    "latency_us": {
                        "close_handshake": {
                            stat: [p[0]["latency_us"]["close_handshake"][stat] for p in parts]
                            for stat in ("count", "p50", "p90", "p99", "p999")
                        }
                    },
                }
            },
        },
    }
    return summary, {"close_handshake": merged}


def test_a_repeated_baseline_finds_a_1ms_shift_and_not_the_noise() -> None:
    rng = random.Random(11)
    sampler = _lognormal(2700, 0.15)
    baseline = _repeated(sampler, rng, 5, 1000)
    same = _summary_and_histograms(sampler, rng, 1000)
    shifted = _summary_and_histograms(_lognormal(2700, 0.15, 1000.0), rng, 1000)
    result = compare(baseline[0], same[0], baseline_histograms=baseline[1],
                     current_histograms=same[1])  # fmt: skip
    assert result.ok
    p50 = next(r for r in result.rows if r.name == "close_handshake.p50")
    assert p50.method is Method.SPREAD and "5-run band" in p50.detail
    assert _verdicts(baseline, shifted)["close_handshake.p50"] is Verdict.REGRESSED
    # repeats on both sides: the rank test
    both = compare(baseline[0], _repeated(_lognormal(2700, 0.15, 1000.0), rng, 5, 1000)[0])
    ranked = next(r for r in both.rows if r.name == "close_handshake.p50")
    assert ranked.verdict is Verdict.REGRESSED and ranked.method is Method.RANK_TEST
    assert ranked.p_value == pytest.approx(1 / 252)
    assert compare(baseline[0], _repeated(sampler, rng, 5, 1000)[0]).ok


@pytest.mark.parametrize(
    ("tail", "df", "table"),
    [(0.01, 1, 31.821), (0.01, 2, 6.965), (0.01, 3, 4.541), (0.01, 4, 3.747), (0.01, 9, 2.821),
     (0.01, 29, 2.462), (0.05, 4, 2.132), (0.005, 4, 4.604)],
)  # fmt: skip
def test_t_quantiles_match_the_tables(tail: float, df: int, table: float) -> None:
    assert t_value(tail, df) == pytest.approx(table, rel=0.005)


def test_the_spread_band_is_the_prediction_interval_when_the_runs_bunch_up() -> None:
    # five p99s of an unchanged target (ms), as measured on scenarios/ci.toml: the next run's
    # 5.0 ms is outside [min, max] but not outside the prediction band for one more run
    runs = (3.14, 3.6, 3.83, 4.2, 3.7)
    low, high = spread_band(runs, 0.01)
    mean = sum(runs) / 5
    sd = math.sqrt(sum((r - mean) ** 2 for r in runs) / 4)
    assert high == pytest.approx(mean + t_value(0.01, 4) * sd * math.sqrt(1.2))
    assert low < 3.14 and high > 5.0
    # runs that are already spread wide keep their own range
    assert spread_band((1.0, 1.0, 1.0, 1.0, 9.0), 0.01)[0] <= 1.0
    assert spread_band((1.0, 2.0), 0.01)[1] > 2.0


def test_a_band_never_goes_below_zero() -> None:
    low, high = spread_band((5170.0, 1000.0, 9300.0), 0.01)
    assert low == 0.0 and high > 9300


def test_a_noisy_baseline_says_so_and_its_pooled_samples_still_judge() -> None:
    """A 3-run baseline recorded on a busy machine: 5.17 ms p99 whose runs disagree. Its band
    cannot judge; the merged result's intervals (the pooled samples) still catch a real rise."""
    common: dict[str, Any] = {"alpha": 0.01, "fmt": lambda v: f"{v:g} us", "confidence": 0.99}
    runs = (3000.0, 5170.0, 9000.0)
    floor = Floor(0.10, 500)
    apart = judge(Evidence(5170, (5000, 5400), runs), Evidence(9200, (9000, 9400)), floor,
                  worse_up=True, **common)  # fmt: skip
    assert apart.verdict is Verdict.REGRESSED and apart.method is Method.INTERVAL
    assert "baseline too noisy" in apart.why and "--repeat 5" in apart.why
    overlap = judge(Evidence(5170, (4000, 7000), runs), Evidence(6000, (5000, 7500)), floor,
                    worse_up=True, **common)  # fmt: skip
    assert overlap.verdict is Verdict.NOISY and "pooled samples" in overlap.why
