"""``[data]`` end to end: a unique feeder over ``--workers 2`` against a real ``websockets``
server hands each row out once (seen by the server in the URL and a header), ends the load when
the rows run out with that reason in summary.json, and never writes a secret column's value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.peers import WebsocketsPeer
from wsload.runner.modes.execute import execute_run
from wsload.runner.options import RunOptions
from wsload.scenario.parse import load_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

ROWS = 30


def test_unique_rows_across_two_workers_each_once_then_the_load_ends(tmp_path: Path) -> None:
    users = "user,token\n" + "".join(f"u{i},secret-{i:04d}\n" for i in range(1, ROWS + 1))
    (tmp_path / "users.csv").write_text(users, encoding="utf-8")
    with WebsocketsPeer() as peer:
        (tmp_path / "feed.toml").write_text(
            f"""
seed = 3
[data]
file = "users.csv"
order = "unique"
secret_columns = ["token"]
[target]
url = "ws://127.0.0.1:{peer.port}/echo?user={{data:user}}"
headers = {{ X-Token = "{{data:token}}" }}
[load]
rate = 200
connections = {ROWS + 20}
drain = "10s"
[[session.steps]]
send = "hello {{data:user}} {{data:token}}"
[[session.steps]]
expect = {{ regex = "^hello u[0-9]+ secret-" }}
""",
            encoding="utf-8",
        )
        scenario = load_scenario(tmp_path / "feed.toml")
        out = tmp_path / "out"
        assert execute_run(scenario, RunOptions(workers=2), out=out, quiet=True) == 0
    users_seen = [path.split("user=")[1] for path, _ in peer.requests]
    tokens_seen = [headers["x-token"] for _, headers in peer.requests]
    assert sorted(users_seen) == sorted(f"u{i}" for i in range(1, ROWS + 1))  # each row once
    assert [t[-4:] for t in tokens_seen] == [f"{int(u[1:]):04d}" for u in users_seen]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["generator"]["processes"] == 2
    assert summary["totals"]["attempted"] == ROWS
    assert summary["outcomes"]["clean"] == ROWS
    assert summary["ended_by"].startswith("data: every row of ")
    assert '(30 rows, order = "unique")' in summary["ended_by"]
    for path in out.rglob("*"):
        if path.is_file():
            assert b"secret-00" not in path.read_bytes(), path
