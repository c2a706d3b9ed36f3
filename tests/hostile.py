"""Hostile WebSocket "servers": raw Trio listeners on 127.0.0.1 that misbehave on purpose.

Each :data:`MODES` entry is one way a real target can go wrong (never answers the upgrade,
drips it byte by byte, sends garbage, a 100 MB frame, a bad Close, resets mid-frame, ...).
:class:`HostileServer` runs one mode in its own thread and Trio run, so the same server serves
an async driver test (real loopback sockets) and a synchronous ``execute_run`` in the main
thread (which owns the signal handlers). Every socket it opens it closes, also when stopped,
so a leak on the client side is the client's (tests run with ResourceWarning as an error).

The server end is scripted with :class:`peers.RawPeer` (frames decoded by hand, not by the
code under test). ``sent`` counts the payload bytes the ``huge_frame`` mode managed to write
before the client gave up: the proof that wsload stops reading, instead of buffering 100 MB.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import struct
import threading
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import trio
from peers import RawPeer, server_frame

__all__ = [
    "BOMBS",
    "CASES",
    "HUGE",
    "MODES",
    "TIMEOUT",
    "Case",
    "HostileServer",
    "bomb",
    "held_open",
]

HUGE = 100 * 1024 * 1024
"""The size the ``huge_frame`` mode announces: 100 MB."""
_CHUNK = b"\0" * 65536
FLOOD = 10_000
"""Pings per connection in the ``ping_flood`` mode."""
_DRIP_EVERY = 0.2
_START_TIMEOUT = 10.0
_LINGER_ZERO = struct.pack("ii", 1, 0)

Script = Callable[["HostileServer", RawPeer], Awaitable[None]]


async def _drain(peer: RawPeer) -> None:
    """Read (and ignore) whatever the client sends until it closes TCP."""
    while await peer._more():
        peer.buffer = b""


async def _never_upgrade(server: HostileServer, peer: RawPeer) -> None:
    await peer.read_request()
    await _drain(peer)


async def _slow_upgrade(server: HostileServer, peer: RawPeer) -> None:
    await peer.read_request()
    for byte in peer.response():  # a valid 101, one byte every 200 ms
        await peer.send(bytes((byte,)))
        await trio.sleep(_DRIP_EVERY)


async def _silent(server: HostileServer, peer: RawPeer) -> None:
    """Upgrade, then never send a byte: no echo, no pong, no Close answer, no EOF."""
    await peer.accept()
    await _drain(peer)


async def _garbage_upgrade(server: HostileServer, peer: RawPeer) -> None:
    await peer.read_request()
    await peer.send(b"\x16\x03\x01\x02\x00garbage\xff\xfe not http at all\r\n\r\n")
    await _drain(peer)


async def _garbage_frames(server: HostileServer, peer: RawPeer) -> None:
    # opcode 0x3 is reserved and RSV1 is set without an extension: two framing errors
    await peer.accept(then=b"\xf3\x05hello" + bytes(range(256)))
    await _drain(peer)


async def _huge_frame(server: HostileServer, peer: RawPeer) -> None:
    """Announce a 100 MB binary frame and stream zeros until the client stops reading."""
    await peer.accept(then=struct.pack("!BBQ", 0x82, 127, HUGE))
    sent = 0
    try:
        while sent < HUGE:
            await peer.send(_CHUNK)
            sent += len(_CHUNK)
            server.sent = max(server.sent, sent)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    await _drain(peer)


async def _close_invalid_code(server: HostileServer, peer: RawPeer) -> None:
    await peer.accept()
    await peer.send_close(1005)  # reserved: may never be sent on the wire
    await _drain(peer)


async def _close_without_code(server: HostileServer, peer: RawPeer) -> None:
    """An empty Close right behind the 101 (a browser reports 1005), then the client's answer,
    then FIN."""
    await peer.accept(then=server_frame(0x8, b""))
    while (frame := await peer.frame()) is not None and frame[0] != 0x8:
        pass
    # returning closes TCP (FIN) after the closing handshake: the RFC's clean order


async def _close_invalid_utf8(server: HostileServer, peer: RawPeer) -> None:
    await peer.accept()
    await peer.send(server_frame(0x8, struct.pack("!H", 1000) + b"bye \xff\xfe"))
    await _drain(peer)


async def _reset_mid_frame(server: HostileServer, peer: RawPeer) -> None:
    await peer.accept(then=b"\x82\x7e\x10\x00" + b"x" * 100)  # 4096-byte frame, 100 sent
    await trio.sleep(0.05)
    _reset(peer)


async def _close_mid_handshake(server: HostileServer, peer: RawPeer) -> None:
    await peer.read_request()
    await peer.send(b"HTTP/1.1 101 Switching Proto")
    # returning closes TCP (FIN) in the middle of the status line


async def _huge_headers(server: HostileServer, peer: RawPeer) -> None:
    await peer.read_request()
    await peer.send(b"HTTP/1.1 101 Switching Protocols\r\n")
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        for n in range(100_000):  # headers forever (6 MB) unless the client hangs up
            await peer.send(f"X-Filler-{n}: {'a' * 48}\r\n".encode())


async def _wrong_accept(server: HostileServer, peer: RawPeer) -> None:
    await peer.read_request()
    response = peer.response().replace(b"Sec-WebSocket-Accept: ", b"Sec-WebSocket-Accept: x")
    await peer.send(response)
    await _drain(peer)


async def _fragmented_ping(server: HostileServer, peer: RawPeer) -> None:
    await peer.accept(then=server_frame(0x9, b"part", fin=False))  # control frames cannot fragment
    await _drain(peer)


async def _eof_after_upgrade(server: HostileServer, peer: RawPeer) -> None:
    await peer.accept()
    with trio.move_on_after(0.05):  # read what came (unread bytes would turn FIN into RST)
        await _drain(peer)
    # then FIN with no Close frame


async def _ping_flood(server: HostileServer, peer: RawPeer) -> None:
    """A burst of :data:`FLOOD` pings as fast as the socket takes them, meanwhile echoing
    data and answering the client's Close properly (the client must pong and keep up).

    One lock around writes and a flag (not a cancellation) to stop the flood, so that no
    frame is ever cut in half on the wire.
    """
    await peer.accept()
    lock = trio.Lock()
    done = False

    async def send(data: bytes) -> None:
        async with lock:
            await peer.send(data)

    async def flood() -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            for _ in range(FLOOD // 100):
                if done:
                    break
                await send(server_frame(0x9, b"flood") * 100)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood)
        try:
            while (frame := await peer.frame()) is not None:
                if frame[0] == 0x8:  # Close: answer it with the same code, then close TCP
                    done = True
                    await send(server_frame(0x8, frame[1][:2]))
                    break
                if frame[0] in (0x1, 0x2):
                    await send(server_frame(frame[0], frame[1]))
        finally:
            done = True


BOMBS = {"deflate_bomb": 3 * 1024 * 1024 // 2, "deflate_bomb_huge": 100 * 1024 * 1024}
"""Bytes each bomb inflates to: 1.5 MiB from about 1.5 KiB (over the default 1 MiB
max_message_size), and 100 MiB from about 100 KiB (for the RSS bound)."""


@functools.cache
def bomb(size: int) -> bytes:
    """``size`` zero bytes as one permessage-deflate message body (raw deflate, sync flush,
    the trailing 00 00 ff ff cut)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)  # never the whole size in memory: the test measures RSS
    parts = [
        compressor.compress(chunk[: min(len(chunk), size - at)])
        for at in range(0, size, len(chunk))
    ]
    return (b"".join(parts) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


async def _deflate_bomb(server: HostileServer, peer: RawPeer) -> None:
    """Accept permessage-deflate, then send one compressed binary message (RSV1) that inflates
    far past the client's max_message_size."""
    size = BOMBS["deflate_bomb_huge" if server.mode == "deflate_bomb_huge" else "deflate_bomb"]
    await peer.accept("Sec-WebSocket-Extensions: permessage-deflate")
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await peer.send(server_frame(0x2 | 0x40, bomb(size)))
    await _drain(peer)


def _selects(header: str) -> Script:
    """A server whose 101 selects ``header`` as its Sec-WebSocket-Extensions."""

    async def script(server: HostileServer, peer: RawPeer) -> None:
        await peer.accept(f"Sec-WebSocket-Extensions: {header}")
        await _drain(peer)

    return script


async def _close_then_hold(server: HostileServer, peer: RawPeer) -> None:
    """Close 4000 right behind the 101, then keep TCP open whatever the client does."""
    await peer.accept(then=server_frame(0x8, struct.pack("!H", 4000)))
    await _drain(peer)


async def _close_then_reset(server: HostileServer, peer: RawPeer) -> None:
    """Close 4000 right behind the 101; when the client answers, reset TCP."""
    await peer.accept(then=server_frame(0x8, struct.pack("!H", 4000)))
    while (frame := await peer.frame()) is not None and frame[0] != 0x8:
        pass
    _reset(peer)


async def _answer_then_hold(server: HostileServer, peer: RawPeer) -> None:
    """Answer the client's Close with its code, then keep TCP open (never the server's FIN)."""
    await peer.accept()
    while (frame := await peer.frame()) is not None and frame[0] != 0x8:
        pass
    if frame is not None:
        await peer.send(server_frame(0x8, frame[1][:2]))
    await _drain(peer)


def _reset(peer: RawPeer) -> None:
    """Close the server's socket with RST (SO_LINGER 0)."""
    stream = peer.stream
    assert isinstance(stream, trio.SocketStream)
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)


