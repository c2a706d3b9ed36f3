"""Collector: metric extraction, counters, overflow, intervals, exact merge, wire form."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from records import clean_record, terminated_record

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.metrics.collector import Collector
from wsload.metrics.counts import MESSAGE_COUNTERS, message_counts
from wsload.metrics.histograms import HIGHEST_US, same_counts
from wsload.metrics.samples import metric_samples
from wsload.scenario.model import METRICS


def test_metric_samples_of_a_clean_close() -> None:
    samples = {m: round(s * 1e6) for m, s in metric_samples(clean_record(close_rtt=0.0025))}
    assert samples == {
        "connect": 200,
        "handshake": 600,
        "message_rtt": 300,  # the dict keeps the last of the two
        "ping_rtt": 100,
        "close_handshake": 2500,
        "close_teardown": 400,
        "close_total": 3000,
        "session": 13000,
    }
    assert [m for m, _ in metric_samples(clean_record())].count("message_rtt") == 2


def test_crossed_closes_measure_a_zero_close_handshake_not_a_dropped_one() -> None:
    """The server's Close reached the kernel before ours was written (kernel stamps): 0 µs."""
    r = dataclasses.replace(clean_record(), close_sent=0.0055, close_received=0.0054)
    samples = {m: round(s * 1e6) for m, s in metric_samples(r)}
    assert samples["close_handshake"] == 0


def test_server_initiated_close_yields_server_close_wait_not_close_handshake() -> None:
    r = ConnectionRecord(
        seq=3,
        label="await",
        kind="await_server_close",
        outcome=Outcome.SERVER_CLOSED,
        scheduled=0.0,
        upgraded=0.001,
        close_initiated=2.001,
        close_received=2.001,
        close_sent=2.0012,
        eof=2.0015,
        socket_closed=2.0016,
        close_initiator=Side.SERVER,
    )
    samples = {m: round(s * 1e6) for m, s in metric_samples(r)}
    assert samples["server_close_wait"] == 2_000_000
    assert samples["close_teardown"] == 500
    assert "close_handshake" not in samples and "server_close_timeout" not in samples


def test_ignore_server_close_measures_the_servers_timeout_not_a_teardown() -> None:
    r = ConnectionRecord(
        seq=4,
        label="ignore",
        kind="ignore_server_close",
        outcome=Outcome.SERVER_DROPPED,
        scheduled=0.0,
        upgraded=0.001,
        close_received=1.0,
        eof=31.0,
        socket_closed=31.0001,
        close_initiator=Side.SERVER,
    )
    samples = {m: round(s * 1e6) for m, s in metric_samples(r)}
    assert samples["server_close_timeout"] == 30_000_000
    assert samples["server_close_wait"] == 999_000
    assert "close_teardown" not in samples


def test_initiator_is_read_from_the_stamps_when_the_driver_left_it_unset() -> None:
    base = clean_record()
    from dataclasses import replace

    unset = replace(base, close_initiator=None)
    assert dict(metric_samples(unset)).keys() == dict(metric_samples(base)).keys()


def test_add_counts_and_splits_per_label() -> None:
    c = Collector(labels=("clean", "terminate", "unused"))
    for i in range(3):
        c.add(clean_record(i, close_rtt=0.001 * (i + 1)))
    c.add(terminated_record())
    c.add(clean_record(9, code_received=None))  # a Close without a code: RFC 1005
    c.add(
        ConnectionRecord(
            seq=10, label="clean", kind="clean", outcome=Outcome.HANDSHAKE_REJECTED,
            scheduled=0.0, http_status=503, connect_start=0.0, connect_end=0.001,
        )
    )  # fmt: skip
    assert c.labels == ("clean", "terminate", "unused")
    assert c.kind("clean") == "clean" and c.kind("unused") == ""
    assert c.attempted == 6 and c.opened == 5
    total = c.counts()
    assert total.outcomes == {"clean": 4, "terminated": 1, "handshake_rejected": 1}
    assert sum(total.outcomes.values()) == total.attempted
    assert total.codes_sent == {1000: 4}
    assert total.codes_received == {1000: 3, 1005: 1}
    assert total.http_statuses == {503: 1}
    assert c.counts("terminate").outcomes == {"terminated": 1}
    assert c.counts("unused").attempted == 0
    assert c.stats("close_handshake", "clean")["count"] == 4
    assert c.stats("close_handshake", "terminate")["count"] == 0
    assert c.stats("close_handshake")["min"] == 1000
    assert c.stats("close_handshake")["max"] == 3001  # 3000 µs is in a 2 µs-wide bucket
    assert c.stats("connect")["count"] == 6
    assert c.stats("close_total")["count"] == 5
    with pytest.raises(KeyError):
        c.stats("no_such_metric")
    with pytest.raises(KeyError):
        c.counts("no_such_label")


