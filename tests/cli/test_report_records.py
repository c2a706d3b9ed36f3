"""``--record-connections``: one redacted JSON line per connection, streamed through a bounded
buffer; a real run's lines agree with its summary.json."""

from __future__ import annotations

import json
import stat
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wsload.cli import app
from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.report.records import STAMPS, ConnectionLog, record_to_dict
from wsload.runner.modes.execute import execute_run
from wsload.runner.options import RunOptions
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")


def _record(seq: int, detail: str = "") -> ConnectionRecord:
    return ConnectionRecord(
        seq=seq,
        label="clean",
        kind="clean",
        outcome=Outcome.CLEAN,
        scheduled=100.0 + seq,
        connect_start=100.5 + seq,
        socket_closed=101.25 + seq,
        message_rtts=(0.001,),
        code_sent=1000,
        close_initiator=Side.CLIENT,
        detail=detail,
    )


def test_record_to_dict_is_relative_redacted_json() -> None:
    line = record_to_dict(_record(1, "failed at ws://u:pw@h/?token=s3cret"), origin=100.0)
    assert line["seq"] == 1 and line["outcome"] == "clean" and line["kind"] == "clean"
    assert line["scheduled"] == 1.0 and line["connect_start"] == 1.5
    assert line["socket_closed"] == 2.25 and line["upgraded"] is None
    assert line["message_rtts"] == [0.001] and line["close_initiator"] == "client"
    assert "s3cret" not in line["detail"] and "pw@" not in line["detail"]
    assert set(STAMPS) <= set(line)
    json.dumps(line, allow_nan=False)


def test_the_buffer_is_bounded_and_flushed_when_full(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    with ConnectionLog(path, max_buffer=3) as log:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        log.add(_record(1))
        log.add(_record(2))
        assert path.read_text(encoding="utf-8") == ""  # buffered
        log.add(_record(3))
        assert len(path.read_text(encoding="utf-8").splitlines()) == 3  # full: written
        log.add(_record(4))
        log.flush()  # what the runner does at every interval
        assert len(path.read_text(encoding="utf-8").splitlines()) == 4
        log.add(_record(5))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5]
    assert log.written == 5


def test_a_real_run_records_every_connection(tmp_path: Path) -> None:
    text = """
name = "records"
seed = 5
[target]
url = "builtin"
[load]
model = "arrival"
rate = 200
connections = 300
[[close]]
kind = "clean"
weight = 2
[[close]]
kind = "terminate"
weight = 1
"""
    path = tmp_path / "connections.jsonl"
    out = tmp_path / "out"
    code = execute_run(
        parse_scenario(text), RunOptions(record_connections=path), out=out, quiet=True
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["seq"] for line in lines) == list(range(1, 301))
    counted = Counter(line["outcome"] for line in lines)
    assert counted == {k: v for k, v in summary["outcomes"].items() if v}
    assert Counter(line["label"] for line in lines) == {
        label: b["attempted"] for label, b in summary["behaviours"].items()
    }
    for line in lines:  # stamps are relative to the run's start, in connection order
        stamps = [line[name] for name in ("scheduled", "connect_start", "socket_closed")]
        assert all(s is not None for s in stamps)
        assert 0 <= stamps[0] <= stamps[1] <= stamps[2] < summary["duration_s"] + 0.01


def test_an_unwritable_record_file_is_a_clear_error(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "x"\n[load]\nrate = 1\nconnections = 1\n', encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["run", str(scenario), "--out", str(tmp_path / "o"), "-q",
         "--record-connections", str(tmp_path / "missing" / "c.jsonl")],
    )  # fmt: skip
    assert result.exit_code == 3
    assert "cannot create" in result.stderr and "c.jsonl" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
