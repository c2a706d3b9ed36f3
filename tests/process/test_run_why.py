"""Real ``wsload`` runs (the command, no TTY, ``COLUMNS`` set) that fail in known ways: the
reasons grouped exactly in summary.json, the terminal's Why table and report.html; a run that
opened nothing exits 1 naming why (JUnit and markdown fail too); the terminal summary keeps
every cell whole in 80 and 120 columns; a storm reports how long its release took.

Peers: a port bound but not listening (refused), an HTTP server written here that answers
401 / 404 / nothing, a TLS server whose certificate the client does not trust (trustme), and
the built-in server. Everything on 127.0.0.1; every child process is waited for.
"""

from __future__ import annotations

import json
import os
import re
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from peers import WebsocketsPeer
from verdicts import assert_passed_or_saturated

from wsload.report._format import format_count, format_ms, format_share

pytestmark = pytest.mark.usefixtures("bounded_slow")

TRACEBACK = re.compile(r"Traceback|^\s+File \"|Error:|Exception", re.MULTILINE)


def wsload(
    tmp_path: Path, scenario: str, *args: str, columns: int = 80, command: str = "run"
) -> tuple[int, str, str, dict[str, Any]]:
    """Run the ``wsload`` command on ``scenario`` with stdout a pipe (no TTY)."""
    path = tmp_path / "scenario.toml"
    path.write_text(scenario, encoding="utf-8")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TERM")}
    env["COLUMNS"] = str(columns)
    proc = subprocess.run(
        [sys.executable, "-m", "wsload", command, str(path), "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=150,
        env=env,
        check=False,
    )
    for stream in (proc.stdout, proc.stderr):
        assert not TRACEBACK.search(stream), stream
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return proc.returncode, proc.stdout, proc.stderr, summary


def why_lines(stdout: str) -> list[list[str]]:
    """The Why table's rows as cells (the terminal's own output, parsed back)."""
    block = stdout.split("\nWhy", 1)[1].split("\nresults:", 1)[0]
    rows = [line for line in block.splitlines() if "│" in line]
    return [[cell.strip() for cell in line.split("│")] for line in rows]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connects to it are refused, and nobody else gets it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


SIMPLE = """
name = "{name}"
seed = 1
[target]
url = "{url}"
{target}
[load]
rate = 200
connections = {n}
[[close]]
kind = "clean"
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_closed_port_exits_1_and_says_why(tmp_path: Path, closed_port: int, workers: int) -> None:
    """Nothing measured is not a pass: exit 1 without thresholds, with one line naming the
    cause; the reasons merge exactly across worker processes; CI outputs fail."""
    junit, markdown = tmp_path / "junit.xml", tmp_path / "summary.md"
    code, stdout, stderr, summary = wsload(
        tmp_path,
        SIMPLE.format(name="closed", url=f"ws://127.0.0.1:{closed_port}/", target="", n=50),
        "--workers",
        str(workers),
        "--junit",
        str(junit),
        "--markdown",
        str(markdown),
    )
    assert code == 1
    assert "wsload: error: no connection opened: 50 refused (Connection refused)\n" in stderr
    refused = {"count": 50, "details": [_detail("Connection refused", 50, 1)], "other": 0}
    assert summary["errors"] == {"refused": refused}
    assert summary["behaviours"]["clean"]["errors"] == {"refused": refused}
    assert why_lines(stdout) == [["refused", "50", "Connection refused", "#1"]]
    xml = junit.read_text(encoding="utf-8")
    assert 'failures="1"' in xml and 'name="nothing_opened"' in xml
    assert "no connection opened: 50 refused (Connection refused)" in xml
    md = markdown.read_text(encoding="utf-8")
    assert md.startswith("### ❌ wsload closed: fail")
    assert "> ❌ **nothing_opened** (fail): no connection opened: 50 refused" in md
    assert "| refused | 50 | Connection refused | 1 |" in md


def test_a_repeated_run_that_opens_nothing_says_why_for_the_merged_result(
    tmp_path: Path, closed_port: int
) -> None:
    """``--repeat`` goes through the same frame as a run: each run and the merged result of
    both say why they measured nothing, and the exit code is 1."""
    url = f"ws://127.0.0.1:{closed_port}/"
    code, stdout, stderr, summary = wsload(
        tmp_path, SIMPLE.format(name="closed", url=url, target="", n=20), "--repeat", "2"
    )
    assert code == 1
    each = "wsload: error: no connection opened: 20 refused (Connection refused)\n"
    merged = "wsload: error: no connection opened: 40 refused (Connection refused)\n"
    assert stderr.count(each) == 2 and stderr.endswith(merged), stderr
    assert summary["repeat"]["count"] == 2
    assert summary["errors"]["refused"]["details"] == [_detail("Connection refused", 40, 1)]
    assert why_lines(stdout) == [["refused", "40", "Connection refused", "#1"]]
    assert (tmp_path / "out" / "scenario.toml").is_file()


def _detail(text: str, count: int, seq: int) -> dict[str, Any]:
    return {"detail": text, "count": count, "example_seq": seq}


class _Http(socketserver.StreamRequestHandler):
    """``/{seq}``: 401 when seq % 3 == 1, 404 (with a secret in its reason) when 2, and for
    the rest the connection is closed without an answer."""

    def handle(self) -> None:
        line = self.rfile.readline().decode("latin-1")
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        seq = int(line.split()[1].lstrip("/").split("?")[0])
        if seq % 3 == 0:
            return
        status = "401 Unauthorized" if seq % 3 == 1 else "404 Not Found api_key=s3cret"
        self.wfile.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())


@pytest.fixture
def http_server() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Http)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_mixed_upgrade_failures_grouped_in_terminal_summary_and_report(
    tmp_path: Path, http_server: int
) -> None:
    url = f"ws://127.0.0.1:{http_server}/{{seq}}?token=s3cret"
    code, stdout, stderr, summary = wsload(
        tmp_path, SIMPLE.format(name="http", url=url, target="", n=30)
    )
    rejected = [
        _detail("HTTP 401 Unauthorized", 10, 1),
        _detail("HTTP 404 Not Found api_key=REDACTED", 10, 2),
    ]
    invalid = [_detail("connection closed during the handshake after 0 response bytes", 10, 3)]
    assert summary["errors"] == {
        "handshake_rejected": {"count": 20, "details": rejected, "other": 0},
        "handshake_invalid": {"count": 10, "details": invalid, "other": 0},
    }
    assert summary["http_statuses"] == {"401": 10, "404": 10}
    assert code == 1
    assert (
        "wsload: error: no connection opened: 20 handshake_rejected (HTTP 401 Unauthorized), "
        "10 handshake_invalid (connection closed during the handshake after 0 response bytes)"
    ) in stderr
    rows = why_lines(stdout)
    assert rows[:2] == [
        ["handshake_rejected", "10", "HTTP 401 Unauthorized", "#1"],
        ["", "10", "HTTP 404 Not Found api_key=REDACTED", "#2"],
    ]
    assert rows[2][0] == "handshake_invalid" and rows[2][1] == "10" and rows[2][-1] == "#3"
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Why connections failed</h2>" in page
    assert (
        "<td>all</td><td>handshake_rejected</td><td class=n>10</td>"
        "<td>HTTP 401 Unauthorized</td><td class=n>1</td>"
    ) in page
    for text in (stdout, stderr, page, json.dumps(summary)):
        assert "s3cret" not in text


@pytest.mark.parametrize(
    ("thresholds", "code"),
    [
        ('"http_statuses.401" = "== 100%"\n"outcomes.handshake_rejected" = "== 6"', 0),
        ('"http_statuses.401" = "< 50%"', 1),  # judged by it: fails on its own
        ('"http_statuses.401" = "== 100%"\n"connect.p99" = "< 1s"', 1),  # not only rejections
    ],
)
def test_a_rejection_only_scenario_is_judged_by_its_thresholds(
    tmp_path: Path, http_server: int, thresholds: str, code: int
) -> None:
    """Every upgrade refused with 401, as the scenario means to check: its thresholds on
    rejections decide, not "no connection opened"."""
    url = f"ws://127.0.0.1:{http_server}/1?n={{seq}}"  # path /1: always 401
    scenario = SIMPLE.format(name="reject", url=url, target="", n=6) + "[thresholds]\n"
    got, _, stderr, summary = wsload(tmp_path, scenario + thresholds + "\n")
    assert summary["http_statuses"] == {"401": 6}
    assert got == code
    assert ("no connection opened" in stderr) == ("connect.p99" in thresholds)


def test_an_untrusted_certificate_is_one_tls_reason(tmp_path: Path) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with WebsocketsPeer(ssl_context=context) as peer:
        url = f"wss://127.0.0.1:{peer.port}/"
        code, stdout, stderr, summary = wsload(
            tmp_path, SIMPLE.format(name="tls", url=url, target="", n=10)
        )
    assert code == 1
    (outcome,) = summary["errors"]
    assert outcome == "tls_error"
    (detail,) = summary["errors"]["tls_error"]["details"]
    assert (detail["count"], detail["example_seq"]) == (10, 1)
    assert "certificate verify failed" in detail["detail"]
    assert f"no connection opened: 10 tls_error ({detail['detail']})" in stderr
    assert why_lines(stdout)[0][:2] == ["tls_error", "10"]


MIXED = """
name = "mixed-failures-in-a-long-named-scenario"
seed = 7
[target]
url = "builtin"
[target.server]
reject_share = 0.25
reject_status = 503
close_reply_delay = "1ms"
[load]
rate = 200
connections = 120
[[close]]
name = "graceful-clients-with-a-long-name"
kind = "clean"
weight = 70
code = 1000
[[close]]
kind = "terminate"
weight = 30
[thresholds]
"close_handshake.p99" = "< 5s"
"outcomes.clean" = "> 10%"
"behaviours.graceful-clients-with-a-long-name.outcomes.clean" = "> 10%"
"""


@pytest.mark.parametrize("columns", [80, 120])
def test_the_terminal_summary_keeps_every_cell_whole(tmp_path: Path, columns: int) -> None:
    code, stdout, stderr, summary = wsload(tmp_path, MIXED, columns=columns)
    assert_passed_or_saturated(code, summary, stderr)
    lines = stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= columns
    assert "…" not in stdout
    cells = _summary_cells(summary)
    for cell in cells:
        assert any(cell in line for line in lines), (cell, stdout)
    rejected = summary["errors"]["handshake_rejected"]
    assert rejected["details"][0]["detail"] == "HTTP 503 Service Unavailable"
    assert rejected["count"] == summary["http_statuses"]["503"] > 0
    if columns == 120:  # wide enough for the behaviours table in one piece
        assert "Close behaviours (continued)" not in stdout


def _summary_cells(summary: dict[str, Any]) -> list[str]:
    """Every one-line cell the terminal summary shows, formatted as it shows them."""
    cells = []
    for label, b in summary["behaviours"].items():
        close = b["latency_us"]["close_handshake"]
        cells += [label, b["kind"], format_count(b["attempted"])]
        if b["clean"] is not None:
            cells.append(format_share(b["clean"], b["attempted"]))
        cells += [format_ms(close[s]) for s in ("p50", "p99", "max")]
        cells += [f"{code}×{n:,}" for code, n in b["close_codes"]["sent"].items()]
    for name, n in summary["outcomes"].items():
        if n:
            cells += [name, format_count(n), format_share(n, summary["totals"]["attempted"])]
    for t in summary["thresholds"]:
        cells += [t["expr"], t["condition"]]
    return cells


RELEASE_BOUND = 0.1
"""docs/scale-out.md: a segment whose connections are open releases within a wake-up of the shared
instant (a few ms; well under 100 ms on a machine that is not saturated)."""

STORM = """
name = "storm"
seed = 2
[target]
url = "builtin"
[load]
model = "storm"
concurrency = {n}
rate = 500
[[close]]
kind = "clean"
[thresholds]
"close_start_lag.max" = "< 100s"
"close_start_lag.count" = ">= {n}"
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_storm_reports_its_release_spread(tmp_path: Path, workers: int) -> None:
    n = 200
    code, stdout, stderr, summary = wsload(
        tmp_path, STORM.format(n=n), "--workers", str(workers), columns=120
    )
    assert_passed_or_saturated(code, summary, stdout + stderr)
    lag = summary["latency_us"]["close_start_lag"]
    assert lag["count"] == n == summary["totals"]["opened"]
    assert 0 <= lag["min"] <= lag["p50"] <= lag["max"] < summary["duration_s"] * 1e6
    assert all(t["ok"] for t in summary["thresholds"])
    spread = summary["generator"]["storm_release_s"]
    assert 0 < spread["first"] <= spread["last"] < summary["duration_s"]
    assert f"released {n} closes in " in stdout
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert f"released {n} closes in " in page
    if workers == 1:  # released when all were open, and counted from there
        assert spread["planned"] is None and spread["first"] == spread["last"]
        return
    # --workers: the parent released both once both were open, and each counts from that one
    # instant (wsload.runner.load.gate), on its own clock (from its own start)
    assert spread["planned"] <= spread["first"] <= spread["last"]
    assert lag["min"] < RELEASE_BOUND * 1e6
    assert "from the segments' shared release instant" in stdout.replace("\n", " ")
    for part in ("0of2", "1of2"):
        segment = json.loads((tmp_path / "out" / "segments" / part / "summary.json").read_text())
        own = segment["generator"]["storm_release_s"]
        assert own["planned"] <= own["first"] == own["last"]
        assert own["first"] - own["planned"] < RELEASE_BOUND
        own_lag = segment["latency_us"]["close_start_lag"]
        assert own_lag["count"] == n // 2
        # 3 significant digits in the histogram, 1 µs in the rounded instants
        assert own_lag["min"] >= (own["first"] - own["planned"]) * 1e6 * (1 - 1e-3) - 2


SEARCH = """
name = "search-nothing"
seed = 1
[target]
url = "ws://127.0.0.1:{port}/"
[load]
model = "search"
drain = "1s"
[load.search]
over = "rate"
start = 50
max = 100
step_duration = "1s"
cooldown = "0s"
[thresholds]
"outcomes.clean" = "> 50%"
"""


def test_a_search_that_opens_nothing_exits_1_and_says_why(tmp_path: Path, closed_port: int) -> None:
    code, _, stderr, summary = wsload(tmp_path, SEARCH.format(port=closed_port), command="search")
    assert code == 1
    assert re.search(
        r"wsload: error: no connection opened: \d+ refused \(Connection refused\)", stderr
    )
    assert list(summary["errors"]) == ["refused"]