def test_overflow_is_counted_never_dropped_and_negative_is_skipped() -> None:
    c = Collector()
    long = ConnectionRecord(
        seq=1, label="clean", kind="clean", outcome=Outcome.INTERRUPTED,
        scheduled=0.0, socket_closed=3600.5, close_initiated=3600.0,
    )  # fmt: skip
    backwards = ConnectionRecord(
        seq=2, label="clean", kind="clean", outcome=Outcome.CLEAN,
        scheduled=5.0, connect_start=5.0, connect_end=4.0, socket_closed=5.5,
    )  # fmt: skip
    c.add(long)
    c.add(backwards)
    assert c.overflow("session") == 1
    assert c.counts().overflow == {"session": 1}
    assert c.stats("session")["count"] == 2  # 0.5 s recorded + one over 1 h
    assert c.stats("session")["max"] == HIGHEST_US
    assert c.stats("close_total")["count"] == 1
    assert 500_000 <= c.stats("close_total")["max"] <= 500_000 * 1.001  # 3 digits
    assert c.stats("connect")["count"] == 0  # the negative one
    assert c.attempted == 2
    snapshot = c.take_interval(now=1.0)
    assert snapshot.overflow == {"session": 1}


def test_add_dropped() -> None:
    c = Collector()
    c.add_dropped()
    c.add_dropped(4)
    assert c.dropped == 5 and c.attempted == 0
    assert c.take_interval(now=1.0).dropped == 5
    with pytest.raises(ValueError):
        c.add_dropped(-1)


def test_intervals_hold_only_their_samples_while_cumulative_keeps_all() -> None:
    c = Collector(start=100.0)
    c.add(clean_record(1, close_rtt=0.001))
    c.add(terminated_record(2))
    first = c.take_interval(in_flight=7, now=101.0)
    assert (first.index, first.start, first.end, first.length) == (0, 100.0, 101.0, 1.0)
    assert (first.in_flight, first.attempted, first.opened) == (7, 2, 2)
    assert first.outcomes == {"clean": 1, "terminated": 1}
    assert first.rate == 2.0
    assert first.stats("close_handshake")["p50"] == 1000
    assert set(first.by_label) == {"clean", "terminate"}
    assert "close_handshake" not in first.by_label["terminate"]
    assert first.histograms["connect"].get_total_count() == 2

    c.add(clean_record(3, close_rtt=0.002))
    second = c.take_interval(in_flight=0, now=102.5)
    assert (second.index, second.start, second.end) == (1, 101.0, 102.5)
    assert second.attempted == 1 and second.outcomes == {"clean": 1}
    assert second.stats("close_handshake")["count"] == 1
    assert second.stats("close_handshake")["p50"] == 2000
    assert second.stats("close_handshake", "clean")["count"] == 1
    assert second.stats("close_handshake", "terminate")["count"] == 0
    # The first snapshot was handed over: later samples never leak into it.
    assert first.stats("close_handshake")["count"] == 1
    assert c.stats("close_handshake")["count"] == 2

    empty = c.take_interval(now=103.0)
    assert empty.attempted == 0 and not empty.histograms and empty.rate == 0.0
    assert c.stats("connect")["count"] == 3


def test_cumulative_reads_include_the_current_interval() -> None:
    c = Collector(start=0.0)
    c.add(clean_record(1))
    c.take_interval(now=1.0)
    c.add(clean_record(2))  # pending, not yet folded
    assert c.stats("close_handshake")["count"] == 2
    assert c.histogram("close_handshake", "clean").get_total_count() == 2


