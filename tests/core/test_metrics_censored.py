"""Censored latencies (docs/results.md): counted as longer than every finished one, never dropped.

The percentile rule is checked against the definition itself: every started measurement in one
sorted list, the censored ones at the end, the percentile read at its rank. Which measurements a
record censors is checked kind by kind on hand-made records.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.metrics.collector import Collector
from wsload.metrics.histograms import PERCENTILES, histogram_stats, new_histogram, record
from wsload.metrics.samples import censored_samples
from wsload.report._format import format_stat


@given(
    finished=st.lists(st.integers(min_value=1, max_value=10_000_000), max_size=300),
    censored=st.integers(min_value=0, max_value=300),
)
def test_censored_percentiles_match_a_sorted_list(finished: list[int], censored: int) -> None:
    histogram = new_histogram()
    for value in finished:
        record(histogram, value)
    stats = histogram_stats(histogram, 0, censored)
    everything = sorted(finished) + [math.inf] * censored  # censored: longer than any finished
    assert stats["count"] == len(finished)
    assert stats["started"] == len(everything) and stats["censored"] == censored
    for name, (num, den) in PERCENTILES.items():
        if not everything:
            assert stats[name] is None and stats[f"{name}_censored"] is False
            continue
        truth = everything[max(1, math.ceil(num * len(everything) / den)) - 1]
        if math.isinf(truth):
            assert stats[name] is None and stats[f"{name}_censored"] is True, name
        else:
            assert stats[f"{name}_censored"] is False, name
            assert stats[name] == histogram.get_highest_equivalent_value(truth), name
    assert stats["max_censored"] is (censored > 0)
    if censored:
        assert stats["max"] is None


def _clean(seq: int, reply: float | None, outcome: Outcome, eof: float | None) -> ConnectionRecord:
    return ConnectionRecord(
        seq=seq, label="clean", kind="clean", outcome=outcome, scheduled=0.0,
        connect_start=0.0, connect_end=0.001, request_sent=0.001, upgraded=0.002,
        close_initiated=0.010, close_sent=0.010, close_received=reply, eof=eof,
        socket_closed=0.510, close_initiator=Side.CLIENT,
    )  # fmt: skip


def test_a_close_reply_that_never_came_is_censored_at_the_timeout() -> None:
    r = _clean(1, None, Outcome.CLOSE_TIMEOUT, None)
    assert [(m, round(s, 3)) for m, s in censored_samples(r)] == [("close_handshake", 0.5)]


def test_a_reply_without_its_eof_censors_the_teardown_only() -> None:
    r = _clean(1, 0.3, Outcome.CLOSE_TIMEOUT, None)
    assert [m for m, _ in censored_samples(r)] == ["close_teardown"]


def test_answered_failures_and_expected_endings_are_not_censored() -> None:
    assert censored_samples(_clean(1, 0.02, Outcome.CLEAN, 0.03)) == []
    refused = ConnectionRecord(
        seq=2, label="c", kind="clean", outcome=Outcome.REFUSED, scheduled=0.0, connect_start=0.0
    )
    assert censored_samples(refused) == []  # answered with RST: no latency, not censored
    timeout = ConnectionRecord(
        seq=3, label="c", kind="clean", outcome=Outcome.CONNECT_TIMEOUT, scheduled=0.0,
        connect_start=0.0, socket_closed=2.0,
    )  # fmt: skip
    assert censored_samples(timeout) == [("connect", 2.0)]
    cut = ConnectionRecord(
        seq=4, label="n", kind="close_no_wait", outcome=Outcome.INTERRUPTED, scheduled=0.0,
        upgraded=0.001, close_initiated=1.0, close_sent=1.0, socket_closed=1.0,
    )  # fmt: skip
    assert censored_samples(cut) == []  # it never waits for a reply: nothing unseen


def test_a_server_close_that_never_came_censors_the_wait() -> None:
    r = ConnectionRecord(
        seq=1, label="a", kind="await_server_close", outcome=Outcome.NO_SERVER_CLOSE,
        scheduled=0.0, connect_start=0.0, connect_end=0.001, request_sent=0.001, upgraded=0.002,
        close_initiated=5.002, close_sent=5.002, close_received=5.004, eof=5.005,
        socket_closed=5.005, close_initiator=Side.CLIENT,
    )  # fmt: skip
    assert [(m, round(s, 3)) for m, s in censored_samples(r)] == [("server_close_wait", 5.0)]


def test_a_timed_out_step_is_censored_from_the_record() -> None:
    r = ConnectionRecord(
        seq=1,
        label="c",
        kind="clean",
        outcome=Outcome.MESSAGE_TIMEOUT,
        scheduled=0.0,
        censored=(("step.subscribe", 5.0),),
    )
    assert censored_samples(r) == [("step.subscribe", 5.0)]


def test_the_collector_counts_merges_and_ships_the_censored() -> None:
    c = Collector()
    for seq in range(1, 10):
        c.add(_clean(seq, 0.010 + seq / 1000, Outcome.CLEAN, 0.03))
    c.add(_clean(10, None, Outcome.CLOSE_TIMEOUT, None))
    other = Collector.from_wire(c.to_wire())
    other.merge(c)
    stats = other.stats("close_handshake")
    assert (stats["count"], stats["started"], stats["censored"]) == (18, 20, 2)
    assert stats["p90"] is not None and stats["p99"] is None and stats["p99_censored"]
    assert stats["censored_by"] == {"timeout": 2} and stats["censored_after_us"] == 500_000
    assert format_stat(stats, "p99") == "> 500 ms (timeout)"
    assert other.counts().censored == {"close_handshake": 2}
    assert other.stats("close_handshake", "clean")["censored"] == 2
