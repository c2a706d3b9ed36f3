"""``--workers N`` and ``--segment i/N`` end to end against the built-in server on loopback.

The done-when check of issue 7: a 2-worker run's summary equals the ``wsload merge`` of its two
segment results (counts exactly; percentiles exactly, since the same histograms are added), and
segments run apart (separate processes, no shared seed given) add up to the same plan.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio
from hdrh.log import HistogramLogReader

from wsload.errors import ToolError, UsageError
from wsload.metrics.histograms import new_histogram
from wsload.plan.segment import Segment
from wsload.report.results import load_results
from wsload.runner.executors.executor import LoadFeed
from wsload.runner.executors.workers import Workers
from wsload.runner.modes.execute import execute_run
from wsload.runner.modes.merge import merge_results
from wsload.runner.options import RunOptions
from wsload.runner.result_files import SegmentLogs
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

SCENARIO = """
name = "split"
{seed}
[target]
url = "builtin"
[load]
model = "arrival"
rate = 150
connections = 90
drain = "5s"
[session]
messages = 1
[[close]]
kind = "clean"
weight = 2
timeout = "2s"
[[close]]
kind = "terminate"
weight = 1
[[close]]
kind = "close_no_wait"
weight = 1
"""


def _summary(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    return data


def _hlog_counts(path: Path) -> dict[str, int]:
    reader = HistogramLogReader(str(path / "histograms.hlog"), new_histogram())
    totals: dict[str, int] = {}
    try:
        while (hist := reader.get_next_interval_histogram()) is not None:
            tag = hist.get_tag()
            totals[tag] = totals.get(tag, 0) + hist.get_total_count()
    finally:
        reader.close()
    return totals


def _counts(summary: dict[str, Any]) -> dict[str, Any]:
    """What must match exactly between two runs of one plan against the built-in server."""
    return {
        "totals": summary["totals"],
        "outcomes": summary["outcomes"],
        "close_codes": summary["close_codes"],
        "behaviours": {
            label: (b["attempted"], b["opened"], b["outcomes"])
            for label, b in summary["behaviours"].items()
        },
        "scenario_hash": summary["scenario_hash"],
    }


def test_two_workers_equal_the_merge_of_their_segments(tmp_path: Path) -> None:
    scenario = parse_scenario(SCENARIO.format(seed="seed = 3"))
    out = tmp_path / "run"
    assert execute_run(scenario, RunOptions(workers=2), out=out, quiet=True) == 0
    whole = _summary(out)
    assert whole["generator"]["processes"] == 2
    assert whole["generator"]["segment"] is None
    assert whole["totals"]["attempted"] == 90
    assert whole["server"]["connections_accepted"] == 90  # one built-in server for both
    parts = sorted((out / "segments").iterdir())
    assert [p.name for p in parts] == ["0of2", "1of2"]
    assert [_summary(p)["generator"]["segment"] for p in parts] == ["0/2", "1/2"]
    assert [_summary(p)["totals"]["attempted"] for p in parts] == [45, 45]

    assert merge_results(parts, tmp_path / "merged", quiet=True) == 0
    merged = _summary(tmp_path / "merged")
    differing = {key for key in whole if whole[key] != merged.get(key)}
    # a merge has no server statistics and no sizing of this machine; everything else equal
    assert differing == {"server", "target", "generator"}
    assert merged["target"] is None and merged["generator"]["workers"] is None
    whole["generator"].update(workers=None, file_limit=None, decisions=[])
    assert whole["generator"] == merged["generator"]
    assert merged["latency_us"] == whole["latency_us"]
    assert _hlog_counts(tmp_path / "merged") == _hlog_counts(out)
    assert _hlog_counts(out)["session"] == 90
    assert (out / "timeline.jsonl").exists()
    assert not (tmp_path / "merged" / "timeline.jsonl").exists()  # segments/ keep no timeline


STORM = """
name = "split-storm"
seed = 5
[target]
url = "builtin"
[load]
model = "storm"
concurrency = 40
rate = 40
drain = "10s"
[session]
messages = 1
[[close]]
kind = "clean"
timeout = "5s"
"""


def test_a_storm_on_two_workers_is_released_by_the_parent_once_both_are_open(
    tmp_path: Path,
) -> None:
    """Not at the shared instant (the last intended start + 1 s) that segments which cannot
    talk to each other keep: the parent releases every worker at once when both said their
    share is open, and each counts ``close_start_lag`` from that instant."""
    out = tmp_path / "run"
    assert execute_run(parse_scenario(STORM), RunOptions(workers=2), out=out, quiet=True) == 0
    whole = _summary(out)
    assert whole["outcomes"]["clean"] == whole["totals"]["attempted"] == 40
    release = whole["generator"]["storm_release_s"]
    assert release["planned"] <= release["first"] <= release["last"]
    assert whole["latency_us"]["close_start_lag"]["count"] == 40
    # the last connection was open by this (its start at 0.975 s, its worst lateness, connect,
    # upgrade and echo): a release at the shared instant would have waited until 1.975 s
    lat = whole["latency_us"]
    opened = 39 / 40 + sum(
        (lat[name]["max"] or 0) / 1e6 for name in ("connect", "handshake", "message_rtt")
    )
    opened += whole["generator"]["start_lag_us"]["max"] / 1e6
    if opened + 0.3 < 39 / 40 + 1.0:
        assert release["planned"] < 39 / 40 + 1.0, (release, opened)
    for part in sorted((out / "segments").iterdir()):  # each from its own (common) start
        own = _summary(part)["generator"]["storm_release_s"]
        assert own["planned"] <= own["first"]
        lag = _summary(part)["latency_us"]["close_start_lag"]["min"]
        assert lag >= (own["first"] - own["planned"]) * 1e6 * 0.999 - 2


def test_segments_run_apart_add_up_to_the_whole_plan(tmp_path: Path) -> None:
    """No seed in the scenario: every segment derives the same one from the scenario."""
    scenario = parse_scenario(SCENARIO.format(seed=""))
    dirs = []
    for i in range(2):
        out = tmp_path / f"seg{i}"
        assert execute_run(scenario, RunOptions(segment=Segment(i, 2)), out=out, quiet=True) == 0
        dirs.append(out)
    assert (dirs[1] / "scenario.toml").read_text(encoding="utf-8").startswith("# segment 1/2 ")
    seeds = {_summary(d)["scenario"]["seed"] for d in dirs}
    assert len(seeds) == 1
    assert merge_results(dirs, tmp_path / "merged", quiet=True) == 0
    merged = _summary(tmp_path / "merged")
    # the same plan in one process (the derived seed made explicit)
    seeded = parse_scenario(SCENARIO.format(seed=f"seed = {seeds.pop()}"))
    assert execute_run(seeded, out=tmp_path / "one", quiet=True) == 0
    assert _counts(merged) == _counts(_summary(tmp_path / "one"))
    assert merged["generator"]["processes"] == 2
    assert merged["generator"]["segment"] is None


def test_merge_refuses_overlaps_and_other_scenarios_and_warns_on_gaps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = parse_scenario(SCENARIO.format(seed="seed = 1"))
    b = parse_scenario(SCENARIO.format(seed="seed = 2"))
    execute_run(a, RunOptions(segment=Segment(0, 3)), out=tmp_path / "a0", quiet=True)
    execute_run(b, RunOptions(segment=Segment(1, 3)), out=tmp_path / "b1", quiet=True)
    with pytest.raises(UsageError, match="not segments of one scenario"):
        merge_results([tmp_path / "a0", tmp_path / "b1"], tmp_path / "m")
    with pytest.raises(UsageError, match="overlaps"):
        merge_results([tmp_path / "a0", tmp_path / "a0"], tmp_path / "m")
    with pytest.raises(UsageError, match="missing"):
        merge_results([tmp_path / "nowhere"], tmp_path / "m")
    capsys.readouterr()
    assert merge_results([tmp_path / "a0"], tmp_path / "m", quiet=True) == 0
    assert "segments missing: the merged result holds 0/3" in capsys.readouterr().err
    assert _summary(tmp_path / "m")["generator"]["segment"] == "0/3"
    assert _summary(tmp_path / "m")["totals"]["attempted"] == 30


def test_start_at_delays_the_schedule_and_is_bounded(tmp_path: Path) -> None:
    scenario = parse_scenario(SCENARIO.format(seed="seed = 4"))
    # Starts 3-4 s ahead: a loaded machine can take over a second to get a run ready, and a
    # start already past when the run is ready shortens its schedule.
    t0 = time.time()
    execute_run(
        scenario, RunOptions(segment=Segment(1, 3), start_at=t0 + 3), out=tmp_path / "r", quiet=True
    )
    assert time.time() - t0 >= 3.0
    assert _summary(tmp_path / "r")["totals"]["attempted"] == 30
    shift = _summary(tmp_path / "r")["generator"]["start_shift_s"]
    assert shift == 0.0 or 0 < shift < time.time() - t0 - 3  # on time, unless ready late
    t0 = time.time()
    execute_run(scenario, RunOptions(workers=2, start_at=t0 + 4), out=tmp_path / "w", quiet=True)
    assert time.time() - t0 >= 4.0  # the workers' common start honours --start-at
    assert _summary(tmp_path / "w")["totals"]["attempted"] == 90
    with pytest.raises(UsageError, match="more than 24 h ahead"):
        execute_run(scenario, RunOptions(start_at=t0 + 2 * 86400), out=tmp_path / "x", quiet=True)
    with pytest.raises(UsageError, match="drop --workers"):
        execute_run(
            scenario, RunOptions(workers=2, segment=Segment(0, 2)), out=tmp_path / "y", quiet=True
        )
    with pytest.raises(UsageError, match="--workers: must be >= 1"):
        execute_run(scenario, RunOptions(workers=0), out=tmp_path / "z", quiet=True)


def test_a_start_already_past_shifts_the_whole_schedule_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--start-at 5 s ago: the segment starts now with its whole schedule (nothing cut), and
    the shift is in summary.json and said once; --workers given a start they cannot make
    (ready later than it plus START_MARGIN) start together a little later, and say so too."""
    scenario = parse_scenario(SCENARIO.format(seed="seed = 5"))
    asked = time.time() - 5
    options = RunOptions(segment=Segment(0, 3), start_at=asked)
    execute_run(scenario, options, out=tmp_path / "late", quiet=True)
    summary = _summary(tmp_path / "late")
    assert summary["totals"]["attempted"] == 30 and summary["totals"]["dropped"] == 0
    assert summary["generator"]["start_shift_s"] >= 5.0
    err = capsys.readouterr().err
    assert err.count("--start-at had passed when the run was ready") == 1, err
    execute_run(scenario, RunOptions(workers=2, start_at=time.time()), out=tmp_path / "w")
    summary = _summary(tmp_path / "w")
    assert summary["totals"]["attempted"] == 90
    assert summary["generator"]["start_shift_s"] > 0
    assert capsys.readouterr().err.count("the whole schedule started") == 1
    execute_run(scenario, RunOptions(), out=tmp_path / "none", quiet=True)
    assert _summary(tmp_path / "none")["generator"]["start_shift_s"] is None


