"""``wsload serve --processes N``: N built-in servers sharing one port (SO_REUSEPORT).

One process holds at most RLIMIT_NOFILE sockets (20,000 on a typical box) and uses one core; a
target for 30,000 held connections needs more. The kernel spreads incoming connections over
every socket listening with SO_REUSEPORT on the port, so N independent processes serve as one.

The parent reserves the port (a bound, not listening, SO_REUSEPORT socket: with ``--port 0``
it picks one that all children then share), starts N ``spawn``ed children, prints one
``listening on`` line when all listen, and forwards signals: SIGINT/SIGTERM stop every child
(once), SIGUSR1 starts a shutdown storm in each. Children ignore SIGINT so that a Ctrl-C, which
reaches the whole process group, goes through the parent and every child still reports its
statistics, summed in the parent.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from functools import partial
from types import FrameType
from typing import Any

import trio

from wsload.errors import ToolError
from wsload.scenario.model import ServerConfig
from wsload.server.server import BuiltinServer, ws_url

__all__ = ["reserve_port", "run_servers_cli", "sum_stats"]

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0

Conn = multiprocessing.connection.Connection


def _child(
    config: ServerConfig, host: str, port: int, seed: int | None, conn: Conn
) -> None:  # pragma: no cover - runs in the child (covered through run_servers_cli)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from wsload.process import raise_nofile_limit

    raise_nofile_limit()
    server = BuiltinServer(config, seed=seed)

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGUSR1) as signals:
            async with trio.open_nursery() as nursery:
                serve = partial(server.serve, host, port, reuse_port=True)
                bound = await nursery.start(serve)
                conn.send(("ready", *bound))
                async for signum in signals:
                    if signum == signal.SIGUSR1:
                        nursery.start_soon(server.shutdown_storm)
                    else:
                        break
                nursery.cancel_scope.cancel()

    try:
        trio.run(main)
        conn.send(("stats", server.stats.as_dict()))
    except Exception as exc:
        conn.send(("error", str(exc)))
    finally:
        conn.close()


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
    ctx = multiprocessing.get_context("spawn")
    children: list[tuple[multiprocessing.process.BaseProcess, Conn]] = []
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if signum == signal.SIGUSR1:
            for process, _ in children:
                _signal(process, signal.SIGUSR1)
            return
        if not stopping:
            stopping = True
            for process, _ in children:
                _signal(process, signal.SIGTERM)

    previous = {
        s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    }
    try:
        for _ in range(processes):
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=_child,
                args=(config, bound_host, bound_port, seed, child),
                name="wsload-serve",
                daemon=True,
            )
            process.start()
            child.close()
            children.append((process, parent))
        for _, conn in children:
            message = _recv(conn, _START_TIMEOUT)
            if not (isinstance(message, tuple) and message[0] == "ready"):
                raise ToolError(f"a server process did not start: {message!r}")
        reserved.close()
        echo(f"listening on {ws_url(bound_host, bound_port)} ({processes} processes)")
        sys.stdout.flush()
        while not stopping and any(p.is_alive() for p, _ in children):
            time.sleep(0.2)  # the handler sets ``stopping``; a signal cuts the sleep short
        stats = [message[1] for _, conn in children if (message := _recv(conn, _STOP_TIMEOUT))]
        return sum_stats([part for part in stats if isinstance(part, Mapping)])
    finally:
        reserved.close()
        for started, conn in children:
            if not stopping:  # an error above: stop the children that did start
                _signal(started, signal.SIGTERM)
            started.join(_STOP_TIMEOUT)
            if started.is_alive():
                started.kill()
                started.join(2.0)
            conn.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _recv(conn: Conn, timeout: float) -> Any:
    """The child's next message within ``timeout``; None if none came or it died."""
    try:
        return conn.recv() if conn.poll(timeout) else None
    except (EOFError, OSError):
        return None


def _signal(process: multiprocessing.process.BaseProcess, signum: int) -> None:
    if process.pid is not None and process.is_alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)
