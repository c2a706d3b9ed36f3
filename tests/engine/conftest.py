"""Fixtures shared by the engine tier's tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback pair: (our non-blocking client, the peer)."""
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.socket() as client:
        client.setblocking(False)
        client.connect_ex(listener.getsockname())
        peer, _ = listener.accept()
        with peer:
            yield client, peer
