"""Cross-process forms: interval snapshots and segment results survive the wire exactly and
merge exactly; interval logs of segments sum line by line; the CLI refuses bad split options."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from wsload.cli import app
from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.metrics.collector import Collector
from wsload.metrics.histograms import new_histogram, record
from wsload.metrics.result import ReceiveClocks, SegmentResult, StormRelease
from wsload.metrics.snapshots import (
    IntervalMerger,
    merge_snapshots,
    snapshot_from_wire,
    snapshot_to_wire,
)
from wsload.report.hlog import format_interval
from wsload.report.results import read_hlog_intervals
from wsload.runner.modes.merge import merge_hlogs, merge_timelines

pytestmark = pytest.mark.usefixtures("bounded_sync")


def _collector(seed: int, n: int, start: float = 0.0) -> Collector:
    rng = random.Random(seed)
    collector = Collector(("clean", "terminate"), start=start)
    for seq in range(n):
        label = "clean" if seq % 3 else "terminate"
        t = start + rng.random()
        collector.add(
            ConnectionRecord(
                seq=seq + 1,
                label=label,
                kind=label,
                outcome=Outcome.CLEAN if label == "clean" else Outcome.TERMINATED,
                scheduled=t,
                connect_start=t,
                connect_end=t + rng.uniform(1e-4, 5e-3),
                request_sent=t + 0.006,
                upgraded=t + 0.006 + rng.uniform(1e-4, 2e-3),
                close_initiated=t + 0.01,
                close_sent=t + 0.01 if label == "clean" else None,
                close_received=t + 0.01 + rng.uniform(1e-4, 1e-2) if label == "clean" else None,
                socket_closed=t + 0.05,
                code_sent=1000 if label == "clean" else None,
                code_received=1000 if label == "clean" else None,
            )
        )
    return collector


def _part(seed: int, n: int, segment: str | None) -> SegmentResult:
    lag, notice = new_histogram(), new_histogram()
    record(lag, 100 + seed)
    for us in range(seed * 10):
        record(notice, us)
    return SegmentResult(
        notice_lag=notice,
        receive_clocks=ReceiveClocks(kernel=n, loop=seed - 1, coalesced=seed),
        segment=segment,
        collector=_collector(seed, n),
        loop_lag=lag,
        start_lag=new_histogram(),
        saturated=seed == 2,
        cpu_seconds=0.5,
        duration_s=1.0 + seed,
        interrupted=False,
        intervals=2,
        intended=n,
    )


def test_snapshot_wire_round_trip_and_merge() -> None:
    a, b = _collector(1, 50, 10.0), _collector(2, 70, 20.0)
    sa, sb = a.take_interval(3, now=11.0), b.take_interval(4, now=21.0)
    back = snapshot_from_wire(snapshot_to_wire(sa, origin=10.0))
    assert (back.start, back.end, back.attempted, back.in_flight) == (0.0, 1.0, 50, 3)
    assert back.stats("connect") == sa.stats("connect")
    assert back.stats("close_handshake", "clean") == sa.stats("close_handshake", "clean")
    merged = merge_snapshots([back, snapshot_from_wire(snapshot_to_wire(sb, origin=20.0))])
    assert merged.attempted == 120 and merged.in_flight == 7
    assert merged.outcomes == {"clean": 33 + 46, "terminated": 17 + 24}
    both = Collector(start=0.0)
    both.merge(a)
    both.merge(b)
    whole = both.stats("connect")  # the collector's adds the censored fields (none here)
    assert whole["censored"] == 0
    merged_stats = merged.stats("connect")
    assert merged_stats == {k: whole[k] for k in merged_stats}  # exact: the same buckets
    with pytest.raises(ValueError, match="malformed"):
        snapshot_from_wire({"index": 0})


def test_snapshot_counters_loop_lag_and_saturation_cross_the_wire_and_merge() -> None:
    """What the live ``/metrics`` endpoint reads with ``--workers``: per-behaviour counter
    deltas summed, loop lag added exactly, saturated if any worker was."""
    a, b = _collector(1, 30), _collector(2, 45)
    lag_a, lag_b = new_histogram(), new_histogram()
    record(lag_a, 150)
    record(lag_b, 25_000)
    sa = a.take_interval(1, now=1.0, loop_lag=lag_a, saturated=False)
    sb = b.take_interval(2, now=1.0, loop_lag=lag_b, saturated=True)
    wa, wb = snapshot_from_wire(snapshot_to_wire(sa)), snapshot_from_wire(snapshot_to_wire(sb))
    assert (wa.counters, wa.saturated) == (sa.counters, False)
    assert wa.loop_lag is not None and wa.loop_lag.get_total_count() == 1
    merged = merge_snapshots([wa, wb])
    assert merged.saturated is True
    assert merged.loop_lag is not None and merged.loop_lag.get_total_count() == 2
    for label in ("clean", "terminate"):
        both = a.counts(label).outcomes
        for name, n in b.counts(label).outcomes.items():
            both[name] = both.get(name, 0) + n
        outcomes = {
            k.removeprefix("outcomes."): n
            for k, n in merged.counters[label].items()
            if k.startswith("outcomes.")
        }
        assert outcomes == both
    assert merged.counters["clean"]["codes_sent.1000"] == (
        a.counts("clean").codes_sent[1000] + b.counts("clean").codes_sent[1000]
    )
    old = snapshot_to_wire(sa)
    for key in ("counters", "loop_lag", "saturated"):  # from a wsload that sent none of them
        del old[key]
    assert snapshot_from_wire(old).counters == {}


def test_interval_merger_waits_for_every_live_worker() -> None:
    snaps = [_collector(i, 5).take_interval(now=1.0) for i in range(2)]
    merger = IntervalMerger(2)
    assert merger.add(0, snaps[0]) == []
    (first,) = merger.add(1, snaps[1])
    assert first.attempted == 10
    later = _collector(3, 4).take_interval(now=1.0)
    later = merge_snapshots([later])  # index 0 again would be a duplicate: renumber
    merger2 = IntervalMerger(2)
    assert merger2.add(1, later) == []
    (alone,) = merger2.done(0)  # worker 0 died: stop waiting for it
    assert alone.attempted == 4


def test_a_merged_interval_keeps_the_saturation_of_a_worker_that_already_ended() -> None:
    """Saturation is over the whole run so far, and summary.json's is any segment's final
    flag: a worker that ended saturated keeps the merged intervals after its last saturated
    (the last scrape of /metrics said "not saturated" where summary.json said saturated)."""
    merger = IntervalMerger(2)
    first = [_collector(i, 3).take_interval(now=1.0) for i in range(2)]
    assert merger.add(0, replace(first[0], saturated=True)) == []
    (one,) = merger.add(1, first[1])
    assert one.saturated
    assert merger.done(0) == []  # worker 0 ended saturated; worker 1 goes on, not saturated
    (two,) = merger.add(1, replace(first[1], index=1))
    assert two.saturated
    quiet = IntervalMerger(2)
    quiet.add(0, first[0])
    quiet.add(1, first[1])
    quiet.done(0)
    assert not quiet.add(1, replace(first[1], index=1))[0].saturated


def test_segment_result_wire_and_merge_are_exact() -> None:
    parts = [_part(1, 40, "0/3"), _part(2, 60, "2/3")]
    back = [SegmentResult.from_wire(p.to_wire()) for p in parts]
    merged = SegmentResult.merge(back, labels=("clean", "terminate"))
    assert merged.segment == "0,2/3"
    assert merged.saturated and merged.processes == 2 and merged.intended == 100
    assert merged.duration_s == 3.0
    direct = Collector(start=0.0)
    for part in parts:
        direct.merge(part.collector)
    for metric in ("connect", "handshake", "close_handshake", "session"):
        assert merged.collector.stats(metric) == direct.stats(metric)
    assert merged.collector.counts() == direct.counts()
    assert merged.loop_lag.get_total_count() == 2
    assert merged.notice_lag.get_total_count() == 30 and merged.notice_lag.get_max_value() == 19
    assert merged.receive_clocks == ReceiveClocks(kernel=100, loop=1, coalesced=3)
    assert merged.receive_clocks.name == "mixed" and back[0].receive_clocks.name == "kernel"
    whole = SegmentResult.merge([merged, SegmentResult.from_wire(_part(3, 5, "1/3").to_wire())])
    assert whole.segment is None
    with pytest.raises(ValueError, match="overlaps"):
        SegmentResult.merge([merged, parts[0]])
    with pytest.raises(ValueError, match="not a share of 3"):
        SegmentResult.merge([merged, _part(4, 1, "1/2")])
    with pytest.raises(ValueError, match=r"not a wsload\.segment"):
        SegmentResult.from_wire({"format": "x"})
    old = parts[0].to_wire()
    old["receive_clocks"] = old["receive_clocks"][:2]  # from before coalesced_stamps
    assert SegmentResult.from_wire(old).receive_clocks == ReceiveClocks(kernel=40, loop=0)
    del old["notice_lag"], old["receive_clocks"]  # a totals.json from before kernel stamps
    assert SegmentResult.from_wire(old).receive_clocks.name is None


def test_storm_release_instants_cross_the_wire_and_span_the_segments() -> None:
    """Each segment's actual release and the shared planned instant survive the wire; a merge
    keeps the earliest and the latest release beside the one planned instant."""
    parts = [_part(1, 4, "0/2"), _part(2, 4, "1/2")]
    parts[0].release_s = StormRelease(1.4012, 1.4012, 1.398)
    parts[1].release_s = StormRelease(1.3991, 1.3991, 1.398)
    back = [SegmentResult.from_wire(p.to_wire()) for p in parts]
    assert [b.release_s for b in back] == [p.release_s for p in parts]
    assert SegmentResult.merge(back).release_s == StormRelease(1.3991, 1.4012, 1.398)
    old = {**parts[0].to_wire(), "release_s": [2.0, 2.0]}  # written before release_planned_s
    del old["release_planned_s"]
    assert SegmentResult.from_wire(old).release_s == StormRelease(2.0, 2.0, None)
    assert SegmentResult.merge([_part(3, 4, None)]).release_s is None  # not a storm


def test_merge_hlogs_sums_the_same_second_of_each_log(tmp_path: Path) -> None:
    logs = []
    for seed in (1, 2):
        collector = _collector(seed, 30, start=0.0)
        text = format_interval(collector.take_interval(now=1.0), 0.0)
        collector.add(
            ConnectionRecord(
                seq=99,
                label="clean",
                kind="clean",
                outcome=Outcome.CLEAN,
                scheduled=1.2,
                socket_closed=1.3,
            )
        )
        text += format_interval(collector.take_interval(now=2.0 + seed / 100), 0.0)
        if seed == 2:  # a segment that crashed mid-write: half a line, skipped
            text += text.splitlines()[-1][:40]
        path = tmp_path / f"{seed}.hlog"
        path.write_text(text, encoding="utf-8")
        logs.append(read_hlog_intervals(path))
    lines = merge_hlogs(logs)
    session = [
        (start, round(length, 2), h.get_total_count())
        for tag, start, length, h in lines
        if tag == "session"
    ]
    assert session == [(0.0, 1.0, 60), (1.0, 1.02, 2)]
    assert [tag for tag, *_ in lines][:1] == ["connect"]  # totals before per-behaviour tags


def _entry(t: float, length: float, *counts: int, **outcomes: int) -> dict[str, Any]:
    """A timeline.jsonl line: in_flight, attempted, opened, dropped, then the outcomes."""
    names = ("in_flight", "attempted", "opened", "dropped")
    return {"t": t, "length": length, **dict(zip(names, counts, strict=True)), "outcomes": outcomes}


def test_merge_timelines_adds_line_i_of_every_segment() -> None:
    a = [
        _entry(0.0, 1.0, 3, 5, 6, 0, clean=5),
        _entry(1.0, 0.4, 0, 3, 0, 1, clean=2, interrupted=1),
    ]
    b = [_entry(0.0, 1.0, 4, 2, 6, 2, terminated=2)]  # interrupted earlier: one line fewer
    merged = merge_timelines([a, b])
    assert merged == [_entry(0.0, 1.0, 7, 7, 12, 2, clean=5, terminated=2), a[1]]
    assert list(merged[0]) == list(a[0])  # the same key order as a run's timeline.jsonl
    with pytest.raises(ValueError):
        merge_timelines([[{"t": 0.0, "attempted": "many"}]])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "many"], "--workers: expected a number or auto"),
        (["--workers", "0"], "--workers: must be >= 1"),
        (["--segment", "2/2"], "--segment: expected i/N"),
        (["--workers", "2", "--segment", "0/2"], "drop --workers/--cluster"),
        (["--cluster", "nonsense"], "--cluster: expected tcp://host:port"),
    ],
)
def test_cli_refuses_bad_split_options(tmp_path: Path, args: list[str], message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text('name = "x"\n[load]\nrate = 1\nconnections = 1\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_merge_of_nothing_mergeable_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["merge", str(tmp_path), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "totals.json: missing" in result.output
