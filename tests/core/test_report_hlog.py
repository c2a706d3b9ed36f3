"""histograms.hlog is read back by HdrHistogram's own reader to the summary's figures."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.metrics.collector import Collector
from wsload.metrics.histograms import histogram_stats, new_histogram
from wsload.metrics.result import RunResult, SegmentResult, new_lag_histogram
from wsload.report.hlog import (
    IntervalLogWriter,
    format_header,
    format_interval,
    make_tag,
    split_tag,
)
from wsload.report.summary import build_summary
from wsload.scenario.parse import parse_scenario

STARTED = datetime(2026, 11, 21, 17, 0, 0, 500000, tzinfo=UTC)
TOML = """
name = "h"
[load]
rate = 10
duration = "3s"
[[close]]
kind = "clean"
name = "soft_close"
[[close]]
kind = "terminate"
"""


def _record(seq: int, t: float) -> ConnectionRecord:
    if seq % 4 == 0:
        return ConnectionRecord(
            seq=seq, label="terminate", kind="terminate", outcome=Outcome.TERMINATED,
            scheduled=t, connect_start=t, connect_end=t + 0.0003, close_initiated=t + 0.01,
            socket_closed=t + 0.0101,
        )  # fmt: skip
    rtt = 0.001 + (seq % 37) * 0.0007
    return ConnectionRecord(
        seq=seq, label="soft_close", kind="clean", outcome=Outcome.CLEAN, scheduled=t,
        connect_start=t, connect_end=t + 0.0002 + seq * 1e-6, upgraded=t + 0.001,
        close_initiated=t + 0.01, close_sent=t + 0.01, close_received=t + 0.01 + rtt,
        eof=t + 0.0105 + rtt, socket_closed=t + 0.0106 + rtt, code_sent=1000,
        code_received=1000, close_initiator=Side.CLIENT,
    )  # fmt: skip


def _read_all(path: Path) -> tuple[list[HdrHistogram], float]:
    reader = HistogramLogReader(str(path), new_histogram())
    try:
        out = []
        while (h := reader.get_next_interval_histogram()) is not None:
            out.append(h)
        return out, reader.get_start_time_sec()
    finally:
        reader.close()


def test_hlog_read_back_with_hdrhistogram_gives_the_summary_figures(tmp_path: Path) -> None:
    scenario = parse_scenario(TOML, source="h.toml")
    collector = Collector(labels=("soft_close", "terminate"), start=50.0)
    path = tmp_path / "histograms.hlog"
    with IntervalLogWriter(path, STARTED) as writer:
        seq = 0
        for second in range(3):
            for k in range(40):
                seq += 1
                collector.add(_record(seq, 50.0 + second + k * 0.02))
            writer.write_interval(collector.take_interval(now=51.0 + second))
        writer.write_interval(collector.take_interval(now=54.0))  # an empty interval
        assert writer.intervals == 4
    result = RunResult(
        scenario=scenario,
        started_at=STARTED,
        load=SegmentResult(
            duration_s=3.0, collector=collector, loop_lag=new_lag_histogram(), intervals=4
        ),
    )
    summary = build_summary(result)

    intervals, start_time = _read_all(path)
    assert start_time == pytest.approx(STARTED.timestamp(), abs=1e-3)
    sums: dict[str, HdrHistogram] = {}
    starts: dict[str, list[float]] = {}
    for h in intervals:
        tag = h.get_tag()
        sums.setdefault(tag, new_histogram()).add(h)
        starts.setdefault(tag, []).append(h.get_start_time_stamp() / 1000 - start_time)
        assert h.get_end_time_stamp() - h.get_start_time_stamp() == pytest.approx(1000.0)
    assert starts["close_handshake"] == pytest.approx([0.0, 1.0, 2.0])
    assert "close_handshake:terminate" not in sums  # no samples: no line

    for metric, stats in summary["latency_us"].items():
        if stats["count"]:
            finished = histogram_stats(sums[metric])  # the hlog holds the finished samples
            assert finished == {key: stats[key] for key in finished}, metric
        else:
            assert metric not in sums
    for label, behaviour in summary["behaviours"].items():
        for metric, stats in behaviour["latency_us"].items():
            tag = make_tag(metric, label)
            if stats["count"]:
                finished = histogram_stats(sums[tag])
                assert finished == {key: stats[key] for key in finished}, tag
            else:
                assert tag not in sums
    assert summary["latency_us"]["close_handshake"]["count"] == 90
    assert sums["connect:terminate"].get_total_count() == 30


def test_each_interval_is_on_disk_before_the_next_and_the_log_is_user_only(
    tmp_path: Path,
) -> None:
    collector = Collector(start=0.0)
    path = tmp_path / "run.hlog"
    writer = IntervalLogWriter(path, STARTED, origin=0.0)
    try:
        collector.add(_record(1, 0.1))
        writer.write_interval(collector.take_interval(now=1.0))
        intervals, _ = _read_all(path)  # while the writer is still open: flushed
        assert {h.get_tag() for h in intervals} >= {"close_handshake", "close_handshake:soft_close"}
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        writer.write_interval(collector.take_interval(now=2.0))


def test_lines_follow_the_interval_log_format() -> None:
    header = format_header(STARTED)
    lines = header.splitlines()
    assert lines[1] == "#[Histogram log format version 1.3]"
    assert lines[2] == f"#[StartTime: {STARTED.timestamp():.3f} (seconds since epoch), " \
        "Sat Nov 21 17:00:00 UTC 2026]"  # fmt: skip
    assert lines[3] == f"#[BaseTime: {STARTED.timestamp():.3f} (seconds since epoch)]"
    assert lines[4].startswith('"StartTimestamp","Interval_Length","Interval_Max"')

    collector = Collector(start=10.0)
    collector.add(_record(1, 10.0))
    text = format_interval(collector.take_interval(now=11.5), origin=9.0)
    first = text.splitlines()[0]
    tag, start, length, max_ms, payload = first.split(",")
    assert tag == "Tag=connect"
    assert (start, length) == ("1.000", "1.500")
    assert float(max_ms) == pytest.approx(0.201, abs=0.001)  # µs values, max in ms
    assert payload.startswith("HISTF")  # base64 of the V2 compressed cookie
    assert all(" " not in line.split(",")[0] for line in text.splitlines())


def test_tags() -> None:
    assert make_tag("close_handshake") == "close_handshake"
    assert make_tag("close_handshake", "soft_close") == "close_handshake:soft_close"
    assert split_tag("close_handshake:soft_close") == ("close_handshake", "soft_close")
    assert split_tag("session") == ("session", None)
    assert make_tag("session", "a b,c") == "session:a_b_c"  # never a broken line
