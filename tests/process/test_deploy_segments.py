"""A deploy split with ``--segment`` and put together with ``wsload merge``: two ``wsload run``
processes share one start (``--start-at``); the ``--own-server`` one starts the managed server
(tests/deploy/sweep_server.py, on a fixed port), fires its event at the planned instant and
restarts it; the other connects to that port. Each audits its own clients from the event's
planned instant and reconnects on its own. The merge must count what one process counts for
the same connections (the one-process run of the scenario), and its histograms must be the ones
one process auditing both segments' records would build (within the histograms' precision).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from deploy_runs import MIXED, children_left, connection_counts, run, scenario

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.metrics.events import EventAudit
from wsload.metrics.reconnects import ReconnectAudit
from wsload.report.records import STAMPS
from wsload.runner.targets.managed import free_port
from wsload.scenario.parse import parse_scenario

pytestmark = [pytest.mark.usefixtures("bounded_slow"), pytest.mark.slow]

AT = 2.0
RECONNECT = '[reconnect]\nbackoff = { initial = "50ms", max = "500ms" }\nmax_attempts = 40\n'


def _scenario(tmp_path: Path, port: int) -> str:
    return scenario(
        tmp_path,
        "--grace",
        "1",
        process=f"port = {port}\nrestart = true\nmax_restarts = 1\n",
        events=f'[[target.process.events]]\nat = "{AT:g}s"\n',
        close=MIXED.replace('"8s"', '"3s"'),
        extra=RECONNECT,
    )


def _wsload(*args: str) -> list[str]:
    return [sys.executable, "-m", "wsload", *args]


def _records(path: Path) -> list[ConnectionRecord]:
    """A connections.jsonl file back into records (stamps from the segments' common start)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        out.append(
            ConnectionRecord(
                seq=d["seq"],
                label=d["label"],
                kind=d["kind"],
                outcome=Outcome(d["outcome"]),
                attempt=d["attempt"],
                code_received=d["code_received"],
                reason_received=d["reason_received"],
                reset=d["reset"],
                **{name: d[name] for name in STAMPS},
            )
        )
    return out


def _close(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two histograms' statistics agree within 3 significant digits (plus the records' 1 µs
    rounding)."""
    assert a["count"] == b["count"]
    for key, value in a.items():
        if key != "count" and isinstance(value, int | float):
            assert value == pytest.approx(b[key], rel=2e-3, abs=3), key


def test_two_segments_and_a_merge_count_what_one_process_counts(tmp_path: Path) -> None:
    port = free_port()
    text = _scenario(tmp_path, port)
    rc, err, one = run(tmp_path, text, 90, out_name="one")
    assert rc == 0, err
    assert one is not None
    path = tmp_path / "deploy.toml"
    # both processes imported and the server up by then: 6 s was too little beside a busy
    # machine (a late segment shifts its clients past the deploy, which then found none open)
    start_at = f"{time.time() + 15:.3f}"
    procs = []
    for index, extra in ((0, ("--own-server",)), (1, ())):
        out = tmp_path / f"seg{index}"
        argv = _wsload(
            "run", str(path), "--segment", f"{index}/2", "--start-at", start_at, "--out",
            str(out), "--quiet", "--record-connections", str(tmp_path / f"r{index}.jsonl"),
            *extra,
        )  # fmt: skip
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for proc in procs:
        _, err_bytes = proc.communicate(timeout=90)
        assert proc.returncode == 0, err_bytes.decode()
    assert children_left(tmp_path) == []
    owner = json.loads((tmp_path / "seg0" / "summary.json").read_text())
    other = json.loads((tmp_path / "seg1" / "summary.json").read_text())
    assert owner["server_process"]["restarts"] == 1 and "server_process" not in other
    assert other["events"][0]["pid"] is None  # it only knows the planned instant
    assert owner["events"][0]["pid"] == owner["server_process"]["runs"][0]["pid"]
    # the owner stopped its server only once no client was left on it, whoever's
    assert owner["server_process"]["runs"][-1]["stopped_by_wsload"] is True
    merged_dir = tmp_path / "merged"
    merge = subprocess.run(
        _wsload("merge", str(tmp_path / "seg0"), str(tmp_path / "seg1"), "--out", str(merged_dir)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert merge.returncode == 0, merge.stderr
    merged = json.loads((merged_dir / "summary.json").read_text())
    assert merged["generator"]["segment"] is None
    assert connection_counts(merged) == connection_counts(one)
    assert merged["server_process"] == owner["server_process"]
    assert (merged_dir / "server.log").read_text() == (tmp_path / "seg0" / "server.log").read_text()
    (event,) = merged["events"]
    assert event["pid"] == owner["events"][0]["pid"] and event["exit_s"] is not None
    assert (
        event["open_at_signal"]
        == owner["events"][0]["open_at_signal"] + (other["events"][0]["open_at_signal"])
    )
    # what one process auditing every connection of both segments gives
    records = _records(tmp_path / "r0.jsonl") + _records(tmp_path / "r1.jsonl")
    audit = EventAudit(((AT, "SIGTERM"),))
    audit.signal_sent(0, AT, event["pid"])
    audit.process_exited(event["pid"], AT + event["exit_s"], event["exit_status"])
    reconnects = ReconnectAudit(parse_scenario(text).reconnect)  # type: ignore[arg-type]
    for rec in sorted(records, key=lambda r: (r.seq, r.attempt)):
        audit.add(rec)
        reconnects.add(rec)
    (whole,) = audit.finish()
    for key in ("open_at_signal", "closed_clean", "closed_abnormal", "still_open_at_exit"):
        assert event[key] == whole[key], key
    assert event["codes"] == whole["codes"] and event["close_events"] == whole["close_events"]
    for metric in ("close_received", "eof"):
        _close(event["latency_us"][metric], whole["latency_us"][metric])
    expected = reconnects.as_dict()
    for key in ("clients", "reconnected", "gave_up", "clean", "attempts_total"):
        assert merged["reconnect"][key] == expected[key], key
    for metric, stats in expected["latency_us"].items():
        _close(merged["reconnect"]["latency_us"][metric], stats)


def test_segment_deploys_refuse_what_they_cannot_agree_on(tmp_path: Path) -> None:
    path = tmp_path / "deploy.toml"
    path.write_text(_scenario(tmp_path, free_port()), encoding="utf-8")
    cases = [
        (("--segment", "0/2"), "need --start-at"),
        (("--own-server",), "only a --segment run shares its server"),
        (("--segment", "0/2", "--start-at", "1", "--set", "target.process.port=0"), "fixed port"),
    ]
    for args, message in cases:
        proc = subprocess.run(
            _wsload("run", str(path), "--out", str(tmp_path / "x"), *args),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
    builtin = tmp_path / "builtin.toml"
    builtin.write_text(
        'name = "b"\n[target]\nurl = "builtin"\n[load]\nrate = 1\nduration = "1s"\n',
        encoding="utf-8",
    )
    proc = subprocess.run(
        _wsload("run", str(builtin), "--segment", "0/2", "--own-server"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "no [target.process] command" in proc.stderr
