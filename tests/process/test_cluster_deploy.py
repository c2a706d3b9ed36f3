"""``--cluster`` with a deploy: this process owns the managed server (tests/deploy/sweep_server.py)
and fires its event; the segments run as tasks on a real Dask ``LocalCluster`` of 2 worker
processes, audit their own clients against the event's planned instant and reconnect on their
own. The merged summary counts what the one-process run of the same scenario counts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wsload.runner.execute import execute_run
from wsload.runner.options import RunOptions
from wsload.scenario.parse import parse_scenario

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.usefixtures("bounded_slow")  # two whole deploy runs


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as local:
        yield local


def _summary(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    return data


# tests/deploy/sweep_server.py: a websockets server that sweeps its clients on SIGTERM
SWEEP_SERVER = next(
    p / "deploy" / "sweep_server.py"
    for p in Path(__file__).resolve().parents
    if (p / "deploy" / "sweep_server.py").is_file()
)


def _deploy_counts(summary: dict[str, Any]) -> dict[str, Any]:
    """What a deploy run counts of its connections, not when things happened."""
    (event,) = summary["events"]
    reconnect = summary["reconnect"]
    keys = ("open_at_signal", "closed_clean", "closed_abnormal", "still_open_at_exit", "codes")
    return {
        "event": {key: event[key] for key in keys},
        "close_received": event["latency_us"]["close_received"]["count"],
        "reconnect": {key: reconnect[key] for key in ("clients", "reconnected", "gave_up")},
        "time_to_reconnect": reconnect["latency_us"]["time_to_reconnect"]["count"],
        "opened": summary["totals"]["opened"],
        "restarts": summary["server_process"]["restarts"],
    }


def test_a_deploy_on_the_cluster_counts_what_one_process_counts(
    tmp_path: Path, cluster: Any
) -> None:
    """This process owns the server and fires the event at its planned instant; the tasks
    audit their clients against that instant and reconnect on their own."""
    argv = [sys.executable, str(SWEEP_SERVER), "--port", "{port}", "--grace", "1"]
    scenario = parse_scenario(
        'name = "deploy"\nseed = 3\n[target]\nurl = "ws://127.0.0.1:{port}/"\n'
        f'[target.process]\ncommand = {json.dumps(argv)}\nstop_timeout = "3s"\n'
        'restart = true\nmax_restarts = 1\n[[target.process.events]]\nat = "1s"\n'
        '[load]\nmodel = "storm"\nconcurrency = 20\ndrain = "10s"\n'
        '[[close]]\nkind = "await_server_close"\ntimeout = "2s"\n'
        '[reconnect]\nbackoff = { initial = "50ms", max = "500ms" }\nmax_attempts = 40\n'
    )
    one, many = tmp_path / "one", tmp_path / "cluster"
    assert execute_run(scenario, RunOptions(), out=one, quiet=True) == 0
    options = RunOptions(cluster=cluster.scheduler_address)
    assert execute_run(scenario, options, out=many, quiet=True) == 0
    summary = _summary(many)
    assert summary["generator"]["processes"] == 2
    assert _deploy_counts(summary) == _deploy_counts(_summary(one))
    counts = _deploy_counts(summary)
    assert counts["event"]["open_at_signal"] == counts["reconnect"]["reconnected"] == 20
    assert counts["event"]["codes"] == {"1001": 20} and counts["restarts"] == 1
    # counted from the planned instant, which the signal follows by a few ms at most
    (event,) = summary["events"]
    assert event["exit_s"] > 0 and event["exit_status"] == 0
    assert event["latency_us"]["close_received"]["max"] < 1_000_000
