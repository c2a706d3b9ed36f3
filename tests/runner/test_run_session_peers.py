"""A scripted session (``[[session.steps]]``) in a real ``wsload run`` against application
servers that are not echo servers: Python ``websockets`` and Node ``ws`` (tests/peers.py, the
``/pubsub`` route), and the built-in server's ``app = "pubsub"``.

subscribe → ack → 5 pushes → bye → the server closes with 4000: outcome counts, ``step.*``
counts and message totals are exact. The Node case at 1,000 connections is the issue's "done
when" run (``WSLOAD_DONE_WHEN=1``; skipped otherwise, it takes ~20 s on a busy machine).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peers import NodePeer, WebsocketsPeer, node_skip_reason

from wsload.runner.modes.execute import execute_run
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

PUSHES = 5
SCENARIO = """
name = "pubsub-peer"
seed = 14
[target]
url = "{url}"
{server}
[load]
model = "arrival"
rate = {rate}
connections = {connections}
[session]
message_timeout = "10s"
[[session.steps]]
send = '{{"op":"subscribe","topic":"room-{{seq}}"}}'
[[session.steps]]
expect = {{ json = {{ op = "subscribed" }} }}
name = "subscribe"
[[session.steps]]
receive = {pushes}
[[session.steps]]
send = '{{"op":"bye"}}'
[[close]]
kind = "await_server_close"
timeout = "10s"
[thresholds]
"close_codes.received.4000" = "== 100%"
"step.subscribe.count" = "== {connections}"
"""


def _run(tmp_path: Path, url: str, connections: int, rate: int, server: str = "") -> dict[str, Any]:
    text = SCENARIO.format(
        url=url, server=server, connections=connections, rate=rate, pushes=PUSHES
    )
    out = tmp_path / "out"
    code = execute_run(parse_scenario(text), out=out, quiet=True)
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert code == 0, summary["outcomes"]
    return summary


def _assert_exact(summary: dict[str, Any], n: int) -> None:
    assert sum(summary["outcomes"].values()) == n
    assert summary["outcomes"]["server_closed"] == n, summary["outcomes"]
    assert summary["close_codes"]["received"] == {"4000": n}
    assert summary["close_codes"]["sent"] == {"4000": n}  # the client echoes the server's code
    assert summary["latency_us"]["step.subscribe"]["count"] == n
    totals = summary["totals"]
    assert totals["messages_received"] == n * (1 + PUSHES)
    assert totals["messages_sent"] == 2 * n
    assert totals["messages_unmatched"] == 0
    assert totals["bytes_sent"] > 0 and totals["bytes_received"] > 0
    assert summary["latency_us"]["push_interval"]["count"] == n * (PUSHES - 1)
    assert summary["behaviours"]["await_server_close"]["latency_us"]["step.subscribe"]["count"] == n


@pytest.fixture(scope="module")
def node_peer() -> Iterator[NodePeer]:
    reason = node_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with NodePeer(close_timeout=5.0) as peer:
        yield peer


def test_scripted_session_against_python_websockets_app(tmp_path: Path) -> None:
    with WebsocketsPeer(close_timeout=5.0) as peer:
        url = f"ws://127.0.0.1:{peer.port}/pubsub?pushes={PUSHES}&interval=5&code=4000"
        _assert_exact(_run(tmp_path, url, 20, 100), 20)


@pytest.mark.node
def test_scripted_session_against_node_ws_app(node_peer: NodePeer, tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{node_peer.port}/pubsub?pushes={PUSHES}&interval=5&code=4000"
    _assert_exact(_run(tmp_path, url, 50, 200), 50)


def test_scripted_session_against_the_builtin_app_mode(tmp_path: Path) -> None:
    server = (
        f'[target.server]\napp = "pubsub"\napp_pushes = {PUSHES}\napp_push_interval = "5ms"\n'
        "app_bye_code = 4000"
    )
    summary = _run(tmp_path, "builtin", 30, 100, server)
    _assert_exact(summary, 30)
    assert summary["server"]["messages_out"] == 30 * (1 + PUSHES)


@pytest.mark.node
@pytest.mark.skipif(
    os.environ.get("WSLOAD_DONE_WHEN") != "1", reason="the 1,000-connection run: WSLOAD_DONE_WHEN=1"
)
def test_done_when_1000_connections_against_node_ws(node_peer: NodePeer, tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{node_peer.port}/pubsub?pushes={PUSHES}&interval=10&code=4000"
    summary = _run(tmp_path, url, 1000, 200)
    _assert_exact(summary, 1000)
    print(json.dumps({k: summary[k] for k in ("totals", "outcomes", "close_codes")}))
    print(json.dumps(summary["latency_us"]["step.subscribe"]))