MODES: dict[str, Script] = {
    "never_upgrade": _never_upgrade,
    "slow_upgrade": _slow_upgrade,
    "silent": _silent,
    "garbage_upgrade": _garbage_upgrade,
    "garbage_frames": _garbage_frames,
    "huge_frame": _huge_frame,
    "close_invalid_code": _close_invalid_code,
    "close_invalid_utf8": _close_invalid_utf8,
    "close_without_code": _close_without_code,
    "reset_mid_frame": _reset_mid_frame,
    "close_mid_handshake": _close_mid_handshake,
    "huge_headers": _huge_headers,
    "wrong_accept": _wrong_accept,
    "fragmented_ping": _fragmented_ping,
    "eof_after_upgrade": _eof_after_upgrade,
    "ping_flood": _ping_flood,
    "close_then_hold": _close_then_hold,
    "close_then_reset": _close_then_reset,
    "answer_then_hold": _answer_then_hold,
    "deflate_bomb": _deflate_bomb,
    "deflate_bomb_huge": _deflate_bomb,
    "extension_not_offered": _selects("x-webkit-deflate-frame"),
    "deflate_param_not_offered": _selects("permessage-deflate; mystery_bits=10"),
    "deflate_twice": _selects("permessage-deflate, permessage-deflate"),
}


