"""``wsload merge`` of a deploy's segments (``merged_deploy``): the tallies of every segment
add up, and which event was sent, to which pid and when that process exited is the word of
the ``--own-server`` segment (its summary has ``server_process``)."""

from __future__ import annotations

from array import array
from collections import Counter
from typing import Any

import pytest

from wsload.errors import UsageError
from wsload.metrics.collector import Collector
from wsload.metrics.events import NEVER, EventTally
from wsload.metrics.histograms import record
from wsload.metrics.reconnects import ReconnectTotals
from wsload.metrics.result import SegmentResult
from wsload.runner.targets.deploy import merged_deploy
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

MANAGED = """
name = "d"
[target]
url = "ws://127.0.0.1:{port}/"
[target.process]
command = ["server", "{port}"]
port = 8765
[[target.process.events]]
at = "2s"
[load]
model = "storm"
concurrency = 4
[reconnect]
"""


def _tally(clean: int, unclosed_eof_us: list[int], close_us: int = 5_000) -> EventTally:
    tally = EventTally(open_at_signal=clean + len(unclosed_eof_us), closed_clean=clean)
    tally.codes = Counter({1001: clean, 1006: len(unclosed_eof_us)})
    tally.closed_abnormal = len(unclosed_eof_us)
    for _ in range(clean):
        record(tally.close_received, close_us)
    tally.unclosed = array("q", unclosed_eof_us)
    return tally


def _part(tally: EventTally, clients: int) -> SegmentResult:
    part = SegmentResult(collector=Collector(), duration_s=1.0, segment="0/2")
    part.events = [tally]
    part.reconnect = ReconnectTotals(clients=clients, attempts_total=2 * clients)
    return part


def _merged(tallies: list[tuple[EventTally, int]]) -> SegmentResult:
    parts = [_part(t, n) for t, n in tallies]
    for i, part in enumerate(parts):
        part.segment = f"{i}/{len(parts)}"
    return SegmentResult.merge(parts)


OWNER: dict[str, Any] = {
    "server_process": {"command": ["server", "8765"], "port": 8765, "restarts": 0, "runs": []},
    "events": [{"pid": 4242, "exit_s": 0.5, "exit_status": 0}],
}
OTHER: dict[str, Any] = {"events": [{"pid": None, "exit_s": None, "exit_status": None}]}


def test_the_owner_names_the_pid_and_the_exit_and_every_tally_adds_up() -> None:
    scenario = parse_scenario(MANAGED)
    # segment 0: 2 clean; segment 1: 1 clean, one cut by the exit (EOF at 0.49 s), one never
    part = _merged([(_tally(2, []), 2), (_tally(1, [490_000, NEVER]), 3)])
    out = merged_deploy(scenario, part, [OWNER, OTHER])
    assert out["server_process"] == OWNER["server_process"]
    (event,) = out["events"]
    assert (event["pid"], event["exit_s"], event["exit_status"]) == (4242, 0.5, 0)
    assert event["open_at_signal"] == 5 and event["closed_clean"] == 3
    assert event["closed_abnormal"] == 2 and event["still_open_at_exit"] == 2
    assert event["latency_us"]["close_received"]["count"] == 3
    assert out["reconnect"]["clients"] == 5 and out["reconnect"]["attempts_total"] == 10


def test_an_event_the_owner_could_not_send_has_no_connections() -> None:
    owner = {**OWNER, "events": [{"pid": None, "exit_s": None, "exit_status": None}]}
    part = _merged([(_tally(2, []), 2), (_tally(1, []), 1)])
    (event,) = merged_deploy(parse_scenario(MANAGED), part, [owner, OTHER])["events"]
    assert event["pid"] is None and event["open_at_signal"] == 0


def test_without_the_owner_the_planned_instants_count_and_a_warning_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    part = _merged([(_tally(2, []), 2), (_tally(1, [NEVER]), 2)])
    out = merged_deploy(parse_scenario(MANAGED), part, [OTHER, OTHER])
    (event,) = out["events"]
    assert event["pid"] is None and event["exit_s"] is None
    assert event["open_at_signal"] == 4 and event["still_open_at_exit"] == 0
    assert "server_process" not in out
    assert "no segment started the server (--own-server)" in capsys.readouterr().err


def test_two_owners_are_refused() -> None:
    part = _merged([(_tally(1, []), 1), (_tally(1, []), 1)])
    with pytest.raises(UsageError, match="2 segments started the server"):
        merged_deploy(parse_scenario(MANAGED), part, [OWNER, OWNER])


def test_builtin_segments_each_ran_their_own_server() -> None:
    scenario = parse_scenario(
        'name = "b"\n[target]\nurl = "builtin"\n[[target.process.events]]\nat = "1s"\n'
        '[load]\nmodel = "storm"\nconcurrency = 2\n'
    )
    first = {"events": [{"pid": 11, "exit_s": None, "exit_status": None}]}
    second = {"events": [{"pid": 12, "exit_s": None, "exit_status": None}]}
    part = _merged([(_tally(1, []), 0), (_tally(1, []), 0)])
    part.reconnect = None
    out = merged_deploy(scenario, part, [first, second])
    (event,) = out["events"]
    assert event["pid"] == 11 and event["open_at_signal"] == 2
    assert "reconnect" not in out and "server_process" not in out
