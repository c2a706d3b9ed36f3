"""The comparison clients of ``benchmarks/cycle.py``: the same cycle with less machinery.

Each one does exactly wsload's cycle (TCP connect, upgrade, one 64-byte text message echoed,
Close 1000, the server's Close, the server's TCP EOF) with ``concurrency`` tasks, and returns
the client CPU (user, sys) seconds of the measured part. None records anything: they are the
floors wsload's full-recording figure is compared with.

- ``raw``: Trio's raw non-blocking sockets (``trio.socket``), precomputed request bytes, a
  minimal 101/accept check and hand-masked frames: roughly the least a Trio client can do.
- ``wsproto``: ``wsproto.WSConnection`` (events, its own handshake) over ``trio.SocketStream``.
- ``trio-websocket``: ``open_websocket_url`` / ``send_message`` / ``get_message`` / ``aclose``
  (which does not wait for the server's EOF: it does *less* than the cycle).
"""

from __future__ import annotations

import base64
import hashlib
import os
import resource
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import trio

__all__ = ["CLIENTS", "measure_bare"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_PAYLOAD = b"x" * 64
_RECEIVE = 4096


def _masked(opcode: int, payload: bytes) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    keys = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(
        n, "little"
    )
    return bytes((0x80 | opcode, 0x80 | n)) + key + body


async def _raw_cycle(host: str, port: int, head: bytes) -> None:
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
        await sock.send(head + key + b"\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = await sock.recv(_RECEIVE)
            if not data:
                raise OSError("EOF in the upgrade")
            buf += data
        if not buf.startswith(b"HTTP/1.1 101") or accept not in buf:
            raise OSError("upgrade refused")
        await sock.send(_masked(0x1, _PAYLOAD))
        echo = b""
        while len(echo) < 66:
            echo += await sock.recv(_RECEIVE)
        await sock.send(_masked(0x8, b"\x03\xe8"))
        while await sock.recv(_RECEIVE):  # the server's Close, then its EOF
            pass
    finally:
        sock.close()


async def _raw(url: str, cycles: int) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
    ).encode("ascii")
    for _ in range(cycles):
        await _raw_cycle(host, port, head)


async def _wsproto(url: str, cycles: int) -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        CloseConnection,
        Message,
        Request,
        TextMessage,
    )

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    for _ in range(cycles):
        stream = await trio.open_tcp_stream(host, port)
        try:
            ws = WSConnection(ConnectionType.CLIENT)
            await stream.send_all(ws.send(Request(host=f"{host}:{port}", target="/")))
            while True:
                data = await stream.receive_some(_RECEIVE)
                ws.receive_data(data or None)
                for event in ws.events():
                    if isinstance(event, AcceptConnection):
                        await stream.send_all(ws.send(TextMessage(_PAYLOAD.decode())))
                    elif isinstance(event, Message):
                        await stream.send_all(ws.send(CloseConnection(code=1000)))
                if not data:  # the server's EOF (after its Close)
                    break
        finally:
            await stream.aclose()


async def _trio_websocket(url: str, cycles: int) -> None:
    from trio_websocket import open_websocket_url

    text = _PAYLOAD.decode()
    for _ in range(cycles):
        async with open_websocket_url(url) as ws:
            await ws.send_message(text)
            await ws.get_message()


CLIENTS: dict[str, Callable[[str, int], Awaitable[None]]] = {
    "raw-trio": _raw,
    "wsproto": _wsproto,
    "trio-websocket": _trio_websocket,
}


async def measure_bare(kind: str, url: str, cycles: int, concurrency: int) -> tuple[float, float]:
    """Run ``cycles`` cycles of client ``kind``; return (user, sys) CPU seconds of the run."""
    client = CLIENTS[kind]
    share, extra = divmod(cycles, concurrency)

    async def many(n: int) -> None:
        async with trio.open_nursery() as nursery:
            for i in range(concurrency):
                nursery.start_soon(client, url, share + (1 if i < extra else 0) if n else 1)

    with trio.fail_after(60):
        await many(0)  # warm-up: one cycle per task
        before = resource.getrusage(resource.RUSAGE_SELF)
        await many(cycles)
        after = resource.getrusage(resource.RUSAGE_SELF)
    return after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
