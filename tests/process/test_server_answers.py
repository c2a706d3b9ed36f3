"""What the server answered, recorded and checkable: the subprotocol it selected (and
``require_subprotocol`` when it selects none), the reasons of its Close frames per code, and
thresholds on them. Against a real ``websockets`` server on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from peers import WebsocketsPeer

from wsload.runner.modes.execute import execute_run
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_slow")

N = 30


def _run(tmp_path: Path, text: str) -> tuple[int, dict[str, Any]]:
    scenario = parse_scenario(f"seed = 1\n{text}\n[load]\nrate = 200\nconnections = {N}\n")
    code = execute_run(scenario, out=tmp_path / "out", quiet=True)
    data = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    return code, data


def test_no_subprotocol_selected_is_counted_and_can_be_required(tmp_path: Path) -> None:
    with WebsocketsPeer() as peer:  # it supports no subprotocol: it selects none
        url = f"ws://127.0.0.1:{peer.port}/echo"
        code, summary = _run(
            tmp_path / "a",
            f'[target]\nurl = "{url}"\nsubprotocols = ["chat"]\n'
            '[thresholds]\n"subprotocols.none" = "== 100%"\n"subprotocols.chat" = "== 0"\n',
        )
        assert code == 0
        assert summary["totals"]["subprotocols"] == {"": N}
        code, summary = _run(
            tmp_path / "b",
            f'[target]\nurl = "{url}"\nsubprotocols = ["chat"]\nrequire_subprotocol = true\n',
        )
    assert code == 1  # nothing opened
    assert summary["outcomes"]["handshake_invalid"] == N
    (detail,) = summary["errors"]["handshake_invalid"]["details"]
    assert detail["detail"] == "the server selected no subprotocol (offered chat; required)"


def test_close_reasons_per_code_in_the_summary(tmp_path: Path) -> None:
    with WebsocketsPeer() as peer:
        url = f"ws://127.0.0.1:{peer.port}/close?after=50&code=4001&reason=unsubscribed%20{{seq}}"
        code, summary = _run(
            tmp_path,
            f'[target]\nurl = "{url}"\n[[close]]\nkind = "await_server_close"\ntimeout = "5s"\n',
        )
    assert code == 0
    assert summary["outcomes"]["server_closed"] == N
    # the connection number in each reason is folded, like an error detail
    assert summary["close_reasons"] == {"4001": [{"reason": "unsubscribed <n>", "count": N}]}


@pytest.mark.parametrize(("threshold", "code"), [('"== 0"', 1), ('"== 100%"', 0), (None, 1)])
def test_reconnect_gave_up_gates_the_run(tmp_path: Path, threshold: str | None, code: int) -> None:
    """Every connection is closed by the server at once, every client reconnects once and then
    gives up: ``reconnect.gave_up`` decides the exit code, and without such a threshold the
    clients that gave up fail the run."""
    gate = "" if threshold is None else f'[thresholds]\n"reconnect.gave_up" = {threshold}\n'
    with WebsocketsPeer() as peer:
        url = f"ws://127.0.0.1:{peer.port}/close?after=10&code=1001"
        got, summary = _run(
            tmp_path,
            f'[target]\nurl = "{url}"\n[session]\nhold = "1s"\n'
            '[[close]]\nkind = "clean"\ntimeout = "2s"\n'
            '[reconnect]\non = ["server_closed"]\nmax_attempts = 2\n'
            'backoff = { initial = "10ms", max = "20ms" }\n' + gate,
        )
    assert summary["reconnect"]["clients"] == N and summary["reconnect"]["gave_up"] == N
    assert [t["ok"] for t in summary["thresholds"]] == ([] if threshold is None else [code == 0])
    assert got == code
    codes = [reason["code"] for reason in summary["reasons"]]
    assert ("gave_up" in codes) is (threshold is None)  # a threshold, when there, decides
    assert ("thresholds" in codes) is (code == 1 and threshold is not None)
