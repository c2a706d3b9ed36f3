"""The close event wsload derives (``wsload.core.browser``) against the one a real browser fires.

For each server behaviour, headless Chromium (tests/browser.py; skipped with the reason when it
cannot run) opens a WebSocket to the server and reports its ``CloseEvent``; wsload's driver
makes the same connection with the close kind that does what the page does, and
``browser_close_event`` of its record must say the same ``code``, ``reason`` and ``wasClean``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from browser import Chromium
from hostile import HostileServer
from peers import WebsocketsPeer

from wsload.core.browser import BrowserCloseEvent, browser_close_event
from wsload.core.record import ConnectionRecord
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.driver import run_connection
from wsload.scenario.model import CloseSpec, SessionConfig, TargetConfig

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("bounded_slow")]

# The page's side: connect, do ACTION once open, report the close event (or null after 8 s).
PAGE = """
new Promise((resolve) => {
  const ws = new WebSocket(%s);
  ws.onopen = () => { %s };
  ws.onclose = (e) => resolve({code: e.code, reason: e.reason, wasClean: e.wasClean});
  setTimeout(() => resolve(null), 8000);
})
"""
CLOSE = "ws.close(1000, 'bye')"
WAIT = ""


@pytest.fixture(scope="module")
def websockets_peer() -> Iterator[WebsocketsPeer]:
    with WebsocketsPeer(close_timeout=0.5) as peer:
        yield peer


def browser_event(chromium: Chromium, url: str, action: str) -> BrowserCloseEvent:
    value: dict[str, Any] | None = chromium.wait_for(PAGE % (json.dumps(url), action))
    assert value is not None, f"no close event from the browser for {url}"
    return BrowserCloseEvent(value["code"], value["reason"], value["wasClean"])


def wsload_record(url: str, close: CloseSpec) -> ConnectionRecord:
    async def one() -> ConnectionRecord:
        target = TargetConfig(handshake_timeout=3.0, connect_timeout=3.0)
        ctx = DriverContext.create(target, SessionConfig(messages=0), url)
        with trio.fail_after(15):
            return await run_connection(ConnectionPlan(1, trio.current_time(), close), ctx)

    return trio.run(one)


CLEAN = CloseSpec("clean", "clean", code=1000, reason="bye", timeout=3.0)
AWAIT = CloseSpec("await_server_close", "await_server_close", timeout=3.0)


@pytest.mark.parametrize(
    ("route", "action", "close", "expected"),
    [
        ("/echo", CLOSE, CLEAN, BrowserCloseEvent(1000, "bye", True)),
        ("/close?after=50&code=4000&reason=bye", WAIT, AWAIT, BrowserCloseEvent(4000, "bye", True)),
        ("/terminate?after=50", WAIT, AWAIT, BrowserCloseEvent(1006, "", False)),
    ],
)  # fmt: skip
def test_against_websockets(
    loopback_chromium: Chromium,
    websockets_peer: WebsocketsPeer,
    route: str,
    action: str,
    close: CloseSpec,
    expected: BrowserCloseEvent,
) -> None:
    url = f"ws://127.0.0.1:{websockets_peer.port}{route}"
    assert browser_event(loopback_chromium, url, action) == expected
    assert browser_close_event(wsload_record(url, close)) == expected


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("close_without_code", BrowserCloseEvent(1005, "", True)),
        # the server keeps TCP open after the handshake: the browser closes it (Chromium: 2 s)
        ("close_then_hold", BrowserCloseEvent(4000, "", True)),
        ("close_then_reset", BrowserCloseEvent(4000, "", False)),
        ("eof_after_upgrade", BrowserCloseEvent(1006, "", False)),
        ("reset_mid_frame", BrowserCloseEvent(1006, "", False)),
        ("garbage_frames", BrowserCloseEvent(1006, "", False)),  # the browser fails it: 1006
        ("close_invalid_code", BrowserCloseEvent(1006, "", False)),  # a Close with code 1005
        ("wrong_accept", BrowserCloseEvent(1006, "", False)),
        ("close_mid_handshake", BrowserCloseEvent(1006, "", False)),
    ],
)
def test_against_hostile_servers(
    loopback_chromium: Chromium, mode: str, expected: BrowserCloseEvent
) -> None:
    with HostileServer(mode) as server:
        assert browser_event(loopback_chromium, server.url, WAIT) == expected
        assert browser_close_event(wsload_record(server.url, AWAIT)) == expected


def test_a_server_that_answers_and_keeps_tcp_open(loopback_chromium: Chromium) -> None:
    """Our Close answered, TCP left open: the browser closes it after its own wait and still
    reports wasClean; wsload's clean close times out the same way (close_timeout)."""
    expected = BrowserCloseEvent(1000, "", True)
    with HostileServer("answer_then_hold") as server:
        assert browser_event(loopback_chromium, server.url, CLOSE) == expected
        record = wsload_record(server.url, CLEAN)
    assert record.outcome == "close_timeout"
    assert browser_close_event(record) == expected
