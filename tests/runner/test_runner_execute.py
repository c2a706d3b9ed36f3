"""``execute_run`` end to end against a websockets 17 peer (its own thread and event loop).

``execute_run`` calls ``trio.run`` itself, so these tests are synchronous, bounded by the
``bounded_sync`` fixture. They check the results directory a user gets: summary.json,
histograms.hlog (read back with hdrh's own reader) and the resolved scenario.toml.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hdrh.log import HistogramLogReader
from peers import WebsocketsPeer

from wsload.engine.wireclock import SO_TIMESTAMPNS
from wsload.metrics.histograms import new_histogram
from wsload.runner.load.lag import SATURATION_US
from wsload.runner.modes.execute import execute_run
from wsload.scenario.parse import load_scenario, parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

SCENARIO = """
name = "exec"
seed = 11
[target]
url = "ws://127.0.0.1:{port}/echo"
[load]
model = "arrival"
rate = 100
connections = 60
drain = "5s"
[session]
messages = 2
[[close]]
kind = "clean"
weight = 2
timeout = "2s"
[[close]]
kind = "terminate"
weight = 1
[thresholds]
"outcomes.clean" = "> 60%"
"""


@pytest.fixture(scope="module")
def ws_peer() -> Iterator[WebsocketsPeer]:
    with WebsocketsPeer(close_timeout=0.5) as peer:
        yield peer


def _execute(tmp_path: Path, text: str) -> tuple[int, Path, dict[str, Any]]:
    scenario = parse_scenario(text)
    code = execute_run(scenario, quiet=True, results_base=tmp_path)
    (out,) = list(tmp_path.iterdir())
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return code, out, summary


def _hlog_counts(path: Path) -> dict[str, int]:
    """Total count per tag over every interval of an interval log."""
    reader = HistogramLogReader(str(path), new_histogram())
    totals: dict[str, int] = {}
    try:
        while (hist := reader.get_next_interval_histogram()) is not None:
            tag = hist.get_tag()
            totals[tag] = totals.get(tag, 0) + hist.get_total_count()
    finally:
        reader.close()
    return totals


def test_execute_run_writes_consistent_results(
    tmp_path: Path, ws_peer: WebsocketsPeer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, summary = _execute(tmp_path, SCENARIO.format(port=ws_peer.port))
    assert code == 0, summary["thresholds"]
    assert capsys.readouterr().out.strip() == str(out)  # quiet: only the results path
    totals = summary["totals"]
    assert totals == {**totals, "intended": 60, "attempted": 60, "dropped": 0}
    outcomes = summary["outcomes"]
    assert sum(outcomes.values()) == 60
    assert outcomes == {**outcomes, "clean": 40, "terminated": 20}
    assert summary["interrupted"] is False
    assert summary["intervals"] >= 1
    # a busy machine may saturate the generator: the flag then follows the lags it measured
    generator = summary["generator"]
    lag_p99 = max(generator[f"{what}_lag_us"]["p99"] or 0 for what in ("loop", "start"))
    assert not generator["saturated"] or lag_p99 > SATURATION_US, generator
    assert summary["generator"]["loop_lag_us"]["count"] > 0
    if SO_TIMESTAMPNS is not None:  # Linux: every received frame stamped by the kernel
        assert summary["generator"]["receive_clock"] == "kernel"
        # at least the 101 and an echo of each connection, one stamped read each
        assert summary["generator"]["notice_lag_us"]["count"] >= 60 * 2
    latency = summary["latency_us"]
    assert latency["close_handshake"]["count"] == 40
    assert latency["message_rtt"]["count"] == 120
    # the interval log reads back to the same counts as summary.json, per metric and behaviour
    counts = _hlog_counts(out / "histograms.hlog")
    assert counts["close_handshake"] == latency["close_handshake"]["count"]
    assert counts["message_rtt"] == 120
    assert counts["close_handshake:clean"] == 40
    assert counts["session"] == latency["session"]["count"] == 60
    # the resolved scenario parses back to the scenario that ran
    resolved = load_scenario(out / "scenario.toml")
    assert resolved.name == "exec" and resolved.seed == 11
    assert resolved.load == parse_scenario(SCENARIO.format(port=ws_peer.port)).load
    assert resolved.close == parse_scenario(SCENARIO.format(port=ws_peer.port)).close


def test_failed_threshold_returns_1(tmp_path: Path, ws_peer: WebsocketsPeer) -> None:
    text = SCENARIO.format(port=ws_peer.port).replace("connections = 60", "connections = 15")
    text = text.replace('"outcomes.clean" = "> 60%"', '"outcomes.clean" = "> 90%"')
    code, _, summary = _execute(tmp_path, text)
    assert code == 1
    assert [t["ok"] for t in summary["thresholds"]] == [False]
    assert sum(summary["outcomes"].values()) == summary["totals"]["attempted"] == 15


def test_unseeded_run_records_its_seed(tmp_path: Path, ws_peer: WebsocketsPeer) -> None:
    text = SCENARIO.format(port=ws_peer.port).replace("seed = 11\n", "")
    text = text.replace("connections = 60", "connections = 6")  # 4 clean: > 60 %
    code, out, summary = _execute(tmp_path, text)
    assert code == 0
    seed = load_scenario(out / "scenario.toml").seed
    assert isinstance(seed, int) and seed > 0
    assert summary["scenario"]["seed"] == seed
