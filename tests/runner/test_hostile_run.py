"""A real ``wsload run`` (``execute_run``: target, runner, results files) against each hostile
server of tests/hostile.py, and the whole-run bound (duration + drain) against servers that
would otherwise hold connections for ever.

For each case: the run ends on time, every connection gets the case's outcome, summary.json
counts sum to the attempts, its ``errors`` group the connections' details into one cause,
nothing on stderr looks like a traceback, the exit code is 0 (no thresholds: target
misbehaviour is data, not a wsload failure) unless no connection was opened at all (1: nothing
measured, said in one ``wsload: error:`` line), and no file descriptor stays open.
"""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hostile import CASES, TIMEOUT, Case, HostileServer, held_open
from timing import EXIT_SLACK, SLACK

from wsload.runner.modes.execute import execute_run
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

CONNECTIONS = 5
SCENARIO = """
name = "hostile"
seed = 3
[target]
url = "{url}"
handshake_timeout = "{timeout}"
connect_timeout = "{timeout}"
[load]
model = "arrival"
rate = 50
{load}
[session]
messages = {messages}
message_timeout = "{timeout}"
[[close]]
kind = "clean"
timeout = "{close_timeout}"
"""


def _run(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    url: str,
    *,
    messages: int = 1,
    load: str = f"connections = {CONNECTIONS}",
    close_timeout: str = f"{TIMEOUT}s",
    timeout: str = f"{TIMEOUT}s",
) -> tuple[int, float, dict[str, Any]]:
    text = SCENARIO.format(
        url=url, messages=messages, load=load, close_timeout=close_timeout, timeout=timeout
    )
    out = tmp_path / "out"
    started = time.monotonic()
    code = execute_run(parse_scenario(text), out=out, quiet=True)
    elapsed = time.monotonic() - started
    _, err = capfd.readouterr()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    if summary["totals"]["opened"] == 0:
        assert code == 1
        line, err = err.split("\n", 1)
        assert line.startswith("wsload: error: no connection opened: "), line
    assert "Traceback" not in err and "Error" not in err, err
    assert sum(summary["outcomes"].values()) == summary["totals"]["attempted"]
    return code, elapsed, summary


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_run_against_a_hostile_server(
    case: Case, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    before = held_open()
    with HostileServer(case.mode) as server:
        code, elapsed, summary = _run(
            tmp_path,
            capfd,
            server.url,
            messages=case.messages,
            close_timeout=f"{case.timeout}s",
            timeout=f"{case.timeout}s",
        )
    gc.collect()
    assert held_open() <= before  # no socket (or file) left open
    assert code == (1 if case.outcome.startswith("handshake_") else 0)
    outcomes = {k: v for k, v in summary["outcomes"].items() if v}
    assert outcomes == {case.outcome: CONNECTIONS}
    errors = summary["errors"]
    if case.outcome == "clean":
        assert errors == {}
    else:  # every connection failed alike: one cause, whatever address, port or key it had
        assert list(errors) == [case.outcome]
        (detail,) = errors[case.outcome]["details"]
        assert (detail["count"], detail["example_seq"]) == (CONNECTIONS, 1)
        assert errors[case.outcome]["count"] == CONNECTIONS and errors[case.outcome]["other"] == 0
    sent = summary["close_codes"]["sent"]
    assert sent == ({str(case.code_sent): CONNECTIONS} if case.code_sent else {})
    # what browsers would have fired: only a completed handshake then a FIN is clean, 1005 for
    # a Close without code, and 1006 for everything the server broke or left undone
    clean = {"clean": "1000", "server_closed": "1005"}.get(case.outcome)
    expected = {clean or "1006": {"clean": CONNECTIONS if clean else 0,
                                  "unclean": 0 if clean else CONNECTIONS}}  # fmt: skip
    assert summary["close_events"] == expected
    assert summary["behaviours"]["clean"]["close_events"] == expected
    # starts over 80 ms, then each connection's own bound, plus whatever time other processes
    # held the CPU the run wanted (measured by the run itself); then the results are written
    ran = summary["duration_s"] - (summary["generator"]["cpu_wait_s"] or 0.0)
    assert ran < 0.08 + (TIMEOUT if case.waits else 0.0) + SLACK, summary["generator"]
    assert elapsed < summary["duration_s"] + EXIT_SLACK
    assert summary["interrupted"] is False


@pytest.mark.parametrize(
    ("mode", "messages", "what"),
    [
        ("never_upgrade", 1, "handshake"),  # handshake_timeout 60 s
        ("silent", 1, "message"),  # message_timeout 60 s
        ("silent", 0, "close"),  # the clean close's timeout 60 s
    ],
)
def test_the_whole_run_is_bounded_by_duration_plus_drain(
    mode: str, messages: int, what: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Per-phase timeouts far beyond the run: ``duration`` + ``drain`` still ends it, and the
    connections still open are recorded ``interrupted`` (outcomes sum to attempted)."""
    with HostileServer(mode) as server:
        code, elapsed, summary = _run(
            tmp_path,
            capfd,
            server.url,
            messages=messages,
            load='duration = "1s"\ndrain = "1s"',
            close_timeout="60s",
            timeout="60s",
        )
    assert code == (1 if mode == "never_upgrade" else 0)  # that one never opened any
    attempted = summary["totals"]["attempted"]
    assert 40 <= attempted <= 52  # 50/s for 1 s
    assert summary["outcomes"]["interrupted"] == attempted, what
    # the last start near 1 s, then the 1 s drain; not the 60 s timeouts
    assert 1.9 <= summary["duration_s"] < 2.0 + SLACK
    assert elapsed < summary["duration_s"] + EXIT_SLACK  # then summary and report.html