class HostileServer:
    """One hostile mode on ``127.0.0.1:port``, served from a thread (a context manager).

    Attributes:
        port: set once started.
        url: ``ws://127.0.0.1:port/``.
        sent: ``huge_frame``: most payload bytes written to one connection.
        connections: connections accepted so far.
        requests: the upgrade request heads read, as text (connections that got that far).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.script = MODES[mode]
        self.port = 0
        self.sent = 0
        self.connections = 0
        self.requests: list[str] = []
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=f"hostile-{mode}", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def __enter__(self) -> HostileServer:
        if self.mode in BOMBS:  # ready before any client: 100 MiB take seconds to compress
            bomb(BOMBS[self.mode])  # on a busy machine, while the clients' timeouts would run
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT) or self._error is not None:
            raise RuntimeError(f"hostile server did not start: {self._error!r}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None and self._scope is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._scope.cancel)
        self._thread.join(_START_TIMEOUT)
        assert not self._thread.is_alive(), "hostile server did not stop"

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                self.port = listeners[0].socket.getsockname()[1]
                self._ready.set()
                async with trio.open_nursery() as nursery:
                    while True:
                        stream = await listeners[0].accept()
                        self.connections += 1
                        nursery.start_soon(self._handle, stream)
        finally:
            for listener in listeners:
                await trio.aclose_forcefully(listener)

    async def _handle(self, stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        try:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, EOFError):
                await self.script(self, peer)
        finally:
            if peer.request:
                self.requests.append(peer.request)
            await trio.aclose_forcefully(stream)


TIMEOUT = 0.5
"""handshake_timeout, message_timeout and the clean close timeout of the hostile tests."""


@dataclass(frozen=True, slots=True)
class Case:
    """One hostile case: the mode, what the client does, and what it must record.

    Attributes:
        mode: the server's :data:`MODES` entry.
        messages: data messages the client sends (0: straight to its clean close).
        outcome: the one outcome every connection must get.
        code_sent: the Close code wsload fails the connection with (None: no Close sent).
        waits: the case takes one :data:`TIMEOUT` (a bounded wait expires), else it is immediate.
    """

    mode: str
    messages: int
    outcome: str
    code_sent: int | None = None
    waits: bool = False

    @property
    def id(self) -> str:
        return f"{self.mode}-{self.messages}msg"

    @property
    def timeout(self) -> float:
        """The client's timeouts for this case: :data:`TIMEOUT` when the case waits one out;
        otherwise ten times it, so that CPU-bound work on a busy machine (a ping flood to
        answer) never meets a timer the case is not about."""
        return TIMEOUT if self.waits else 10 * TIMEOUT


CASES = (
    Case("never_upgrade", 1, "handshake_timeout", waits=True),
    Case("slow_upgrade", 1, "handshake_timeout", waits=True),
    Case("silent", 1, "message_timeout", waits=True),  # accepts, then silence
    Case("silent", 0, "close_timeout", code_sent=1000, waits=True),  # never answers our Close
    Case("garbage_upgrade", 1, "handshake_invalid"),
    Case("garbage_frames", 1, "protocol_error", code_sent=1002),
    Case("huge_frame", 1, "protocol_error", code_sent=1009),
    Case("close_invalid_code", 1, "protocol_error", code_sent=1002),
    Case("close_invalid_utf8", 1, "protocol_error", code_sent=1007),
    Case("reset_mid_frame", 1, "reset"),
    Case("close_mid_handshake", 1, "handshake_invalid"),
    Case("huge_headers", 1, "handshake_invalid"),
    Case("wrong_accept", 1, "handshake_invalid"),
    Case("fragmented_ping", 1, "protocol_error", code_sent=1002),
    Case("eof_after_upgrade", 1, "abnormal"),
    Case("ping_flood", 1, "clean", code_sent=1000),
    Case("close_without_code", 0, "server_closed"),
)


_EPOLL = "anon_inode:[eventpoll]"


def held_open() -> Counter[str]:
    """What this process holds open, by target: its files and its TCP sockets
    (``socket:[inode]``), so a test can show it left none behind (``held_open() <= before``)
    and say which.

    Not the one UDP socket the wire clock keeps for the rest of the process's life
    (wsload/engine/wireclock.py): the first run in a process that reads kernel stamps opens
    it, and which test that is depends on what ran before in the same worker process. Nor an
    epoll: Trio's own and the run's poller (wsload/engine/poller.py, opened at the run's first
    parked read) last as long as the Trio run (tests/engine/test_engine_poller.py checks that
    the poller's closes with it).
    """
    tcp = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            lines = Path(f"/proc/self/net/{table}").read_text(encoding="ascii").splitlines()
            tcp |= {f"socket:[{line.split()[9]}]" for line in lines[1:]}
    found: Counter[str] = Counter()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile (the listing's own fd)
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target == _EPOLL:
                continue
            if not target.startswith("socket:") or target in tcp:
                found[target] += 1
    return found
