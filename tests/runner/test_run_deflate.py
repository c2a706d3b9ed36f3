"""``compression = "deflate"`` in real runs against servers that compress: Python ``websockets``
(compression on, its defaults), Node ``ws`` with ``perMessageDeflate`` (``@pytest.mark.node``),
the built-in server, and hostile servers (extensions not offered, a decompression bomb).

Each server counts the client messages that reached it compressed (RSV1): the evidence that the
frames really were compressed, not merely negotiated.
"""

from __future__ import annotations

import json
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile import HostileServer
from peers import NodePeer, WebsocketsPeer, node_skip_reason

from wsload.runner.modes.execute import execute_run
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_slow")

N = 8
MESSAGES = 3
SCENARIO = """
name = "deflate"
seed = 4
[target]
url = "{url}"
compression = {compression}
handshake_timeout = "2s"
{target}
[load]
model = "arrival"
rate = 100
connections = {connections}
[session]
messages = {messages}
message_size = {size}
binary = {binary}
message_timeout = "3s"
{close}
"""
CLEAN = '[[close]]\nkind = "clean"\ntimeout = "3s"\n'


def _run(
    tmp_path: Path,
    url: str,
    *,
    compression: str = '"deflate"',
    target: str = "",
    connections: int = N,
    messages: int = MESSAGES,
    size: int = 2000,
    binary: bool = False,
    close: str = CLEAN,
    exit_code: int = 0,
) -> dict[str, Any]:
    text = SCENARIO.format(
        url=url, compression=compression, target=target, connections=connections,
        messages=messages, size=size, binary=str(binary).lower(), close=close,
    )  # fmt: skip
    out = tmp_path / "out"
    assert execute_run(parse_scenario(text), out=out, quiet=True) == exit_code
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert sum(summary["outcomes"].values()) == summary["totals"]["attempted"] == connections
    return summary


def _only(summary: dict[str, Any]) -> dict[str, int]:
    return {name: n for name, n in summary["outcomes"].items() if n}


@pytest.fixture(scope="module")
def websockets_peer() -> Iterator[WebsocketsPeer]:
    with WebsocketsPeer(close_timeout=0.5, compression=True) as peer:
        yield peer


@pytest.fixture(scope="module")
def node_peer() -> Iterator[NodePeer]:
    reason = node_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with NodePeer(close_timeout=1.0, deflate=True) as peer:
        yield peer


class Compressing:
    """One compressing server: its URL and its count of compressed client messages."""

    def __init__(self, name: str, url: str, counter: Any) -> None:
        self.name, self.url, self.counter = name, url, counter

    def compressed_in(self) -> int:
        return int(self.counter())


@pytest.fixture(params=["websockets", pytest.param("node", marks=pytest.mark.node)])
def server(request: pytest.FixtureRequest) -> Compressing:
    if request.param == "node":
        node: NodePeer = request.getfixturevalue("node_peer")
        return Compressing("node", f"ws://127.0.0.1:{node.port}", node.compressed_in)
    peer: WebsocketsPeer = request.getfixturevalue("websockets_peer")
    return Compressing("websockets", f"ws://127.0.0.1:{peer.port}", lambda: peer.compressed_in)


@pytest.mark.parametrize("binary", [False, True], ids=["compressible", "incompressible"])
def test_all_clean_and_every_message_arrived_compressed(
    tmp_path: Path, server: Compressing, binary: bool
) -> None:
    before = server.compressed_in()
    summary = _run(tmp_path, server.url + "/echo", binary=binary)
    assert _only(summary) == {"clean": N}
    assert summary["totals"]["extensions"] == {"permessage-deflate": N}
    assert summary["totals"]["opened"] == N
    assert summary["latency_us"]["message_rtt"]["count"] == N * MESSAGES  # every echo read back
    assert server.compressed_in() - before == N * MESSAGES
    assert summary["scenario"]["target"]["compression"] == "deflate"


OFFERS = {
    "browser": '"deflate"',
    "browser-no-takeover": (
        '{ offer = "browser", client_no_context_takeover = true, '
        "server_no_context_takeover = true }"
    ),
    "lean": '{ offer = "lean" }',
    "lean-no-takeover": '{ offer = "lean", server_no_context_takeover = true }',
}


@pytest.mark.parametrize("offer", list(OFFERS))
def test_each_offer_with_messages_across_many_frames_and_reads(
    tmp_path: Path, server: Compressing, offer: str
) -> None:
    """20 KB messages, echoed as 10 compressed fragments each (one deflate stream over the
    frames, continued across messages with context takeover, reset without it): every echo
    inflates, with the window each offer agreed, and every message reached the server
    compressed. A reference beyond an agreed window or a broken stream would be a 1007."""
    before = server.compressed_in()
    summary = _run(
        tmp_path,
        server.url + "/fragments?parts=10",
        compression=OFFERS[offer],
        connections=4,
        messages=5,
        size=20_000,
    )
    assert _only(summary) == {"clean": 4}
    assert summary["totals"]["extensions"] == {"permessage-deflate": 4}
    assert summary["latency_us"]["message_rtt"]["count"] == 4 * 5
    assert server.compressed_in() - before == 4 * 5


