"""summary.json ``close_events`` from real runs against the built-in server (its own process).

One run per way a connection can end (the client's close mix, and server-side closes, drops
and silences): each ends with the browser close event docs/outcomes.md gives for its outcome,
per behaviour and in total, and the counts sum to the connections attempted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wsload.runner.modes.execute import execute_run
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_slow")

N = 8
SCENARIO = """
name = "close-events"
seed = 7
[target]
url = "builtin"
[target.server]
{server}
[load]
model = "arrival"
rate = 100
connections = {connections}
{close}
"""


def _run(tmp_path: Path, server: str, close: str, connections: int = N) -> dict[str, Any]:
    """Run, check the close events sum to the connections; the summary (report.html beside)."""
    text = SCENARIO.format(server=server, close=close, connections=connections)
    out = tmp_path / "out"
    assert execute_run(parse_scenario(text), out=out, quiet=True) == 0
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    events = summary["close_events"]
    assert sum(n for pair in events.values() for n in pair.values()) == connections
    assert summary["totals"]["attempted"] == connections
    return summary


def _events(code: int, clean: int = 0, unclean: int = 0) -> dict[str, dict[str, int]]:
    return {str(code): {"clean": clean, "unclean": unclean}}


def test_the_client_close_mix_per_behaviour(tmp_path: Path) -> None:
    """clean → 1000 clean; terminate and close_no_wait → 1006 (no Close came back);
    invalid_close → the server's 1002 answer, a completed handshake."""
    close = "".join(
        f'[[close]]\nkind = "{kind}"\nweight = 1\n'
        for kind in ("clean", "terminate", "close_no_wait", "invalid_close")
    )
    summary = _run(tmp_path, "", close, connections=4 * N)
    behaviours = summary["behaviours"]
    assert {label: b["outcomes"][o] for label, b, o in (
        ("clean", behaviours["clean"], "clean"),
        ("terminate", behaviours["terminate"], "terminated"),
        ("close_no_wait", behaviours["close_no_wait"], "close_no_wait"),
        ("invalid_close", behaviours["invalid_close"], "invalid_rejected"),
    )} == {"clean": N, "terminate": N, "close_no_wait": N, "invalid_close": N}  # fmt: skip
    assert behaviours["clean"]["close_events"] == _events(1000, clean=N)
    assert behaviours["terminate"]["close_events"] == _events(1006, unclean=N)
    assert behaviours["close_no_wait"]["close_events"] == _events(1006, unclean=N)
    assert behaviours["invalid_close"]["close_events"] == _events(1002, clean=N)
    assert summary["close_events"] == {
        "1000": {"clean": N, "unclean": 0},
        "1002": {"clean": N, "unclean": 0},
        "1006": {"clean": 0, "unclean": 2 * N},
    }
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    table = report[report.index('<table id="close-events">') :]
    table = table[: table.index("</table>")]
    assert "<th>clean (clean / unclean)</th>" in table
    assert (
        f"<tr><td>1006 (Abnormal Closure)</td><td class=n>0</td><td class=n>{2 * N}</td>"
        f"<td class=n>50.0 %</td><td class=n>0 / 0</td><td class=n>0 / {N}</td>"
        f"<td class=n>0 / {N}</td><td class=n>0 / 0</td></tr>"
    ) in table


@pytest.mark.parametrize(
    ("server", "close", "outcome", "events"),
    [
        pytest.param(
            'close_after = "20ms"\nclose_code = 4000\nclose_reason = "bye"',
            'kind = "await_server_close"\ntimeout = "5s"',
            "server_closed",
            _events(4000, clean=N),
            id="server-close",
        ),
        pytest.param(
            'close_after = "20ms"\nclose_action = "fin"',
            'kind = "await_server_close"\ntimeout = "5s"',
            "abnormal",
            _events(1006, unclean=N),
            id="server-drops-tcp",
        ),
        pytest.param(
            'close_after = "20ms"\nclose_action = "rst"',
            'kind = "await_server_close"\ntimeout = "5s"',
            "reset",
            _events(1006, unclean=N),
            id="server-resets",
        ),
        pytest.param(
            'close_reply = "never"\nclose_timeout = "5s"',
            'kind = "clean"\ntimeout = "200ms"',
            "close_timeout",
            _events(1006, unclean=N),
            id="close-timeout",
        ),
        pytest.param(
            'close_after = "20ms"\nclose_timeout = "5s"',
            'kind = "ignore_server_close"\ntimeout = "200ms"',
            "close_timeout",
            _events(1000, clean=N),  # a browser would have answered (and said wasClean)
            id="server-close-unanswered",
        ),
    ],
)
def test_server_side_endings(
    tmp_path: Path, server: str, close: str, outcome: str, events: dict[str, Any]
) -> None:
    summary = _run(tmp_path, server, f"[[close]]\n{close}\n")
    assert {k: n for k, n in summary["outcomes"].items() if n} == {outcome: N}
    assert summary["close_events"] == events
    (behaviour,) = summary["behaviours"].values()
    assert behaviour["close_events"] == events
