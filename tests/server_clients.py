"""Clients of the built-in server for its tests (engine and process tiers).

The independent peers are trio-websocket and Python ``websockets``; what neither can do
(ignore a Close, send malformed frames, drop TCP between two bytes) is done by
:class:`RawClient`, which performs the upgrade by hand and reads the server's frames with a
client-side wsproto parser (so an unmasked-frame or framing bug in the server fails loudly).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import trio
import trio_websocket
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Event

from wsload.scenario.model import ServerConfig
from wsload.server.server import BuiltinServer, ws_url
from wsload.server.upgrade import accept_key

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "RawClient",
    "Running",
    "close_payload",
    "frame",
    "in_thread",
    "ipv6_loopback",
    "request",
    "running",
    "trio_ws",
    "until",
]

T = TypeVar("T")

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


@dataclass
class Running:
    server: BuiltinServer
    host: str
    port: int

    @property
    def url(self) -> str:
        return ws_url(self.host, self.port) + "/"


@asynccontextmanager
async def running(
    config: ServerConfig | None = None, *, seed: int | None = None, host: str = "127.0.0.1"
) -> AsyncIterator[Running]:
    """A built-in server on a free loopback port, cancelled (every socket closed) on exit."""
    server = BuiltinServer(config or ServerConfig(), seed=seed)
    async with trio.open_nursery() as nursery:
        bound_host, port = await nursery.start(server.serve, host, 0)
        yield Running(server, bound_host, port)
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def trio_ws(
    target: Running, resource: str = "/", subprotocols: list[str] | None = None
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A trio-websocket client whose TCP stream this helper owns.

    trio-websocket 0.12.2 never closes its client socket when the *server* closes first (its
    reader stops at the EOF once wsproto is CLOSED, and ``aclose()`` returns early because a
    close reason is already set): a ResourceWarning. Owning the stream lets us close it.
    """
    stream = await trio.open_tcp_stream(target.host, target.port)
    try:
        async with trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(
                nursery, stream, target.host, resource, subprotocols=subprotocols
            )
            try:
                yield ws
            finally:
                with trio.move_on_after(5, shield=True):
                    await ws.aclose()
                nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(stream)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` every 5 ms; fail the test if it stays false for ``timeout``."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.005)


async def in_thread(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an asyncio coroutine (a ``websockets`` client) in a worker thread."""
    return await trio.to_thread.run_sync(lambda: asyncio.run(coro_fn()))


def frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True, rsv: int = 0
) -> bytes:
    """One client frame, built by hand so tests can also build wrong ones."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    length = len(payload)
    bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([bit | length])
    elif length < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_payload(code: int | None, reason: bytes = b"") -> bytes:
    return b"" if code is None else struct.pack("!H", code) + reason


def request(host: str, port: int, key: bytes, *, path: str = "/", extra: str = "") -> bytes:
    name = f"[{host}]" if ":" in host else host
    return (
        f"GET {path} HTTP/1.1\r\nHost: {name}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode("latin-1")


class RawClient:
    """A client that does exactly what the test says and nothing else."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = Connection(ConnectionType.CLIENT)
        self.status = 0
        self.head = b""
        self.eof = False

    @classmethod
    async def connect(
        cls, host: str, port: int, *, raw_request: bytes | None = None, upgrade: bool = True
    ) -> RawClient:
        stream = await trio.open_tcp_stream(host, port)
        client = cls(stream)
        try:
            if upgrade:
                key = base64.b64encode(os.urandom(16))
                await stream.send_all(raw_request or request(host, port, key))
                await client.read_head()
                if client.status == 101 and raw_request is None:
                    assert client.headers()["sec-websocket-accept"] == accept_key(key).decode()
        except BaseException:
            client.close()
            raise
        return client

    def headers(self) -> dict[str, str]:
        """The response headers, names lower-cased."""
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        pairs = (line.split(":", 1) for line in lines if ":" in line)
        return {name.strip().lower(): value.strip() for name, value in pairs}

    async def read_head(self) -> None:
        buffer = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in buffer:
                data = await self.stream.receive_some(65536)
                if not data:
                    break
                buffer += data
        head, _, rest = buffer.partition(b"\r\n\r\n")
        self.head = head
        self.status = int(head.split(b" ", 2)[1]) if head else 0
        if rest:
            self.ws.receive_data(rest)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def next_event(self, timeout: float = 5.0) -> Event | None:
        """The server's next event; None at EOF. Raises BrokenResourceError on a reset."""
        with trio.fail_after(timeout):
            while True:
                for event in self.ws.events():
                    return event
                if self.eof:
                    return None
                data = await self.stream.receive_some(65536)
                if not data:
                    self.eof = True
                    continue
                self.ws.receive_data(data)

    async def expect_close(self, timeout: float = 5.0) -> CloseConnection:
        event = await self.next_event(timeout)
        assert isinstance(event, CloseConnection), event
        return event

    async def expect_eof(self, timeout: float = 5.0) -> None:
        """Read (and discard) until the server closes TCP."""
        with trio.fail_after(timeout):
            while await self.stream.receive_some(65536):
                pass
        self.eof = True

    def close(self, *, rst: bool = False) -> None:
        """Close without a Close frame (FIN, or RST with SO_LINGER 0)."""
        if rst:
            self.stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.stream.socket.close()


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True
