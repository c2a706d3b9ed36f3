"""Records from the real driver against a real third-party server, through to the results files.

The other metrics/report tests build records by hand to pin exact numbers; this one checks the
same pipeline on records the engine produced over loopback sockets against trio-websocket:
every connection counted once, codes and metrics where the close behaviour puts them, the
interval log adding up to summary.json, and summary.json written atomically and strict.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import trio
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
from peers import start_trio_websocket

from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.driver import run_connection
from wsload.metrics.collector import Collector
from wsload.metrics.histograms import histogram_stats, new_histogram
from wsload.metrics.result import RunResult, SegmentResult, new_lag_histogram
from wsload.plan.schedule import CloseMix
from wsload.report import files, hlog, summary, thresholds
from wsload.scenario.parse import parse_scenario

SCENARIO = """
name = "real"
seed = 3
[target]
url = "ws://127.0.0.1:1/close?after=300&code=4000&reason=bye"
[load]
rate = 100
connections = 40
[session]
messages = 1
[[close]]
kind = "clean"
weight = 2
timeout = "3s"
[[close]]
kind = "terminate"
weight = 1
[[close]]
kind = "await_server_close"
name = "server_first"
weight = 1
timeout = "3s"
[thresholds]
"close_handshake.p99" = "< 1s"
"behaviours.clean.outcomes.clean" = "== 100%"
"behaviours.server_first.close_codes.received.4000" = "== 100%"
"server_close_wait.p50" = "> 250ms"
"""


async def test_real_connections_through_collector_summary_and_hlog(tmp_path: Path) -> None:
    with trio.fail_after(20):
        scenario = parse_scenario(SCENARIO, source="real.toml")
        started_at = datetime.now(UTC)
        out = files.make_results_dir(tmp_path, scenario.name, started_at)
        collector = Collector(labels=[spec.label for spec in scenario.close])
        writer = hlog.IntervalLogWriter(out / "histograms.hlog", started_at)
        async with trio.open_nursery() as servers:
            port = await start_trio_websocket(servers, close_timeout=2.0)
            url = scenario.target.url.replace(":1/", f":{port}/")
            ctx = DriverContext.create(scenario.target, scenario.session, url, seed=3)
            mix = CloseMix(scenario.close, scenario.seed)
            start = trio.current_time()
            in_flight = 0

            async def one(plan: ConnectionPlan) -> None:
                nonlocal in_flight
                in_flight += 1
                try:
                    collector.add(await run_connection(plan, ctx))
                finally:
                    in_flight -= 1

            async with trio.open_nursery() as connections:
                for k in range(40):
                    due = start + k * 0.01
                    await trio.sleep_until(due)
                    connections.start_soon(one, ConnectionPlan(k + 1, due, mix.next()))
                    if k == 19:
                        writer.write_interval(collector.take_interval(in_flight=in_flight))
            writer.write_interval(collector.take_interval(in_flight=0))
            writer.close()
            servers.cancel_scope.cancel()
        result = RunResult(
            scenario=scenario,
            started_at=started_at,
            load=SegmentResult(
                duration_s=trio.current_time() - start,
                collector=collector,
                loop_lag=new_lag_histogram(),
                intervals=2,
            ),
        )
        data = summary.build_summary(result)
        data = summary.attach_thresholds(data, thresholds.evaluate(scenario.thresholds, data))
        files.write_json_atomic(out / "summary.json", data)

    assert sorted(os.listdir(out)) == ["histograms.hlog", "summary.json"]
    data = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    details = {t["expr"]: t["detail"] for t in data["thresholds"]}
    assert all(t["ok"] for t in data["thresholds"]), details
    assert data["totals"]["attempted"] == 40 == sum(data["outcomes"].values())
    clean, term, first = (data["behaviours"][k] for k in ("clean", "terminate", "server_first"))
    assert (clean["attempted"], term["attempted"], first["attempted"]) == (20, 10, 10)
    assert clean["outcomes"]["clean"] == 20 and term["outcomes"]["terminated"] == 10
    assert clean["close_codes"] == {"sent": {"1000": 20}, "received": {"1000": 20}}
    assert first["close_codes"]["received"] == {"4000": 10}
    assert first["close_codes"]["sent"] == {"4000": 10}  # the RFC echo of the server's code
    assert clean["latency_us"]["close_handshake"]["count"] == 20
    assert first["latency_us"]["close_handshake"]["count"] == 0
    assert first["latency_us"]["server_close_wait"]["count"] == 10
    assert term["latency_us"]["close_handshake"]["count"] == 0
    assert data["latency_us"]["connect"]["count"] == 40
    assert data["latency_us"]["message_rtt"]["count"] == 40
    assert data["latency_us"]["session"]["count"] == 40

    reader = HistogramLogReader(str(out / "histograms.hlog"), new_histogram())
    sums: dict[str, HdrHistogram] = {}
    try:
        while (interval := reader.get_next_interval_histogram()) is not None:
            sums.setdefault(interval.get_tag(), new_histogram()).add(interval)
    finally:
        reader.close()
    # The hlog holds the finished measurements: its statistics are the summary's, none of
    # which is censored in this run (the censored fields are the summary's own).
    for metric, stats in data["latency_us"].items():
        if stats["count"]:
            assert stats["censored"] == 0, metric
            logged = histogram_stats(sums[metric])
            assert logged == {k: stats[k] for k in logged}, metric
    for label, behaviour in data["behaviours"].items():
        for metric, stats in behaviour["latency_us"].items():
            if stats["count"]:
                logged = histogram_stats(sums[f"{metric}:{label}"])
                assert logged == {k: stats[k] for k in logged}, (label, metric)
