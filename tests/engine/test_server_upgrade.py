"""The built-in server's opening handshake: the pure parser, then real clients on loopback."""

from __future__ import annotations

import contextlib
import random
import time

import pytest
import trio
import trio_websocket
import websockets
from hypothesis import given
from hypothesis import strategies as st
from server_clients import (
    OP_TEXT,
    RawClient,
    Running,
    frame,
    in_thread,
    ipv6_loopback,
    request,
    running,
    trio_ws,
    until,
)
from timing import SLACK
from websockets.asyncio.client import connect as ws_connect
from wsproto.events import TextMessage

from wsload.errors import ToolError
from wsload.scenario.model import Delay, ServerConfig
from wsload.server.server import BuiltinServer
from wsload.server.upgrade import (
    MAX_HEAD_BYTES,
    BadUpgrade,
    accept_key,
    accept_response,
    error_response,
    parse_request,
    reject_response,
    split_head,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def _head(*lines: str, request_line: str = "GET /chat HTTP/1.1") -> bytes:
    return ("\r\n".join((request_line, *lines)) + "\r\n\r\n").encode("latin-1")


GOOD = (
    "Host: server.example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    f"Sec-WebSocket-Key: {KEY.decode()}",
    "Sec-WebSocket-Version: 13",
)


def test_accept_key_rfc_example() -> None:
    # RFC 6455 §1.3
    assert accept_key(KEY) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_parse_rfc_request_and_answer() -> None:
    parsed = parse_request(_head(*GOOD, "Sec-WebSocket-Protocol: chat, superchat"))
    assert parsed.target == "/chat"
    assert parsed.key == KEY
    assert parsed.subprotocols == ("chat", "superchat")
    response = accept_response(parsed)
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response
    assert b"\r\nSec-WebSocket-Protocol: chat\r\n" in response
    assert response.endswith(b"\r\n\r\n")


def test_parse_is_lenient_where_http_is() -> None:
    parsed = parse_request(
        _head(
            "host: h",
            "UPGRADE: WebSocket",
            "connection: keep-alive,  Upgrade",
            f"sec-websocket-key:   {KEY.decode()}  ",
            "Sec-WebSocket-Version: 13",
            "X-Extra: a",
            "X-Extra: b",
            request_line="GET /?x=1 HTTP/1.1",
        )
    )
    assert parsed.headers["x-extra"] == "a, b"
    assert parsed.subprotocols == ()


@pytest.mark.parametrize(
    ("lines", "request_line", "status", "reason"),
    [
        (GOOD, "POST /chat HTTP/1.1", 400, "bad_method"),
        (GOOD, "GET /chat HTTP/1.0", 400, "bad_http_version"),
        (GOOD, "GET /chat", 400, "bad_request"),
        (GOOD[1:], "GET / HTTP/1.1", 400, "no_host"),
        ((*GOOD[:1], *GOOD[2:]), "GET / HTTP/1.1", 400, "no_upgrade"),
        ((*GOOD[:2], "Connection: keep-alive", *GOOD[3:]), "GET / HTTP/1.1", 400, "no_upgrade"),
        ((*GOOD[:3], "Sec-WebSocket-Key: c2hvcnQ=", GOOD[4]), "GET / HTTP/1.1", 400, "bad_key"),
        ((*GOOD[:3], "Sec-WebSocket-Key: !!!", GOOD[4]), "GET / HTTP/1.1", 400, "bad_key"),
        (GOOD[:4], "GET / HTTP/1.1", 426, "bad_version"),
        ((*GOOD[:4], "Sec-WebSocket-Version: 8"), "GET / HTTP/1.1", 426, "bad_version"),
        ((*GOOD, GOOD[3]), "GET / HTTP/1.1", 400, "bad_request"),
        ((*GOOD, "no colon here"), "GET / HTTP/1.1", 400, "bad_request"),
        ((*GOOD, " folded: line"), "GET / HTTP/1.1", 400, "bad_request"),
    ],
)
def test_parse_rejects(lines: tuple[str, ...], request_line: str, status: int, reason: str) -> None:
    with pytest.raises(BadUpgrade) as caught:
        parse_request(_head(*lines, request_line=request_line))
    assert (caught.value.status, caught.value.reason) == (status, reason)


def test_split_head_and_size_limit() -> None:
    assert split_head(b"GET / HTTP/1.1\r\nHost: x\r\n") is None
    assert split_head(b"GET / HTTP/1.1\r\n\r\nrest") == (b"GET / HTTP/1.1\r\n\r\n", b"rest")
    with pytest.raises(BadUpgrade) as caught:
        split_head(b"x" * (MAX_HEAD_BYTES + 1))
    assert caught.value.status == 431


def test_responses() -> None:
    assert reject_response(503).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert reject_response(599).startswith(b"HTTP/1.1 599 Rejected\r\n")
    answer = error_response(BadUpgrade("nope", status=426, reason="bad_version"))
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in answer and answer.endswith(b"nope\n")


@given(st.binary(max_size=400))
def test_parse_never_fails_other_than_bad_upgrade(data: bytes) -> None:
    with contextlib.suppress(BadUpgrade):
        parse_request(data + b"\r\n\r\n")


@given(
    st.lists(
        st.sampled_from(["Upgrade", "upgrade", "UPGRADE", "keep-alive", "close"]),
        min_size=1,
        max_size=4,
    ),
    st.binary(min_size=16, max_size=16),
)
def test_parse_connection_tokens_and_any_key(tokens: list[str], raw_key: bytes) -> None:
    import base64

    key = base64.b64encode(raw_key).decode()
    head = _head(
        "Host: h",
        "Upgrade: websocket",
        "Connection: " + ", ".join(tokens),
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    )
    if any(token.lower() == "upgrade" for token in tokens):
        assert parse_request(head).key == key.encode()
    else:
        with pytest.raises(BadUpgrade):
            parse_request(head)


# -- loopback ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "status", "reason"),
    [
        ("", 101, None),
        ("Sec-WebSocket-Version: 8\r\n", 400, "bad_request"),  # a repeated version header
    ],
)
async def test_raw_request_status(extra: str, status: int, reason: str | None) -> None:
    with trio.fail_after(10):
        async with running() as target:
            raw = await RawClient.connect(
                target.host,
                target.port,
                raw_request=request(target.host, target.port, KEY, extra=extra),
            )
            assert raw.status == status
            if status == 101:
                assert raw.headers()["sec-websocket-accept"] == accept_key(KEY).decode()
            raw.close()
            stats = target.server.stats
            await until(lambda: stats.connections_accepted == 1 and stats.open == 0)
            if reason:
                assert dict(stats.upgrade_failures) == {reason: 1}


