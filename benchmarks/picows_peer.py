"""The picows peer of ``benchmarks/cycle.py``: the same cycle with picows on uvloop.

picows (Cython, on asyncio) is the fastest Python WebSocket client we know of; with uvloop (libuv
under asyncio) it is what "per core ahead" is measured against. Each connection does exactly
wsload's cycle: TCP connect, upgrade, one 64-byte text message echoed, Close 1000, the server's
Close, the server's TCP EOF (picows closes the transport on EOF, which ends
``wait_disconnected``). ``concurrency`` tasks run the cycles back to back (closed loop), as
``bare.py``'s clients do. Nothing is recorded; a cycle counts as clean when the server's Close
came back 1000.

Installed with ``pip install -e '.[bench]'`` (not part of ``test``: CI does not need it).
"""

from __future__ import annotations

import asyncio
import resource

import uvloop
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = ["measure_picows"]

_PAYLOAD = b"x" * 64


class _Cycle(WSListener):  # type: ignore[misc]
    """One connection: the message once upgraded, our Close once it is echoed."""

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, _PAYLOAD)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            transport.send_close(WSCloseCode.OK)
        # the server's Close needs nothing: its EOF follows and disconnects the transport


async def _cycles(url: str, n: int) -> int:
    clean = 0
    for _ in range(n):
        transport, _listener = await ws_connect(_Cycle, url)
        await transport.wait_disconnected()
        handshake = transport.close_handshake
        if handshake is not None and handshake.recv is not None:
            clean += handshake.recv.code == WSCloseCode.OK
    return clean


async def _many(url: str, cycles: int, concurrency: int) -> int:
    share, extra = divmod(cycles, concurrency)
    counts = [share + (1 if i < extra else 0) for i in range(concurrency)]
    done = await asyncio.gather(*(_cycles(url, n) for n in counts if n))
    return sum(done)


async def _measure(url: str, cycles: int, concurrency: int) -> tuple[int, float, float]:
    async with asyncio.timeout(60):
        await _many(url, concurrency, concurrency)  # warm-up: one cycle per task
        before = resource.getrusage(resource.RUSAGE_SELF)
        clean = await _many(url, cycles, concurrency)
        after = resource.getrusage(resource.RUSAGE_SELF)
    return clean, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def measure_picows(url: str, cycles: int, concurrency: int) -> tuple[int, float, float]:
    """Run ``cycles`` cycles on uvloop; return (clean cycles, user, sys CPU seconds)."""
    return uvloop.run(_measure(url, cycles, concurrency))