async def test_interval_times_come_from_the_trio_clock(autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(5):
        t0 = trio.current_time()
        c = Collector()
        await trio.sleep(1.0)
        c.add(clean_record(1, t=t0))
        snapshot = c.take_interval(in_flight=1)
        assert snapshot.start == t0
        assert snapshot.end == t0 + 1.0
        await trio.sleep(0.5)
        assert c.take_interval().start == t0 + 1.0


# -- merge and wire -------------------------------------------------------------------------------

labels = st.sampled_from(["clean", "terminate", "slow_close"])
latencies = st.floats(min_value=0.0, max_value=4000.0, allow_nan=False)  # some over 1 h
records = st.builds(
    lambda seq, label, rtt, code, rejected: (
        ConnectionRecord(
            seq=seq, label=label, kind="clean", outcome=Outcome.HANDSHAKE_REJECTED,
            scheduled=0.0, http_status=503,
        )
        if rejected
        else clean_record(seq, label=label, close_rtt=rtt, code_received=code)
    ),
    st.integers(1, 10**6),
    labels,
    latencies,
    st.sampled_from([1000, 1001, 4000, None]),
    st.booleans(),
)  # fmt: skip


def _fingerprint(c: Collector) -> dict[str, Any]:
    out: dict[str, Any] = {"dropped": c.dropped, "labels": sorted(c.labels)}
    for label in [None, *c.labels]:
        out[str(label)] = {
            "counts": c.counts(label),
            "stats": {m: c.stats(m, label) for m in METRICS},
        }
    return out


def _same_histograms(a: Collector, b: Collector) -> bool:
    return all(
        same_counts(a.histogram(m, label), b.histogram(m, label))
        for label in [None, *a.labels]
        for m in METRICS
    )


@settings(max_examples=25, deadline=None)
@given(st.lists(records, max_size=40), st.integers(1, 4), st.integers(0, 3))
def test_merge_equals_one_collector_fed_everything(
    batch: list[ConnectionRecord], workers: int, dropped: int
) -> None:
    whole = Collector()
    parts = [Collector() for _ in range(workers)]
    for i, r in enumerate(batch):
        whole.add(r)
        parts[i % workers].add(r)
        if i % 7 == 6:  # workers fold intervals at different moments: must not matter
            parts[i % workers].take_interval(now=float(i))
    whole.add_dropped(dropped)
    parts[-1].add_dropped(dropped)
    merged = Collector()
    for part in parts:
        merged.merge(part)
    assert _fingerprint(merged) == _fingerprint(whole)
    assert _same_histograms(merged, whole)


@settings(max_examples=25, deadline=None)
@given(st.lists(records, max_size=40), st.integers(0, 3))
def test_wire_round_trip_is_exact_and_json_able(
    batch: list[ConnectionRecord], dropped: int
) -> None:
    c = Collector(labels=("declared",))
    for i, r in enumerate(batch):
        c.add(r)
        if i == len(batch) // 2:
            c.take_interval(now=1.0)  # half cumulative, half pending
    c.add_dropped(dropped)
    wire = json.loads(json.dumps(c.to_wire(), allow_nan=False))
    back = Collector.from_wire(wire)
    assert _fingerprint(back) == _fingerprint(c)
    assert _same_histograms(back, c)
    assert back.to_wire() == c.to_wire()


def test_merge_refuses_conflicting_kinds_and_itself_without_changing_anything() -> None:
    a, b = Collector(), Collector()
    a.add(clean_record(1, label="x"))
    b.add(clean_record(2, label="ok"))
    b.add(terminated_record(3, label="x"))
    before = a.to_wire()
    with pytest.raises(ValueError, match="'x' is 'clean' here and 'terminate'"):
        a.merge(b)
    assert a.to_wire() == before
    with pytest.raises(ValueError, match="itself"):
        a.merge(a)


def test_merge_puts_samples_in_the_cumulative_view_not_the_interval() -> None:
    a, b = Collector(start=0.0), Collector(start=0.0)
    b.add(clean_record(1))
    a.merge(b)
    assert a.stats("close_handshake")["count"] == 1
    assert a.take_interval(now=1.0).histograms == {}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda w: w.update(format="other"), "not a wsload.collector"),
        (lambda w: w.update(version=99), "version 99"),
        (lambda w: w.update(dropped=-1), "dropped"),
        (lambda w: w["labels"]["clean"].update(attempted="3"), "labels.clean.attempted"),
        (lambda w: w["labels"]["clean"]["outcomes"].update(nope=1), "unknown outcome 'nope'"),
        (lambda w: w["labels"]["clean"]["codes_sent"].update(abc=1), "codes_sent: bad key"),
        (lambda w: w["labels"]["clean"]["histograms"].update(bogus="x"), "histograms.bogus"),
        (lambda w: w["labels"]["clean"]["close_events"].update(x={}), "close_events: bad key"),
        (
            lambda w: w["labels"]["clean"]["close_events"].update({"1000": {"clean": -1}}),
            "close_events.1000.clean",
        ),
        (
            lambda w: w["labels"]["clean"]["close_events"].update({"1000": {"dirty": 1}}),
            "close_events.1000: expected",
        ),
        (lambda w: w["labels"]["clean"]["histograms"].update(connect="AAAA"), "connect"),
    ],
)
def test_from_wire_names_the_bad_field(mutate: Any, message: str) -> None:
    c = Collector()
    c.add(clean_record())
    wire = c.to_wire()
    mutate(wire)
    with pytest.raises(ValueError, match=message):
        Collector.from_wire(wire)