async def test_wrong_version_gets_426_and_failures_are_counted() -> None:
    with trio.fail_after(10):
        async with running() as target:
            bad = request(target.host, target.port, KEY).replace(b"Version: 13", b"Version: 7")
            raw = await RawClient.connect(target.host, target.port, raw_request=bad)
            assert raw.status == 426
            assert raw.headers()["sec-websocket-version"] == "13"
            await raw.expect_eof()  # the server closes after answering (its body was read)
            raw.close()
            huge = b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * MAX_HEAD_BYTES + b"\r\n\r\n"
            raw = await RawClient.connect(target.host, target.port, raw_request=huge)
            assert raw.status == 431
            raw.close()
            raw = await RawClient.connect(target.host, target.port, upgrade=False)
            await raw.send(b"GET / HTTP/1.1\r\n")
            raw.close()
            stats = target.server.stats
            await until(lambda: stats.upgrades_failed == 3)
            assert dict(stats.upgrade_failures) == {"bad_version": 1, "too_large": 1, "eof": 1}
            assert stats.upgrades_ok == 0 and stats.peak_open == 0


async def test_rejection_status_seen_by_both_clients() -> None:
    config = ServerConfig(reject_share=1.0, reject_status=429)
    with trio.fail_after(15):
        async with running(config) as target:
            # open_websocket_url leaks its socket on a rejection (trio-websocket 0.12.2), so
            # this test owns the stream and hands it to trio-websocket
            statuses: list[int] = []
            stream = await trio.open_tcp_stream(target.host, target.port)
            try:
                async with trio.open_nursery() as nursery:
                    await trio_websocket.wrap_client_stream(nursery, stream, target.host, "/")
            except* trio_websocket.ConnectionRejected as group:
                statuses += [exc.status_code for exc in group.exceptions]
            finally:
                await trio.aclose_forcefully(stream)
            assert statuses == [429]

            async def client() -> int:
                try:
                    async with ws_connect(target.url, proxy=None):
                        return 101  # pragma: no cover - never reached
                except websockets.InvalidStatus as exc:
                    return exc.response.status_code

            assert await in_thread(client) == 429
            stats = target.server.stats
            await until(lambda: sum(stats.upgrades_rejected.values()) == 2)
            assert dict(stats.upgrades_rejected) == {429: 2}
            assert stats.upgrades_ok == 0


