"""Third-party WebSocket servers on loopback, for tests that need a real, independent peer.

Three implementations, one behaviour protocol chosen by the request path (so one server can serve
a whole test file):

    /echo (default)                     echo every data message back
    /sink                               read messages, never answer them
    /fragments?parts=N                  echo every message back as N fragments (websockets, Node)
    /greet                              send "hello" on connection (websockets), then echo
    /close?after=MS&code=C&reason=TEXT  echo, then the server sends Close(C, TEXT) after MS
    /terminate?after=MS                 echo, then drop TCP with no Close frame (websockets, Node)

How long a server waits for the client's answer to its own Close (then drops TCP) is the peer's
``close_timeout`` (seconds): trio-websocket (our handler's bound around ``aclose``), websockets
17 (``close_timeout``), Node ``ws`` 8 (``closeTimeout``).

- :func:`start_trio_websocket`: ``await`` it with a nursery (``serve_websocket`` + ``start``).
- :class:`WebsocketsPeer`: the ``websockets.asyncio`` server in its own thread and event loop.
- :class:`NodePeer`: ``tests/node/server.js`` in a child process (:func:`node_skip_reason`
  says why it cannot run; ``npm ci`` runs once in tests/node when needed).

And :class:`RawPeer`, a scripted server over any Trio stream (memory streams, sockets) that
writes raw bytes and decodes the client's frames by hand, for misbehaviour no library produces;
:func:`run_scripted` runs one driver connection against one over a memory stream.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import struct
import subprocess
import threading
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio
import trio.testing
import trio_websocket
from npm import npm_skip_reason

from wsload.core.handshake import accept_key
from wsload.core.record import ConnectionRecord
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.driver import run_connection
from wsload.scenario.model import CloseSpec, SessionConfig, TargetConfig

__all__ = [
    "CLEAN",
    "NODE_DIR",
    "NodePeer",
    "RawPeer",
    "Route",
    "WebsocketsPeer",
    "memory_opener",
    "node_skip_reason",
    "run_scripted",
    "server_frame",
    "start_trio_websocket",
]

NODE_DIR = Path(__file__).parent / "node"
_START_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class Route:
    """The behaviour a request path asks for (see the module docstring)."""

    mode: str = "echo"
    after: float = 0.0
    code: int = 1000
    reason: str = ""
    pushes: int = 5
    interval: float = 0.01
    parts: int = 1

    @classmethod
    def parse(cls, path: str) -> Route:
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        return cls(
            mode=parts.path.strip("/") or "echo",
            after=float(query.get("after", "0")) / 1000,
            code=int(query.get("code", "1000")),
            reason=query.get("reason", ""),
            pushes=int(query.get("pushes", "5")),
            interval=float(query.get("interval", "10")) / 1000,
            parts=int(query.get("parts", "1")),
        )


# --- trio-websocket ------------------------------------------------------------------------


async def _trio_ws_handler(close_timeout: float, request: trio_websocket.WebSocketRequest) -> None:
    ws = await request.accept()
    route = Route.parse(request.path)

    async def pump() -> None:
        try:
            while True:
                message = await ws.get_message()
                if route.mode != "sink":
                    await ws.send_message(message)
        except trio_websocket.ConnectionClosed:
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump)
        if route.mode == "close":
            await trio.sleep(route.after)
            with trio.move_on_after(close_timeout):
                await ws.aclose(route.code, route.reason or None)
            nursery.cancel_scope.cancel()


async def start_trio_websocket(
    nursery: trio.Nursery, *, close_timeout: float = 5.0, ssl_context: ssl.SSLContext | None = None
) -> int:
    """Serve trio-websocket on 127.0.0.1 in ``nursery``; return its port."""
    with trio.fail_after(_START_TIMEOUT):
        server = await nursery.start(
            partial(
                trio_websocket.serve_websocket,
                partial(_trio_ws_handler, close_timeout),
                "127.0.0.1",
                0,
                ssl_context,
                disconnect_timeout=close_timeout,
            )
        )
    return int(server.port)


# --- websockets (asyncio, in a thread) -----------------------------------------------------


class WebsocketsPeer:
    """A ``websockets.asyncio.server`` in a thread with its own event loop.

    Use as a context manager (blocking start/stop, bounded); ``port`` is set once started.
    """

    def __init__(
        self,
        *,
        close_timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        compression: bool = False,
    ):
        self.close_timeout = close_timeout
        self.ssl_context = ssl_context
        self.compression = compression
        self.compressed_in = 0
        """``compression``: client messages that arrived compressed (RSV1 set)."""
        self.port = 0
        self.requests: list[tuple[str, dict[str, str]]] = []
        """Every upgrade request's path and headers, in arrival order."""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="websockets-peer", daemon=True)

    def __enter__(self) -> WebsocketsPeer:
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT) or self._error is not None:
            raise RuntimeError(f"websockets peer did not start: {self._error!r}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(_START_TIMEOUT)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        async with serve(
            self._handle,
            "127.0.0.1",
            0,
            close_timeout=self.close_timeout,
            ssl=self.ssl_context,
            compression=None,
            extensions=_counting_deflate(self) if self.compression else None,
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop

    async def _handle(self, ws: Any) -> None:
        self.requests.append((ws.request.path, dict(ws.request.headers)))
        route = Route.parse(ws.request.path)
        if route.mode == "pubsub":
            await _pubsub(ws, route)
            return

        async def pump() -> None:
            try:
                async for message in ws:
                    if route.mode == "fragments":
                        step = max(1, -(-len(message) // route.parts))
                        parts = [message[i : i + step] for i in range(0, len(message), step)]
                        await ws.send(parts or message)
                    elif route.mode != "sink":
                        await ws.send(message)
            except Exception:  # the client went away: nothing to echo to
                pass

        if route.mode == "greet":  # the server speaks first, right behind its 101
            await ws.send("hello")
        task = asyncio.create_task(pump())
        if route.mode == "close":
            await asyncio.sleep(route.after)
            await ws.close(route.code, route.reason)
        elif route.mode == "terminate":
            await asyncio.sleep(route.after)
            ws.transport.abort()
        await task


def _counting_deflate(peer: WebsocketsPeer) -> list[Any]:
    """websockets' default server compression (``compression="deflate"``: windows of 12 bits,
    memLevel 5), counting the client's compressed messages into ``peer.compressed_in``."""
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

    class Counting(ServerPerMessageDeflateFactory):
        def process_request_params(self, params: Any, accepted: Any) -> Any:
            response, extension = super().process_request_params(params, accepted)
            decode = extension.decode

            def counting(frame: Any, *, max_size: int | None = None) -> Any:
                if frame.rsv1:  # only a message's first frame carries it
                    peer.compressed_in += 1
                return decode(frame, max_size=max_size)

            extension.decode = counting
            return response, extension

    return [
        Counting(
            server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 5}
        )
    ]


async def _pubsub(ws: Any, route: Route) -> None:
    """An application server, not an echo: subscribe → ack → pushes; bye → Close(code)."""
    pushing: asyncio.Task[None] | None = None

    async def push(topic: str) -> None:
        for n in range(1, route.pushes + 1):
            await asyncio.sleep(route.interval)
            await ws.send(json.dumps({"op": "push", "topic": topic, "n": n}))

    try:
        async for text in ws:
            message = json.loads(text)
            if message.get("op") == "subscribe":
                topic = str(message.get("topic", ""))
                await ws.send(json.dumps({"op": "subscribed", "topic": topic}))
                pushing = asyncio.create_task(push(topic))
            elif message.get("op") == "bye":
                if pushing is not None:
                    await pushing
                await ws.close(route.code, "bye")
    except Exception:  # the client went away
        pass
    finally:
        if pushing is not None:
            pushing.cancel()


# --- Node ws 8 (child process) --------------------------------------------------------------


def node_skip_reason() -> str | None:
    """Why the Node peer cannot run here (None: it can); installs ``ws`` once if needed."""
    return npm_skip_reason(NODE_DIR, ("ws",), "the Node ws peer")


class NodePeer:
    """``node tests/node/server.js`` in a child process; a context manager, ``port`` once up."""

    def __init__(self, *, close_timeout: float = 30.0, deflate: bool = False) -> None:
        self.close_timeout = close_timeout
        self.deflate = deflate
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def compressed_in(self) -> int:
        """Client messages that arrived compressed (``deflate`` only), from ``GET /stats``."""
        url = f"http://127.0.0.1:{self.port}/stats"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
        with opener.open(url, timeout=_START_TIMEOUT) as response:
            return int(json.loads(response.read())["compressed_in"])

    def __enter__(self) -> NodePeer:
        node = shutil.which("node") or "node"
        ms = str(round(self.close_timeout * 1000))
        process = subprocess.Popen(
            [node, str(NODE_DIR / "server.js"), "--close-timeout", ms]
            + (["--deflate"] if self.deflate else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules")},
        )
        self._process = process
        line = _readline_within(process, _START_TIMEOUT)
        if not line.startswith(b"PORT "):
            self.__exit__(None, None, None)
            raise RuntimeError(f"Node ws peer did not start (said {line!r})")
        self.port = int(line.split()[1])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


def _readline_within(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    """One line of the child's stdout, or b"" after ``timeout`` seconds."""
    assert process.stdout is not None
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else b""


# --- scripted raw peer ------------------------------------------------------------------------


def server_frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """One unmasked (server-to-client) frame; sizes are not policed, on purpose."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


class RawPeer:
    """The server end of one connection, scripted byte by byte.

    Client frames are decoded here by hand (not by the code under test); each must be masked.
    """

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = b""
        self.request = ""
        self.eof = False

    async def _more(self) -> bool:
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    async def read_request(self) -> str:
        """The upgrade request head (through the blank line)."""
        while b"\r\n\r\n" not in self.buffer:
            if not await self._more():
                raise EOFError("client closed before its request was complete")
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.request = head.decode("latin-1")
        return self.request

    @property
    def key(self) -> bytes:
        for line in self.request.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-key":
                return value.strip().encode("ascii")
        raise LookupError("no Sec-WebSocket-Key in the request")

    def response(self, *extra_headers: str) -> bytes:
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept_key(self.key).decode()}",
            *extra_headers,
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def accept(self, *extra_headers: str, then: bytes = b"") -> None:
        """Read the request and answer 101 (plus ``then``, e.g. frames right behind it)."""
        await self.read_request()
        await self.send(self.response(*extra_headers) + then)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        payload = b"" if code is None else struct.pack("!H", code) + reason.encode()
        await self.send(server_frame(0x8, payload))

    async def frame(self) -> tuple[int, bytes] | None:
        """The client's next frame as ``(opcode, unmasked payload)``; None at EOF."""
        while True:
            parsed = self._parse()
            if parsed is not None:
                return parsed
            if not await self._more():
                return None

    def _parse(self) -> tuple[int, bytes] | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        assert buf[1] & 0x80, "client frames must be masked"
        n, offset = buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                return None
            (n,) = struct.unpack("!H", buf[2:4])
            offset = 4
        elif n == 127:
            if len(buf) < 10:
                return None
            (n,) = struct.unpack("!Q", buf[2:10])
            offset = 10
        if len(buf) < offset + 4 + n:
            return None
        key = buf[offset : offset + 4]
        body = buf[offset + 4 : offset + 4 + n]
        self.buffer = buf[offset + 4 + n :]
        return buf[0] & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(body))

    async def answer_close(
        self, seen: list[tuple[int, bytes]] | None = None
    ) -> list[tuple[int, bytes]]:
        """Read the client's frames (into ``seen``, which is returned) until its Close; answer
        that with its own code and close TCP."""
        seen = [] if seen is None else seen
        while (frame := await self.frame()) is not None:
            seen.append(frame)
            if frame[0] == 0x8:
                await self.send(server_frame(0x8, frame[1][:2]))
                await self.aclose()
                break
        return seen

    async def frames_until_eof(self) -> list[tuple[int, bytes]]:
        """Every frame the client sends until it closes TCP."""
        frames = []
        while (item := await self.frame()) is not None:
            frames.append(item)
        return frames

    async def aclose(self) -> None:
        await self.stream.aclose()


def memory_opener(
    nursery: trio.Nursery, script: Callable[[RawPeer], Awaitable[None]]
) -> Callable[[Any, Any], Awaitable[trio.abc.Stream]]:
    """A ``DriverContext.opener``: each connection gets a memory stream whose server end runs
    ``script`` in ``nursery`` (no sockets: exact times under Trio's autojump clock)."""

    async def opener(plan: Any, endpoint: Any) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()
        nursery.start_soon(script, RawPeer(server))
        return client

    return opener


CLEAN = CloseSpec(kind="clean", label="clean", timeout=5.0)
"""The client's clean close (5 s timeout): :func:`run_scripted`'s default."""


async def run_scripted(
    nursery: trio.Nursery,
    server: Callable[[RawPeer], Awaitable[None]],
    close: CloseSpec = CLEAN,
    *,
    session: SessionConfig,
    seq: int = 1,
    **context: Any,
) -> ConnectionRecord:
    """Connection ``seq`` of ``session`` (``context``: more of ``DriverContext.create``'s
    arguments) against the scripted ``server`` over a memory stream (:func:`memory_opener`),
    closed as ``close`` says; its record once the server's script has seen the end too (on the
    autojump clock, exact times)."""
    ctx = DriverContext.create(
        TargetConfig(),
        session,
        "ws://test.invalid/",
        opener=memory_opener(nursery, server),
        **context,
    )
    with trio.fail_after(600):  # virtual seconds: the autojump clock makes this instant
        record = await run_connection(ConnectionPlan(seq, trio.current_time(), close), ctx)
        await trio.testing.wait_all_tasks_blocked()
    return record
