"""Whole ``wsload run`` processes of a deploy against the managed sweep server
(tests/deploy/sweep_server.py): the scenario they run, the run itself (the process table
checked for a left-behind server after each), and what such a run counts of its connections.
Shared by the deploy tests of one process, of workers and of segments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from wsload.metrics.events import EventTally
from wsload.metrics.histograms import histogram_stats
from wsload.metrics.reconnects import ReconnectTotals
from wsload.metrics.result import SegmentResult

__all__ = [
    "CONNS",
    "MIXED",
    "SERVER",
    "assert_segments_add_up",
    "children_left",
    "connection_counts",
    "run",
    "scenario",
]

# tests/deploy/sweep_server.py, wherever this file's tier folder puts it
SERVER = next(
    p / "deploy" / "sweep_server.py"
    for p in Path(__file__).resolve().parents
    if (p / "deploy" / "sweep_server.py").is_file()
)
CONNS = 40


def scenario(
    tag: Path,
    *server_args: str,
    events: str = '[[target.process.events]]\nat = "1s"\n',
    process: str = "",
    load: str = f'model = "storm"\nconcurrency = {CONNS}\ndrain = "10s"\n',
    close: str = '[[close]]\nkind = "await_server_close"\ntimeout = "8s"\n',
    extra: str = "",
) -> str:
    argv = [sys.executable, str(SERVER), "--port", "{port}", "--tag", str(tag), *server_args]
    return (
        'name = "deploy"\nseed = 1\n[target]\nurl = "ws://127.0.0.1:{port}/"\n'
        f'[target.process]\ncommand = {json.dumps(argv)}\nstop_timeout = "3s"\n{process}'
        f"{events}[load]\n{load}{close}{extra}"
    )


def children_left(tag: Path) -> list[int]:
    """Processes whose command line carries ``tag``: what wsload started and left running."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(tag).encode() in cmdline and b"sweep_server" in cmdline:
            found.append(int(entry.name))
    return found


def run(
    tmp_path: Path, text: str, timeout: float = 60, *args: str, out_name: str = "out"
) -> tuple[int, str, dict[str, Any] | None]:
    path = tmp_path / "deploy.toml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / out_name
    proc = subprocess.run(
        [sys.executable, "-m", "wsload", "run", str(path), "--out", str(out), "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert children_left(tmp_path) == [], "wsload left its server running"
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return proc.returncode, proc.stderr, summary


# 30 clients answer the server's Close; 10 never do (the sweep's second pass is for them)
MIXED = (
    '[[close]]\nkind = "await_server_close"\nname = "answers"\nweight = 3\ntimeout = "8s"\n'
    '[[close]]\nkind = "ignore_server_close"\nname = "mute"\nweight = 1\ntimeout = "8s"\n'
)


def connection_counts(summary: dict[str, Any]) -> dict[str, Any]:
    """What a deploy run counts of its connections, not when things happened."""
    events = [
        {
            **{k: event[k] for k in ("open_at_signal", "closed_clean", "closed_abnormal")},
            **{k: event[k] for k in ("still_open_at_exit", "codes", "close_events")},
            "histogram_counts": {k: v["count"] for k, v in event["latency_us"].items()},
        }
        for event in summary["events"]
    ]
    reconnect = summary["reconnect"]
    return {
        "events": events,
        "reconnect": {
            **{k: reconnect[k] for k in ("clients", "reconnected", "gave_up")},
            "attempts": reconnect["attempts"]["count"],
            "time_to_reconnect": reconnect["latency_us"]["time_to_reconnect"]["count"],
        },
        "opened": summary["totals"]["opened"],
        "server_closed": summary["outcomes"]["server_closed"],
        "restarts": summary["server_process"]["restarts"],
    }


def assert_segments_add_up(out: Path, summary: dict[str, Any]) -> None:
    """The run's ``events`` and ``reconnect`` histograms are the sums of what its segments
    (``<out>/segments/*/totals.json``) tallied, exactly: nothing counted twice or lost."""
    parts = [
        SegmentResult.from_wire(json.loads((d / "totals.json").read_text())["result"])
        for d in sorted((out / "segments").iterdir())
    ]
    for index, event in enumerate(summary["events"]):
        total = EventTally()
        for part in parts:
            assert part.events is not None
            total.merge(part.events[index])
        assert event["open_at_signal"] == total.open_at_signal
        for name in ("close_received", "eof"):
            assert event["latency_us"][name] == histogram_stats(getattr(total, name)), name
    clients = ReconnectTotals()
    for part in parts:
        assert part.reconnect is not None
        clients.merge(part.reconnect)
    assert summary["reconnect"] == clients.as_dict()