async def test_reject_share_is_deterministic_with_the_seed() -> None:
    seed, share, n = 7, 0.5, 24
    draws = random.Random(f"{seed}/reject")
    expected = [draws.random() < share for _ in range(n)]
    assert 0 < sum(expected) < n
    for _ in range(2):  # same seed, same rejections, run after run
        seen = []
        with trio.fail_after(20):
            async with running(ServerConfig(reject_share=share), seed=seed) as target:
                for _ in range(n):
                    raw = await RawClient.connect(target.host, target.port)
                    seen.append(raw.status == 503)
                    raw.close()
        assert seen == expected


async def test_upgrade_delay_fixed_and_random() -> None:
    with trio.fail_after(15):
        async with running(ServerConfig(upgrade_delay=Delay(0.3, 0.3))) as target:
            started = trio.current_time()
            async with trio_ws(target) as ws:
                took = trio.current_time() - started
                await ws.send_message("x")
                assert await ws.get_message() == "x"
            assert 0.3 <= took < 0.3 + SLACK

            async def client() -> float:
                started = time.monotonic()
                async with ws_connect(target.url, proxy=None):
                    return time.monotonic() - started

            # a client in a thread of its own (websockets' sync API): on a loaded machine only a
            # wait that never ends is ruled out (1.6 s at load average 10)
            assert 0.3 - 0.01 <= await in_thread(client) < 0.3 + 3 * SLACK

        async with running(ServerConfig(upgrade_delay=Delay(0.05, 0.25)), seed=3) as target:
            took_all = []
            for _ in range(5):
                started = trio.current_time()
                raw = await RawClient.connect(target.host, target.port)
                took_all.append(trio.current_time() - started)
                raw.close()
            assert all(0.05 <= t < 0.25 + SLACK for t in took_all), took_all
            assert max(took_all) - min(took_all) > 0.01


async def test_first_subprotocol_is_selected() -> None:
    with trio.fail_after(10):
        async with running() as target, trio_ws(target, subprotocols=["b.v2", "a.v1"]) as ws:
            assert ws.subprotocol == "b.v2"


async def test_frame_pipelined_behind_the_request_is_served() -> None:
    with trio.fail_after(10):
        async with running() as target:
            first = request(target.host, target.port, KEY) + frame(OP_TEXT, b"early")
            raw = await RawClient.connect(target.host, target.port, raw_request=first)
            assert raw.status == 101
            assert await raw.next_event() == TextMessage(data="early")
            raw.close()


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_loopback() -> None:
    with trio.fail_after(15):
        async with running(host="::1") as target:
            assert target.host == "::1"
            assert target.url.startswith("ws://[::1]:")
            async with trio_ws(target) as ws:
                await ws.send_message("six")
                assert await ws.get_message() == "six"

            async def client() -> str:
                async with ws_connect(target.url, proxy=None) as ws:
                    await ws.send("v6")
                    return str(await ws.recv())

            assert await in_thread(client) == "v6"
            await until(lambda: target.server.stats.open == 0)
            assert target.server.stats.upgrades_ok == 2


async def test_port_in_use_is_a_tool_error() -> None:
    with trio.fail_after(10):
        async with running() as target:
            with pytest.raises(ToolError, match=r"cannot listen on 127\.0\.0\.1:"):
                await BuiltinServer(ServerConfig()).serve(target.host, target.port)
    assert isinstance(target, Running)
