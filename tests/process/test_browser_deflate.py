"""permessage-deflate against the client it imitates: headless Chromium (tests/browser.py;
skipped with the reason when it cannot run).

wsload's offer is the browser's offer, byte for byte; and the built-in server, with
``--compression deflate``, talks compressed to the browser: echoes come back intact and the
server counts the browser's messages as compressed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import trio
from browser import Chromium
from hostile import HostileServer

from wsload.core.deflate import DeflateSettings
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.driver import run_connection
from wsload.scenario.model import CloseSpec, SessionConfig, TargetConfig

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("bounded_slow")]

CONNECT = """
new Promise((resolve) => {
  const ws = new WebSocket(%s);
  ws.onclose = () => resolve(true);
  setTimeout(() => resolve(false), 8000);
})
"""
ECHO = """
new Promise((resolve) => {
  const ws = new WebSocket(%s);
  const message = 'compress me '.repeat(400);
  let echoes = 0;
  ws.onopen = () => { for (let i = 0; i < 3; i++) ws.send(message); };
  ws.onmessage = (e) => { if (e.data === message && ++echoes === 3) ws.close(1000, 'done'); };
  ws.onclose = (e) => resolve({echoes, extensions: ws.extensions, code: e.code,
                               wasClean: e.wasClean});
  setTimeout(() => resolve(null), 8000);
})
"""


def _extensions(request: str) -> str:
    (line,) = [ln for ln in request.split("\r\n") if ln.lower().startswith("sec-websocket-ext")]
    return line.partition(":")[2].strip()


def test_wsload_offers_what_the_browser_offers(loopback_chromium: Chromium) -> None:
    async def connect(url: str) -> None:
        target = TargetConfig(compression=DeflateSettings())
        ctx = DriverContext.create(target, SessionConfig(messages=0), url)
        plan = ConnectionPlan(1, trio.current_time(), CloseSpec("terminate", "terminate"))
        with trio.fail_after(10):
            await run_connection(plan, ctx)

    with HostileServer("close_without_code") as server:  # it closes: each request is kept then
        assert loopback_chromium.wait_for(CONNECT % json.dumps(server.url)) is True
        trio.run(connect, server.url)
    browser, ours = server.requests
    assert _extensions(ours) == _extensions(browser) == DeflateSettings().offer()


def test_the_builtin_server_talks_deflate_to_the_browser(loopback_chromium: Chromium) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "wsload", "serve", "--port", "0", "--compression", "deflate"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[-1]
        result = loopback_chromium.wait_for(ECHO % json.dumps(url))
    finally:
        server.terminate()
        stats, _ = server.communicate(timeout=10)
    assert result is not None
    assert result["echoes"] == 3
    assert result["extensions"].startswith("permessage-deflate")
    assert (result["code"], result["wasClean"]) == (1000, True)
    counts = re.search(
        r"permessage-deflate: connections / compressed messages in\s+(\d+) / (\d+)", stats
    )
    assert counts is not None, stats
    assert counts.groups() == ("1", "3")
