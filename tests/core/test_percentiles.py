"""Any percentile (issue 26): names, exact fractions, summary keys, thresholds checked against
brute-force nearest-rank percentiles of the recorded samples."""

from __future__ import annotations

import random

import pytest

from wsload.core.percentiles import SUMMARY_PERCENTILES, fraction, percentile_key
from wsload.errors import UsageError
from wsload.metrics.histograms import histogram_stats, new_histogram, record
from wsload.report.outputs import parse_tolerances
from wsload.report.summary import threshold_percentiles
from wsload.report.thresholds import evaluate
from wsload.scenario.parse import parse_scenario


@pytest.mark.parametrize(
    ("name", "key", "exact"),
    [
        ("p50", "p50", (50, 100)),
        ("p95", "p95", (95, 100)),
        ("p99.9", "p999", (999, 1000)),
        ("p999", "p999", (999, 1000)),
        ("p99.99", "p99.99", (9999, 10000)),
        ("p97.5", "p97.5", (975, 1000)),
    ],
)
def test_a_percentile_name_is_an_exact_fraction(
    name: str, key: str, exact: tuple[int, int]
) -> None:
    assert percentile_key(name) == key
    assert fraction(key) == exact


@pytest.mark.parametrize("name", ["p100", "p0", "p95.0", "p9999", "p05", "max", "p99.", "p1.23456"])
def test_not_a_percentile(name: str) -> None:
    assert percentile_key(name) is None


def test_every_summary_percentile_is_its_own_key() -> None:
    assert all(percentile_key(key) == key for key in SUMMARY_PERCENTILES)


def _nearest_rank(ordered: list[int], num: int, den: int) -> int:
    return ordered[max(1, -(-num * len(ordered) // den)) - 1]


SCENARIO = """
name = "pct"
[target]
url = "builtin"
[load]
rate = 10
connections = 10
[[close]]
kind = "clean"
[thresholds]
"close_handshake.p95" = "< {p95}us"
"close_handshake.p99.9" = "< {p999}us"
close_handshake.p99.99 = "< {p9999}us"
"close_handshake.p75" = "> {p75}us"
"close_handshake.p999" = "< {p999}us"
"""


def test_thresholds_on_any_percentile_read_the_exact_nearest_rank() -> None:
    """p95, p99.9 (and its alias p999), p99.99 and a p75 no summary gives by default: each
    threshold sees the nearest-rank percentile of 20,000 samples (to HDR's 3 digits), and each
    holds just above it and fails just below it."""
    rng = random.Random(26)
    values = [rng.randint(100, 900_000) for _ in range(20_000)]
    histogram = new_histogram()
    for value in values:
        record(histogram, value)
    ordered = sorted(values)
    exact = {key: _nearest_rank(ordered, *fraction(key)) for key in ("p95", "p999", "p99.99")}
    exact["p75"] = _nearest_rank(ordered, 75, 100)

    def scenario_with(margin: int) -> str:
        limits = {k.replace(".", ""): v + margin for k, v in exact.items()}
        limits["p75"] = exact["p75"] - margin  # "> ..."
        return SCENARIO.format(**limits)

    passing = parse_scenario(scenario_with(+1_000))  # HDR: within 0.1 % of the exact value
    extra = threshold_percentiles(passing.thresholds)
    assert extra == ("p75",)
    stats = histogram_stats(histogram, 0, extra=extra)
    for key, value in exact.items():
        assert value <= stats[key] <= value + value // 1000 + 1, key
    summary = {"latency_us": {"close_handshake": stats}, "totals": {"attempted": len(values)}}
    results = evaluate(passing.thresholds, summary)
    assert [r.ok for r in results] == [True] * 5, [r.detail for r in results]
    failing = parse_scenario(scenario_with(-1_000))
    assert [r.ok for r in evaluate(failing.thresholds, summary)] == [False] * 5


def test_compare_metrics_take_a_percentile_and_suggest_a_metric_name() -> None:
    tolerances = parse_tolerances(metrics="close_handshake.p95,close_total.p99.9")
    assert tolerances.metrics == ("close_handshake", "close_total")
    assert tolerances.stats == ("p50", "p90", "p99", "p999", "p95")
    with pytest.raises(UsageError, match="did you mean 'close_handshake'"):
        parse_tolerances(metrics="close_handshak")
    with pytest.raises(UsageError, match="compared percentiles are the ones summary"):
        parse_tolerances(metrics="close_handshake.p75")