def test_interval_counters_add_up_to_the_counts_and_leave_merges_out() -> None:
    """Each snapshot carries what every ``Counts`` field of a behaviour grew by in its
    interval (the live ``/metrics`` endpoint sums them): over all intervals, exactly the
    collector's counts; counts merged in from another collector are in no interval."""
    c = Collector(("clean", "terminate"), start=0.0)
    c.add(clean_record(1))
    c.add(terminated_record(2))
    first = c.take_interval(now=1.0)
    assert first.counters == {
        "clean": {
            "attempted": 1,
            "opened": 1,
            "outcomes.clean": 1,
            "codes_sent.1000": 1,
            "codes_received.1000": 1,
            "close_events.1000.true": 1,  # the browser's close event: code, wasClean
            "close_reasons.1000 ": 1,  # the server's Close: code and (normalised) reason
        },
        "terminate": {
            "attempted": 1,
            "opened": 1,
            "outcomes.terminated": 1,
            "close_events.1006.false": 1,
        },
    }
    other = Collector(start=0.0)
    other.add(clean_record(3))
    c.merge(other)
    c.add(clean_record(4, code_received=None))  # a Close without a code counts as 1005
    second = c.take_interval(now=2.0)
    assert second.counters == {
        "clean": {
            "attempted": 1,
            "opened": 1,
            "outcomes.clean": 1,
            "codes_sent.1000": 1,
            "codes_received.1005": 1,
            "close_events.1005.true": 1,
            "close_reasons.1005 ": 1,
        }
    }
    assert c.take_interval(now=3.0).counters == {}
    assert c.counts("clean").outcomes == {"clean": 3}  # the merged one is counted, not shown


def test_the_first_interval_starts_where_the_load_starts() -> None:
    collector = Collector(["clean"], start=10.0)
    collector.start_intervals(12.0)  # the set-up between creation and start is no interval's
    first = collector.take_interval(now=13.0)
    assert (first.start, first.length) == (12.0, 1.0)
    collector.start_intervals(20.0)  # once intervals run, a late call changes nothing
    assert collector.take_interval(now=14.0).start == 13.0


def test_message_counts_are_the_message_counters_in_order() -> None:
    values = {name: 10 + i for i, name in enumerate(MESSAGE_COUNTERS)}
    record = ConnectionRecord(
        seq=1, label="x", kind="clean", outcome=Outcome.CLEAN, scheduled=0.0, **values
    )
    assert message_counts(record) == tuple(values.values())
