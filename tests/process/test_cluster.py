"""``--cluster``: the segments as tasks on a real Dask ``LocalCluster`` of 2 worker processes.

The cluster's workers run on loopback and reach the built-in server the parent starts. The
result must have the same schema as any other run and as ``wsload merge`` of its segments.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio
from clusters import local_cluster

from wsload.errors import ToolError
from wsload.plan.segment import RELEASE_SETTLE
from wsload.runner.executors.cluster import Cluster
from wsload.runner.executors.executor import LoadFeed
from wsload.runner.modes.execute import execute_run
from wsload.runner.modes.merge import merge_results
from wsload.runner.options import RunOptions
from wsload.runner.result_files import SegmentLogs
from wsload.scenario.parse import parse_scenario

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.usefixtures("bounded_sync")

SCENARIO = """
name = "cluster"
seed = 12
[target]
url = "builtin"
[load]
model = "storm"
concurrency = 60
rate = 300
[[close]]
kind = "clean"
weight = 1
[[close]]
kind = "terminate"
weight = 1
rst = true
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with local_cluster() as local:
        yield local


def _shape(value: Any) -> Any:
    """The schema of a JSON value: keys and types, not values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    return type(value).__name__ if value is not None else None


def _summary(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    return data


def test_cluster_run_merges_and_matches_the_merge_schema(tmp_path: Path, cluster: Any) -> None:
    scenario = parse_scenario(SCENARIO)
    out = tmp_path / "run"
    assert (
        execute_run(scenario, RunOptions(cluster=cluster.scheduler_address), out=out, quiet=True)
        == 0
    )
    summary = _summary(out)
    assert summary["generator"]["processes"] == 2
    assert summary["generator"]["segment"] is None
    assert summary["totals"]["attempted"] == 60
    assert summary["outcomes"]["clean"] == 30
    assert summary["outcomes"]["terminated"] == 30
    assert summary["server"]["connections_accepted"] == 60
    # both tasks released at (and counted from) one instant: the last start (59 / 300 s) + 1 s
    release = summary["generator"]["storm_release_s"]
    assert release["planned"] == pytest.approx(59 / 300 + RELEASE_SETTLE, abs=1e-5)
    assert release["planned"] <= release["first"] <= release["last"]
    assert summary["latency_us"]["close_start_lag"]["count"] == 60
    parts = sorted((out / "segments").iterdir())
    assert [p.name for p in parts] == ["0of2", "1of2"]
    assert merge_results(parts, tmp_path / "merged", quiet=True) == 0
    merged = _summary(tmp_path / "merged")
    assert merged["latency_us"] == summary["latency_us"]
    assert merged["outcomes"] == summary["outcomes"]
    # the only fields a merge cannot know: the server's statistics and this machine's sizing
    for data in (summary, merged):
        data["server"] = data["target"] = None
        data["generator"].update(workers=None, file_limit=None, decisions=[])
    assert _shape(merged) == _shape(summary)


def test_unreachable_scheduler_is_a_tool_error(tmp_path: Path) -> None:
    scenario = parse_scenario(SCENARIO)
    with pytest.raises(ToolError, match="cannot reach the scheduler"):
        execute_run(
            scenario, RunOptions(cluster="tcp://127.0.0.1:9"), out=tmp_path / "x", quiet=True
        )


def test_a_failed_task_is_reported_without_the_urls_secret(
    tmp_path: Path, cluster: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A task's exception can carry the target URL, ``?token=`` included: the warning printed
    for it is redacted. (A non-WebSocket URL makes each task's run raise.)"""
    scenario = parse_scenario(SCENARIO)
    url = "http://127.0.0.1:9/x?token=s3cret"
    logs = SegmentLogs(tmp_path, scenario, datetime.now(UTC))

    async def main() -> None:
        with trio.fail_after(60):
            feed = LoadFeed(lambda _: None, logs)
            await Cluster(cluster.scheduler_address, 2).run(scenario, url, feed)

    try:
        with pytest.raises(ToolError, match="every segment failed"):
            trio.run(main)
    finally:
        logs.close()
    err = capsys.readouterr().err
    assert "wsload: warning: cluster segment 0/2 failed: ValueError" in err
    assert "wsload: warning: cluster segment 1/2 failed: ValueError" in err
    assert "token=REDACTED" in err
    assert "s3cret" not in err
