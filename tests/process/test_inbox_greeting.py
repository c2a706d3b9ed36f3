"""A server that speaks first (``websockets`` sending "hello" right behind its 101): 1,000
connections each match their first ``expect`` on the greeting, whether the expect is the first
step or comes after a sleep during which the greeting arrived (the inbox keeps it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from peers import WebsocketsPeer

from wsload.runner.modes.execute import execute_run
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_slow")

CONNECTIONS = 1000


@pytest.mark.parametrize(
    "before", ["", '[[session.steps]]\nsleep = { min = "0s", max = "20ms" }\n']
)
def test_every_first_expect_matches_the_greeting(tmp_path: Path, before: str) -> None:
    with WebsocketsPeer() as peer:
        scenario = parse_scenario(
            f"""
seed = 5
[target]
url = "ws://127.0.0.1:{peer.port}/greet"
[load]
rate = 500
connections = {CONNECTIONS}
drain = "20s"
{before}
[[session.steps]]
expect = {{ equals = "hello" }}
name = "hello"
timeout = "5s"
[[session.steps]]
send = "after {{seq}}"
[[session.steps]]
expect = {{ regex = "^after [0-9]+$" }}
name = "echo"
""",
            source="greet.toml",
        )
        assert execute_run(scenario, out=tmp_path / "out", quiet=True) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["outcomes"]["clean"] == CONNECTIONS
    assert summary["latency_us"]["step.hello"]["count"] == CONNECTIONS
    assert summary["latency_us"]["step.echo"]["count"] == CONNECTIONS
    totals = summary["totals"]
    assert (totals["messages_unmatched"], totals["inbox_overflow"]) == (0, 0)
