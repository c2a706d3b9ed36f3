"""A real headless Chromium, driven over the DevTools protocol, for the HTML report's tests.

``chromium_skip_reason`` installs Debian's ``chromium`` when it is missing (``apt-get``, as
root, bounded in time) or says why it cannot. ``Chromium`` starts it on a throw-away profile,
with the network shut (every request goes to a dead proxy on loopback: a page that needs a
CDN breaks visibly), and ``Chromium.load`` opens a page and reports what it rendered, every
console error and exception, and any request that tried to leave the machine.

The protocol is spoken with the ``websockets`` sync client the test extra already installs.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import json
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from debian_packages import apt_install_skip_reason
from websockets.sync.client import ClientConnection, connect

__all__ = ["CHROMIUM", "Chromium", "PageLoad", "chromium_skip_reason"]

CHROMIUM = "/usr/bin/chromium"
_INSTALL_TIMEOUT = 900.0
# No keepalive pings (websockets >= 15 sends them from a background thread, drawing their
# payload from the global `random`, which Hypothesis in a concurrent test takes for misuse).
_NO_KEEPALIVE: dict[str, Any] = (
    {"ping_interval": None} if "ping_interval" in inspect.signature(connect).parameters else {}
)
_LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:", "chrome:", "devtools:")


def chromium_skip_reason() -> str | None:
    """None when Chromium is there (installing it first if possible), else why not."""
    return apt_install_skip_reason("chromium", CHROMIUM, _INSTALL_TIMEOUT)


@dataclass
class PageLoad:
    """What one page did once loaded."""

    rendered: dict[str, Any]
    errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)


class Chromium:
    """Headless Chromium on a temporary profile; a context manager that always ends it."""

    def __init__(self, timeout: float = 30.0, *, loopback: bool = False) -> None:
        """Args:
        timeout: bound on start-up and on every DevTools call.
        loopback: let the page reach 127.0.0.1 (WebSockets to test servers); everything
            else still goes to the dead proxy.
        """
        self.timeout = timeout
        self.loopback = loopback
        # ignore_cleanup_errors: Chromium's helper processes may still be writing into the
        # profile for a moment after the browser process exited (seen once: "Directory not
        # empty: 'Default'" at teardown)
        self._profile = tempfile.TemporaryDirectory(
            prefix="wsload-chromium-", ignore_cleanup_errors=True
        )
        self._proc: subprocess.Popen[bytes] | None = None
        self._page: ClientConnection | None = None
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Chromium:
        profile = self._profile.name
        self._proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--proxy-server=http://127.0.0.1:9",  # offline: nothing may load from outside
                # Chromium bypasses the proxy for loopback unless told not to
                *(() if self.loopback else ("--proxy-bypass-list=<-loopback>",)),
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={profile}",
                "--window-size=1280,900",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = self._devtools_port(Path(profile) / "DevToolsActivePort")
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/json/list", timeout=self.timeout
            ) as response:
                targets = json.load(response)
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            self._page = self._stack.enter_context(
                connect(url, max_size=None, open_timeout=self.timeout, **_NO_KEEPALIVE)
            )
            for method in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
                self.call(method)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._page = None
        self._stack.close()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        self._profile.cleanup()

    def _devtools_port(self, path: Path) -> int:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._proc.returncode}")
            try:
                first = path.read_text(encoding="ascii").splitlines()[0]
                return int(first)
            except (OSError, IndexError, ValueError):
                time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events received meanwhile are kept."""
        assert self._page is not None
        self._next_id += 1
        call_id = self._next_id
        self._page.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = json.loads(self._page.recv(timeout=max(0.01, deadline - time.monotonic())))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._events.append(message)

    def _wait_event(self, method: str) -> None:
        assert self._page is not None
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == method for e in self._events):
            message = json.loads(self._page.recv(timeout=max(0.01, deadline - time.monotonic())))
            self._events.append(message)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, promise: str) -> Any:
        """The JSON value ``promise`` (a JS expression giving a Promise) resolves to."""
        result = self.call(
            "Runtime.evaluate", expression=promise, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{promise}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def load(self, url: str, probe: str, ready: str) -> PageLoad:
        """Open ``url``, wait for its load event and then for ``ready`` (a JS boolean), and
        return ``probe`` (a JS expression) with the errors and external requests seen."""
        self._events.clear()
        self.call("Page.navigate", url=url)
        self._wait_event("Page.loadEventFired")
        deadline = time.monotonic() + self.timeout
        while not self.evaluate(ready):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: not ready: {ready}")
            time.sleep(0.1)
        page = PageLoad(rendered=self.evaluate(probe))
        for event in self._events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                page.errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                page.errors.append(json.dumps(params.get("args", []))[:500])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                page.errors.append(str(params["entry"].get("text"))[:500])
            elif method == "Network.requestWillBeSent":
                request_url = str(params.get("request", {}).get("url", ""))
                if not request_url.startswith(_LOCAL_SCHEMES):
                    page.external_requests.append(request_url)
        return page

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page (not just the viewport) to ``path``."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=min(max(height, 900), 16_000),
            deviceScaleFactor=1,
            mobile=False,
        )
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
