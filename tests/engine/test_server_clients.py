"""The tests that keep the built-in server's test clients (tests/server_clients.py) honest."""

from __future__ import annotations

import pytest
import trio
from server_clients import (
    OP_BINARY,
    OP_CLOSE,
    OP_TEXT,
    RawClient,
    Running,
    close_payload,
    frame,
    ipv6_loopback,
    running,
)

from wsload.scenario.model import ServerConfig
from wsload.server.server import BuiltinServer


def test_frame_builder_matches_rfc_example() -> None:
    # RFC 6455 §5.7: a single-frame unmasked text message "Hello"
    assert frame(OP_TEXT, b"Hello", mask=False) == bytes.fromhex("810548656c6c6f")
    masked = frame(OP_TEXT, b"Hello")
    assert masked[:2] == b"\x81\x85" and len(masked) == 2 + 4 + 5
    assert frame(OP_BINARY, b"x" * 300, mask=False)[:4] == b"\x82\x7e\x01\x2c"


async def test_raw_client_round_trip() -> None:
    with trio.fail_after(10):
        async with running() as target:
            client = await RawClient.connect(target.host, target.port)
            assert client.status == 101
            await client.send(frame(OP_TEXT, b"hello"))
            event = await client.next_event()
            assert getattr(event, "data", None) == "hello"
            await client.send(frame(OP_CLOSE, close_payload(1000)))
            close = await client.expect_close()
            assert close.code == 1000
            assert await client.next_event() is None
            client.close()


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_helpers_bracket_the_host() -> None:
    assert Running(BuiltinServer(ServerConfig()), "::1", 80).url == "ws://[::1]:80/"