def test_every_close_kind_with_deflate(tmp_path: Path, server: Compressing) -> None:
    mix = "".join(
        f'[[close]]\nkind = "{kind}"\nweight = 1\n{extra}'
        for kind, extra in (
            ("clean", 'timeout = "3s"\n'),
            ("terminate", ""),
            ("close_no_wait", ""),
            ("invalid_close", 'timeout = "3s"\n'),
        )
    )
    summary = _run(tmp_path, server.url + "/echo", connections=4 * 3, close=mix)
    assert summary["totals"]["extensions"] == {"permessage-deflate": 12}
    expected = {
        "clean": "clean",
        "terminate": "terminated",
        "close_no_wait": "close_no_wait",
        "invalid_close": "invalid_rejected",
    }
    for label, outcome in expected.items():
        assert _only(summary["behaviours"][label]) == {outcome: 3}, label


@pytest.mark.parametrize("kind", ["await_server_close", "ignore_server_close"])
def test_server_initiated_closes_with_deflate(
    tmp_path: Path, server: Compressing, kind: str
) -> None:
    close = f'[[close]]\nkind = "{kind}"\ntimeout = "5s"\n'
    summary = _run(
        tmp_path, server.url + "/close?after=50&code=4000", connections=4, messages=1, close=close
    )
    outcome = "server_closed" if kind == "await_server_close" else "server_dropped"
    assert _only(summary) == {outcome: 4}
    assert summary["close_codes"]["received"] == {"4000": 4}
    assert summary["totals"]["extensions"] == {"permessage-deflate": 4}


def test_the_builtin_server_accepts_and_counts_compressed_messages(tmp_path: Path) -> None:
    summary = _run(tmp_path, "builtin", target='[target.server]\ncompression = "deflate"')
    assert _only(summary) == {"clean": N}
    assert summary["totals"]["extensions"] == {"permessage-deflate": N}
    server = summary["server"]
    assert server["deflate_connections"] == N
    assert server["compressed_messages_in"] == N * MESSAGES


def test_a_declined_offer_is_counted_at_zero_and_said(tmp_path: Path) -> None:
    summary = _run(tmp_path, "builtin")  # the built-in server refuses extensions by default
    assert _only(summary) == {"clean": N}
    assert summary["totals"]["extensions"] == {"permessage-deflate": 0}
    assert summary["server"]["compressed_messages_in"] == 0
    from rich.console import Console

    from wsload.report.terminal import summary_table

    console = Console(width=80, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    try:
        console.print(summary_table(summary))
        text = console.export_text()
    finally:
        console.file.close()
    assert f"the server declined it on {N} of {N} connections opened" in " ".join(text.split())


def test_compression_none_offers_nothing(tmp_path: Path) -> None:
    summary = _run(
        tmp_path,
        "builtin",
        compression='"none"',
        target='[target.server]\ncompression = "deflate"',
    )
    assert summary["totals"]["extensions"] == {}
    assert summary["server"]["deflate_connections"] == 0
    assert "compression" not in summary["scenario"]["target"]


@pytest.mark.parametrize(
    "mode", ["extension_not_offered", "deflate_param_not_offered", "deflate_twice"]
)
def test_a_server_selecting_what_was_not_offered_is_handshake_invalid(
    tmp_path: Path, mode: str
) -> None:
    with HostileServer(mode) as hostile:
        summary = _run(tmp_path, hostile.url, connections=3, messages=1, exit_code=1)
    assert _only(summary) == {"handshake_invalid": 3}  # exit 1: no connection opened
    assert summary["totals"]["extensions"] == {"permessage-deflate": 0}


def test_a_decompression_bomb_is_protocol_error_1009(tmp_path: Path) -> None:
    with HostileServer("deflate_bomb") as hostile:  # ~1.5 KiB inflating to 1.5 MiB (limit 1 MiB)
        summary = _run(tmp_path, hostile.url, connections=3, messages=1)
    assert _only(summary) == {"protocol_error": 3}
    assert summary["close_codes"]["sent"] == {"1009": 3}
    assert summary["close_events"] == {"1006": {"clean": 0, "unclean": 3}}


def test_a_100_mib_bomb_leaves_rss_bounded(tmp_path: Path) -> None:
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with HostileServer("deflate_bomb_huge") as hostile:
        summary = _run(tmp_path, hostile.url, connections=5, messages=1)
    assert _only(summary) == {"protocol_error": 5}
    assert summary["close_codes"]["sent"] == {"1009": 5}
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_kib) / 1024
    assert grown_mib < 50  # 5 x 100 MiB would be 500 MiB; each stops at 1 MiB + 1 byte
