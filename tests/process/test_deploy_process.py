"""A real managed server process (tests/deploy/sweep_server.py, websockets) under ``wsload run``:
the soft and hard shutdown sweeps audited from the signal, a restart with every logical client
reconnected, the failure paths, Ctrl-C during a reconnect storm, and never a child left behind
(the process table is checked after each run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from children import wait_for_load
from deploy_runs import (
    CONNS,
    MIXED,
    assert_segments_add_up,
    children_left,
    connection_counts,
    run,
    scenario,
)
from timing import SLACK
from verdicts import assert_passed_or_saturated

pytestmark = [pytest.mark.usefixtures("bounded_slow"), pytest.mark.slow]


def test_soft_sweep_every_client_gets_1001_within_the_grace(tmp_path: Path) -> None:
    close = MIXED
    thresholds = '[thresholds]\n"events.0.close_received.p99" = "< 1s"\n'
    rc, err, summary = run(
        tmp_path,
        scenario(tmp_path, "--sweep", "soft", "--grace", "1", close=close, extra=thresholds),
    )
    assert summary is not None, err
    # a latency threshold: a saturated run is inconclusive (exit 1) on a busy machine
    assert_passed_or_saturated(rc, summary, err)
    (event,) = summary["events"]
    assert event["open_at_signal"] == CONNS
    assert event["codes"] == {"1001": CONNS}
    # a browser would have answered too: every close event is a clean 1001
    assert event["closed_clean"] == CONNS
    assert event["close_events"] == {"1001": {"clean": CONNS, "unclean": 0}}
    assert event["closed_abnormal"] == 0 and event["still_open_at_exit"] == 0
    # after the grace, and on its own: exit status 0, not the SIGKILL at the 3 s stop_timeout
    assert event["exit_status"] == 0 and event["exit_s"] >= 1.0
    close_us, eof_us = event["latency_us"]["close_received"], event["latency_us"]["eof"]
    assert close_us["count"] == CONNS and close_us["max"] < SLACK * 1e6  # all Closes at once
    # the mute ones are dropped by the second sweep: 1 s (the grace) after the signal, not at
    # the server's own close timeout (6 s) nor the clients' (8 s)
    assert eof_us["count"] == CONNS and 1_000_000 <= eof_us["max"] < (1.0 + SLACK) * 1e6
    assert summary["behaviours"]["mute"]["outcomes"]["server_dropped"] == 10
    assert summary["behaviours"]["answers"]["outcomes"]["server_closed"] == 30
    assert [t["ok"] for t in summary["thresholds"]] == [True]
    log = (tmp_path / "out" / "server.log").read_text()
    assert "soft sweep of 40" in log and "[wsload] sent SIGTERM" in log


def test_hard_sweep_drops_everyone_on_the_next_tick(tmp_path: Path) -> None:
    rc, err, summary = run(tmp_path, scenario(tmp_path, "--sweep", "hard", close=MIXED))
    assert rc == 0, err
    assert summary is not None
    (event,) = summary["events"]
    assert event["open_at_signal"] == CONNS
    # the Close frames leave, then the sockets are dropped on the next tick: whether a client's
    # answer made it first is a race (clean or not), but nobody waits, the mute ones included
    assert event["codes"] == {"1001": CONNS}
    assert sum(sum(c.values()) for c in event["close_events"].values()) == CONNS
    eof = event["latency_us"]["eof"]
    # soft (the server's default grace): the mute ones dropped, and the server gone, at 2 s
    assert eof["count"] == CONNS and eof["max"] < SLACK * 1e6
    assert summary["behaviours"]["mute"]["outcomes"]["server_dropped"] == 10
    assert event["exit_status"] == 0 and event["exit_s"] < SLACK


def test_restart_and_every_client_reconnects(tmp_path: Path) -> None:
    reconnect = (
        '[reconnect]\nbackoff = { initial = "50ms", max = "500ms", jitter = "full" }\n'
        "max_attempts = 40\n"
    )
    rc, err, summary = run(
        tmp_path,
        scenario(
            tmp_path,
            "--grace",
            "1",
            process="restart = true\nmax_restarts = 1\n",
            close='[[close]]\nkind = "await_server_close"\ntimeout = "2s"\n',
            extra=reconnect,
        ),
    )
    assert rc == 0, err
    assert summary is not None
    process = summary["server_process"]
    assert process["restarts"] == 1 and len(process["runs"]) == 2
    assert process["runs"][0]["exit_status"] == 0
    reconnects = summary["reconnect"]
    assert reconnects["clients"] == CONNS
    assert reconnects["reconnected"] == CONNS and reconnects["gave_up"] == 0
    attempts = reconnects["attempts"]
    assert attempts["min"] >= 2 and attempts["max"] <= 40
    ttr = reconnects["latency_us"]["time_to_reconnect"]
    assert ttr["count"] == CONNS
    # nobody could reconnect before the new process was ready
    outage = process["runs"][1]["ready_s"] - summary["events"][0]["at_s"]
    assert ttr["min"] >= 0.9 * outage * 1e6 - 50_000
    delay = reconnects["latency_us"]["reconnect_delay"]
    assert delay["max"] <= 500_000 * 1.001
    attempted = summary["totals"]["attempted"]
    assert attempted == sum(summary["outcomes"].values()) > CONNS
    assert summary["outcomes"]["server_closed"] == CONNS  # the sweep
    assert summary["totals"]["opened"] == 2 * CONNS  # every client upgraded twice
    # clients, not attempts: the refused reconnects are attempts, every client closed cleanly
    assert reconnects["attempts_total"] == attempted and reconnects["clean"] == CONNS
    assert summary["outcomes"]["refused"] > 0  # the restart's window was really hit
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert f"{CONNS:,} clients, {attempted:,} attempts, {CONNS:,} reconnected, 0 gave up; " \
        "clean 100.0 % of clients" in page  # fmt: skip


def test_a_deploy_on_two_workers_counts_what_one_process_counts(tmp_path: Path) -> None:
    """The parent owns the server and fires the event; each worker audits its own clients
    against the announced instant: the merged ``events`` and ``reconnect`` count the same
    connections as the one-process run, with the times on the same scale."""
    text = scenario(
        tmp_path,
        "--grace",
        "1",
        process="restart = true\nmax_restarts = 1\n",
        events='[[target.process.events]]\nat = "2s"\n',  # every client open by then
        close=MIXED.replace('"8s"', '"3s"'),
        extra='[reconnect]\nbackoff = { initial = "50ms", max = "500ms" }\nmax_attempts = 40\n',
    )
    summaries = []
    for name, args in (("one", ()), ("two", ("--workers", "2"))):
        rc, err, summary = run(tmp_path, text, 90, *args, out_name=name)
        assert rc == 0, err
        assert summary is not None
        summaries.append(summary)
    one, two = summaries
    assert two["generator"]["processes"] == 2
    assert connection_counts(two) == connection_counts(one)
    counts = connection_counts(one)
    assert counts["events"][0]["open_at_signal"] == CONNS
    # the 30 that answered the Close come back; the 10 mute ones end server_dropped, which is
    # not in [reconnect].on
    assert counts["reconnect"]["reconnected"] == 30 and counts["restarts"] == 1
    assert counts["server_closed"] == 30
    for summary in (one, two):
        (event,) = summary["events"]
        # the answering clients' Closes come at once; the mute ones are dropped at the grace
        assert event["latency_us"]["close_received"]["max"] < SLACK * 1e6
        assert 1_000_000 <= event["latency_us"]["eof"]["max"] < (1.0 + SLACK) * 1e6
        assert event["exit_s"] >= 1.0
    assert len(list((tmp_path / "two" / "segments").iterdir())) == 2
    assert_segments_add_up(tmp_path / "two", two)


@pytest.mark.parametrize(
    ("args", "process", "message"),
    [
        ((), 'command = ["/nonexistent/wsload-test-server"]\n', "cannot run"),
        (("--exit-at-once",), "", "exiting at once as asked"),
        (("--no-listen",), 'ready_timeout = "1s"\n', "did not accept connections"),
        (
            ("--ready-after", "60"),
            'ready_timeout = "1s"\nready_line = "^sweep_server: ready$"\n',
            "printed no line matching ready_line",
        ),
    ],
)
def test_a_failed_start_exits_3_with_the_log(
    tmp_path: Path, args: tuple[str, ...], process: str, message: str
) -> None:
    text = scenario(tmp_path, *args, events="", load='rate = 10\nduration = "1s"\n')
    if process.startswith("command"):  # replaces the real command line
        text = "\n".join(
            process.rstrip() if line.startswith("command = ") else line
            for line in text.splitlines()
        )
    else:
        text = text.replace("stop_timeout", process + "stop_timeout", 1)
    rc, err, summary = run(tmp_path, text)
    assert rc == 3, err
    assert message in err and "Traceback" not in err
    # no load ran; the folder still says why (issue 26: a failed run's summary has its verdict)
    assert summary is not None and summary["totals"]["attempted"] == 0
    assert summary["verdict"] == "fail"
    assert [r["code"] for r in summary["reasons"]] == ["error"]
    assert message in summary["reasons"][0]["message"]


def test_the_load_waits_for_the_ready_line(tmp_path: Path) -> None:
    # the port accepts at once, the server says it is ready 1 s later: the load starts after it
    ready = 'ready_line = "sweep_server: ready"\n'
    clean = '[[close]]\nkind = "clean"\n'
    text = scenario(tmp_path, "--ready-after", "1", process=ready, events="", close=clean)
    rc, err, summary = run(tmp_path, text)
    assert rc == 0 and summary is not None, err
    (only,) = summary["server_process"]["runs"]
    assert only["ready_s"] - only["started_s"] >= 1.0
    assert only["ready_s"] <= 0.0  # the load started once it was ready
    assert summary["outcomes"]["clean"] == CONNS
    log = (tmp_path / "out" / "server.log").read_text()
    assert log.index("sweep_server: ready") < log.index("and printed its ready_line")


def test_a_server_that_ignores_sigterm_is_killed_after_stop_timeout(tmp_path: Path) -> None:
    text = scenario(
        tmp_path, "--on-term", "ignore", events="", load='rate = 20\nduration = "1s"\n'
    ).replace('stop_timeout = "3s"', 'stop_timeout = "1s"')
    started = time.monotonic()
    rc, err, summary = run(tmp_path, text)
    assert rc == 0, err
    assert summary is not None
    (only,) = summary["server_process"]["runs"]
    assert only["exit_status"] == -signal.SIGKILL
    assert time.monotonic() - started >= 2.0  # 1 s of load, then the 1 s stop_timeout
    assert "SIGKILL" in (tmp_path / "out" / "server.log").read_text()


def test_a_crash_mid_run_is_an_outcome_and_fails_the_verdict(tmp_path: Path) -> None:
    # the crash comes 2 s after the server listens: every client is open by then, unless a
    # busy machine delays the load's start (after the readiness) by more than that
    text = scenario(tmp_path, "--crash-after", "2", events="")
    rc, err, summary = run(tmp_path, text)
    assert rc == 1, err  # a verdict (the target crashed), not a tool error (3)
    assert summary is not None
    assert summary["verdict"] == "fail"
    assert [r["code"] for r in summary["reasons"]] == ["server_crashed"]
    (only,) = summary["server_process"]["runs"]
    assert only["exit_status"] == 7, only
    # measured from the start and the readiness, not from the load's start (which follows the
    # readiness by a busy machine's delay)
    assert (
        only["exit_s"] - only["started_s"] >= 2.0 and only["exit_s"] - only["ready_s"] < 2.0 + SLACK
    ), only
    assert summary["outcomes"]["abnormal"] + summary["outcomes"]["reset"] == CONNS


@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["one", "workers"])
def test_ctrl_c_during_a_reconnect_storm(tmp_path: Path, workers: tuple[str, ...]) -> None:
    # the server goes away at 1 s and is never restarted: every client keeps reconnecting;
    # with workers, Ctrl-C stops them (their results kept), then the server, then writes
    text = scenario(
        tmp_path,
        "--grace",
        "0.2",
        extra='[reconnect]\nbackoff = { initial = "20ms", max = "200ms" }\nmax_attempts = 1000\n',
    )
    path = tmp_path / "deploy.toml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsload", "run", str(path), "--out", str(out), "--quiet", *workers],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        log = out / "server.log"
        deadline = time.monotonic() + 20
        while not (log.exists() and "exited with status" in log.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        time.sleep(1.0)  # the storm of refused reconnects is under way
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert children_left(tmp_path) == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert summary["totals"]["attempted"] == sum(summary["outcomes"].values())
    assert summary["outcomes"]["refused"] > CONNS
    assert summary["reconnect"]["clients"] == CONNS
    assert summary["reconnect"]["reconnected"] == 0
    assert summary["events"][0]["open_at_signal"] == CONNS
    assert summary["generator"]["processes"] == (2 if workers else 1)
    assert (out / "report.html").exists() and (out / "totals.json").exists()


def test_an_event_runs_the_builtin_servers_shutdown_storm(tmp_path: Path) -> None:
    text = (
        'name = "builtin-deploy"\nseed = 1\n[target]\nurl = "builtin"\n'
        '[target.server]\nshutdown_grace = "500ms"\n'
        '[target.process]\n[[target.process.events]]\nat = "1s"\nsignal = "SIGTERM"\n'
        f'[load]\nmodel = "storm"\nconcurrency = {CONNS}\n'
        '[[close]]\nkind = "await_server_close"\ntimeout = "5s"\n'
        '[thresholds]\n"events.0.closed_clean" = "> 99%"\n'
    )
    rc, err, summary = run(tmp_path, text)
    assert rc == 0, err
    assert summary is not None
    (event,) = summary["events"]
    assert event["pid"] is not None and event["exit_s"] is None  # the server keeps serving
    assert event["open_at_signal"] == CONNS and event["closed_clean"] == CONNS
    assert event["codes"] == {"1001": CONNS}
    assert event["latency_us"]["close_received"]["max"] < 500_000  # within the grace
    assert summary["server"]["close_codes_sent"] == {"1001": CONNS}
    assert "server_process" not in summary


def test_admission_refusals_and_giving_up(tmp_path: Path) -> None:
    """The built-in server refuses 30 % of upgrades with 503 and closes every connection with
    1013 Try Again Later after 100 ms: every client retries until max_attempts, then gives
    up; both kinds of refusal are counted."""
    text = (
        'name = "refusals"\nseed = 3\n[target]\nurl = "builtin"\n[target.server]\n'
        'reject_share = 0.3\nreject_status = 503\nclose_after = "100ms"\nclose_code = 1013\n'
        "[load]\nrate = 50\nconnections = 20\n"
        '[[close]]\nkind = "await_server_close"\ntimeout = "5s"\n'
        '[reconnect]\nbackoff = { initial = "10ms", max = "50ms" }\nmax_attempts = 3\n'
    )
    rc, err, summary = run(tmp_path, text)
    assert rc == 1, err  # clients that gave up fail the verdict
    assert summary is not None
    assert summary["verdict"] == "fail" and "gave_up" in [r["code"] for r in summary["reasons"]]
    reconnect = summary["reconnect"]
    assert reconnect["clients"] == 20 and reconnect["gave_up"] == 20
    assert reconnect["attempts"]["min"] == reconnect["attempts"]["max"] == 3
    assert summary["totals"]["attempted"] == 60 == sum(summary["outcomes"].values())
    refused = reconnect["admission_refused"]
    assert refused["http_503"] == summary["http_statuses"]["503"] > 0
    assert refused["close_1013"] == summary["close_codes"]["received"]["1013"] > 0
    assert refused["http_503"] + refused["close_1013"] == 60
    assert refused["http_502"] == 0
    delay = reconnect["latency_us"]["reconnect_delay"]
    assert delay["count"] == 40 and delay["max"] <= 50_000 * 1.01


def test_a_sigkill_leaves_every_connection_to_the_kernel(tmp_path: Path) -> None:
    events = '[[target.process.events]]\nat = "1s"\nsignal = "SIGKILL"\n'
    rc, err, summary = run(tmp_path, scenario(tmp_path, events=events))
    assert rc == 0, err
    assert summary is not None
    (event,) = summary["events"]
    assert event["exit_status"] == -signal.SIGKILL and event["exit_s"] < SLACK  # at once
    assert event["open_at_signal"] == CONNS
    assert event["still_open_at_exit"] == CONNS  # nobody got a Close: the kernel cut them all
    assert event["closed_abnormal"] == CONNS and event["codes"] == {"1006": CONNS}
    assert event["latency_us"]["close_received"]["count"] == 0
    assert event["latency_us"]["eof"]["count"] == CONNS


def test_a_sigkilled_wsload_takes_its_server_with_it(tmp_path: Path) -> None:
    """kill -9 runs none of wsload's code: the kernel ends the server (PR_SET_PDEATHSIG)."""
    hold = '[[close]]\nkind = "await_server_close"\ntimeout = "30s"\n'
    path = tmp_path / "deploy.toml"
    path.write_text(scenario(tmp_path, events="", close=hold), encoding="utf-8")
    command = [sys.executable, "-m", "wsload", "run", str(path), "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_load(proc, tmp_path / "out")  # the server is up and holds connections
        assert children_left(tmp_path), "no server process to look for"
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while children_left(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert children_left(tmp_path) == [], "the server outlived a SIGKILLed wsload"
    finally:
        proc.kill()
        proc.wait(10)
        for pid in children_left(tmp_path):
            os.kill(pid, signal.SIGKILL)
