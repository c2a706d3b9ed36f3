"""``wsload serve --processes N``: N built-in servers sharing one port (SO_REUSEPORT).

One process holds at most RLIMIT_NOFILE sockets (20,000 on a typical box) and uses one core; a
target for 30,000 held connections needs more. The kernel spreads incoming connections over
every socket listening with SO_REUSEPORT on the port, so N independent processes serve as one.

The parent reserves the port (a bound, not listening, SO_REUSEPORT socket: with ``--port 0``
it picks one that all children then share), starts N children (``wsload.server.child``, the
same child-server loop as a run's built-in target), prints one ``listening on`` line when all
listen, and turns signals into commands on each child's pipe: SIGINT/SIGTERM stop every child
(once), SIGUSR1 starts a shutdown storm in each. Children ignore SIGINT and SIGTERM so that a
Ctrl-C, which reaches the whole process group, goes through the parent and every child still
reports its statistics, summed in the parent.
"""

from __future__ import annotations

import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from wsload.errors import ToolError
from wsload.scenario.model import ServerConfig
from wsload.server.child import ServerChild
from wsload.server.server import ws_url

__all__ = ["reserve_port", "run_servers_cli", "sum_stats"]

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0


def sum_stats(parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Server statistics of several processes added key by key (numbers and nested counters).

    ``peak_open`` becomes the sum of the peaks: an upper bound of the true joint peak.
    """
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            mine = out.get(key)
            if isinstance(value, Mapping):
                out[key] = sum_stats([mine or {}, value])
            elif isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = (mine or 0) + value
            elif key not in out:
                out[key] = value
    return out


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (not listen) a SO_REUSEPORT socket: holds the port until the children listen."""
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ToolError(f"cannot listen on {ws_url(host, port)}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        raise ToolError(f"cannot listen on {ws_url(host, port)}: {exc.strerror or exc}") from None
    return sock


def run_servers_cli(
    config: ServerConfig,
    host: str,
    port: int,
    processes: int,
    echo: Callable[[str], None],
    *,
    seed: int | None = None,
) -> dict[str, Any]:
    """Serve with ``processes`` processes until SIGINT/SIGTERM; return the summed statistics.

    Raises:
        ToolError: the port cannot be bound, or a child did not start in time.
    """
    reserved = reserve_port(host, port)
    bound_host, bound_port = reserved.getsockname()[:2]
    children: list[ServerChild] = []
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if signum == signal.SIGUSR1:
            for child in children:
                child.send("storm")
            return
        if not stopping:
            stopping = True
            for child in children:
                child.send("stop")

    previous = {
        s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    }
    try:
        for _ in range(processes):
            children.append(
                ServerChild(
                    config,
                    host=bound_host,
                    port=bound_port,
                    reuse_port=True,
                    seed=seed,
                    name="wsload-serve",
                )
            )
            children[-1].start()
        for child in children:
            child.ready(_START_TIMEOUT)
        reserved.close()
        echo(f"listening on {ws_url(bound_host, bound_port)} ({processes} processes)")
        sys.stdout.flush()
        while not stopping and any(child.alive for child in children):
            time.sleep(0.2)  # the handler sets ``stopping``; a signal cuts the sleep short
        stats = [child.stats(_STOP_TIMEOUT) for child in children]
        return sum_stats([part for part in stats if part is not None])
    finally:
        reserved.close()
        for child in children:
            if not stopping:  # an error above: stop the children that did start
                child.send("stop")
            child.reap(_STOP_TIMEOUT)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
