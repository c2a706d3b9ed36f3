"""``RawSocketStream`` keeps trio's Stream contract: trio's own conformance tests, on sockets."""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

from wsload.engine.rawstream import RawSocketStream


async def _pair() -> tuple[RawSocketStream, RawSocketStream]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return RawSocketStream(a), RawSocketStream(b)


async def _clogged_pair() -> tuple[RawSocketStream, RawSocketStream]:
    left, right = await _pair()
    for stream in (left, right):  # fill both send buffers: the next send_all must wait
        try:
            while True:
                stream.sock.send(b"x" * 65536)
        except BlockingIOError:
            pass
    return left, right


async def test_trio_half_closeable_stream_conformance() -> None:
    with trio.fail_after(30):
        await trio.testing.check_half_closeable_stream(_pair, _clogged_pair)


async def test_tcp_loopback_round_trip_and_errors() -> None:
    with trio.fail_after(10):
        listener = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        listener.close()
        client.setblocking(False)
        stream = RawSocketStream(client)
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        await stream.send_all(b"ping")
        assert server.recv(4) == b"ping"
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        server.close()  # RST
        with pytest.raises(trio.BrokenResourceError) as info:
            while await stream.receive_some(10):
                pass
        assert isinstance(info.value.__cause__, ConnectionResetError)
        await stream.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await stream.receive_some(10)