def test_closed_loop_slots_are_shared_out_by_segment(tmp_path: Path) -> None:
    scenario = parse_scenario(
        'name = "slots"\nseed = 6\n[target]\nurl = "builtin"\n[load]\nmodel = "concurrency"\n'
        'concurrency = 6\nconnections = 61\ndrain = "5s"\n'
    )
    out = tmp_path / "run"
    assert execute_run(scenario, RunOptions(workers=2), out=out, quiet=True) == 0
    assert _summary(out)["totals"]["attempted"] == 61
    parts = [_summary(p)["totals"]["attempted"] for p in sorted((out / "segments").iterdir())]
    assert parts == [31, 30]  # connections k % 2 == i: 0..60 gives 31 and 30


def test_merge_skips_a_truncated_hlog_line_and_sums_the_timelines(tmp_path: Path) -> None:
    """A segment interrupted mid-write leaves half an hlog line: the merge skips it (as ``wsload
    report`` does) instead of failing; the segments' timelines add up second by second."""
    scenario = parse_scenario(SCENARIO.format(seed="seed = 5"))
    dirs = [tmp_path / f"seg{i}" for i in range(2)]
    for i, out in enumerate(dirs):
        assert execute_run(scenario, RunOptions(segment=Segment(i, 2)), out=out, quiet=True) == 0
    intact = _hlog_counts(dirs[1])
    log = dirs[1] / "histograms.hlog"
    last = [line for line in log.read_text(encoding="utf-8").splitlines() if "Tag=" in line][-1]
    with log.open("a", encoding="utf-8") as file:
        file.write(last[: len(last) // 2])  # what a crash mid-line leaves

    assert merge_results(dirs, tmp_path / "merged", quiet=True) == 0
    merged = load_results(tmp_path / "merged")
    assert merged.summary["totals"]["attempted"] == 90
    counts = _hlog_counts(tmp_path / "merged")
    assert counts["session"] == 90 == _hlog_counts(dirs[0])["session"] + intact["session"]

    parts = [load_results(d).timeline for d in dirs]
    assert all(parts)
    assert len(merged.timeline) == max(len(p) for p in parts)
    for name in ("attempted", "opened", "dropped"):
        assert sum(e[name] for e in merged.timeline) == merged.summary["totals"][name]
    outcomes: dict[str, int] = {}
    for entry in merged.timeline:
        for outcome, n in entry["outcomes"].items():
            outcomes[outcome] = outcomes.get(outcome, 0) + n
    assert outcomes == {k: v for k, v in merged.summary["outcomes"].items() if v}
    for index, entry in enumerate(merged.timeline):  # line i is the sum of every line i
        lines = [p[index] for p in parts if index < len(p)]
        assert entry["in_flight"] == sum(e["in_flight"] for e in lines)
        assert entry["t"] == min(e["t"] for e in lines)


def test_a_worker_error_reaches_stderr_without_the_urls_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker's exception text can carry the target URL, ``?token=`` included: the warning
    printed for it is redacted. (A non-WebSocket URL makes each worker's run raise.)"""
    scenario = parse_scenario(SCENARIO.format(seed="seed = 7"))
    url = "http://user:pa55@127.0.0.1:9/x?token=s3cret"
    logs = SegmentLogs(tmp_path, scenario, datetime.now(UTC))

    async def main() -> None:
        with trio.fail_after(60):
            await Workers(2).run(scenario, url, LoadFeed(lambda _: None, logs))

    try:
        with pytest.raises(ToolError, match="every worker failed"):
            trio.run(main)
    finally:
        logs.close()
    err = capsys.readouterr().err
    assert "wsload: warning: worker 0/2: ValueError" in err
    assert "wsload: warning: worker 1/2: ValueError" in err
    assert "token=REDACTED" in err
    assert "s3cret" not in err
    assert "pa55" not in err
