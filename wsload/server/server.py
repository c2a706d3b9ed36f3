"""The built-in target server: listening, shutdown storms and the ``wsload serve`` helper.

Why wsload ships a server: the quickstart must run with no external target, the tests need a
target whose behaviour is exact, and users rehearse their clients against a server that
misbehaves on purpose (slow or missing Close replies, dropped TCP, rejections, storms). It also
reports the other side of the story: which close codes the *server* received.

Per connection it is one Trio task (:mod:`wsload.server.connection`), a hand-written upgrade
(:mod:`wsload.server.upgrade`) and a ``wsproto`` frame layer; see docs/server.md for what one
process sustains.
"""

from __future__ import annotations

import errno
import signal
import sys
from collections.abc import Callable

import trio

from wsload.errors import ToolError
from wsload.scenario.model import ServerConfig
from wsload.server.connection import HARD_SEND_LIMIT, serve_connection
from wsload.server.policy import ServerState
from wsload.server.stats import ServerStats

__all__ = ["BACKLOG", "STORM_SLACK", "BuiltinServer", "run_server_cli", "ws_url"]

BACKLOG = 16384
"""listen() backlog; the kernel caps it at net.core.somaxconn (4096 on current Linux)."""

_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_CAPACITY_PAUSE = 0.1

STORM_SLACK = 5.0
"""How long past its grace :meth:`BuiltinServer.shutdown_storm` waits for the stragglers' end."""


def ws_url(host: str, port: int) -> str:
    """``ws://host:port`` with an IPv6 host in brackets."""
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"ws://{name}:{port}"


async def _listen(host: str, port: int, reuse_port: bool = False) -> trio.SocketListener:
    """A listening socket on the first address ``host`` resolves to.

    One socket, not ``open_tcp_listeners``' one per address: with port 0, ``localhost``
    would otherwise listen on a different port per family and the reported URL would lie.
    """
    where = ws_url(host, port).removeprefix("ws://")
    try:
        infos = await trio.socket.getaddrinfo(
            host, port, type=trio.socket.SOCK_STREAM, flags=trio.socket.AI_PASSIVE
        )
    except OSError as exc:
        raise ToolError(f"cannot listen on {where}: {exc}") from None
    family, type_, proto, _, sockaddr = infos[0]
    sock = trio.socket.socket(family, type_, proto)
    try:
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
        if reuse_port:  # several processes share the port; the kernel spreads connections
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEPORT, 1)
        if family == trio.socket.AF_INET6:
            sock.setsockopt(trio.socket.IPPROTO_IPV6, trio.socket.IPV6_V6ONLY, 1)
        await sock.bind(sockaddr)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ToolError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    return trio.SocketListener(sock)


class BuiltinServer:
    """A WebSocket server whose close behaviour is set by a :class:`ServerConfig`.

    Args:
        config: the behaviour (shared by ``[target.server]`` and ``wsload serve`` flags).
        seed: makes rejections (``reject_share``) and random delays repeatable.

    Attributes:
        stats: live counters; read them at any time, e.g. after :meth:`serve` returns.
    """

    def __init__(self, config: ServerConfig, *, seed: int | None = None) -> None:
        self.config = config
        self._state = ServerState(config, seed)
        self.stats: ServerStats = self._state.stats

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        reuse_port: bool = False,
        task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``host:port`` and serve until cancelled.

        ``task_status.started((host, port))`` reports the bound address (the real port when
        ``port`` is 0). Cancellation closes the listener and every connection's socket.
        ``config.shutdown_after`` starts a shutdown storm that long after listening began.
        ``reuse_port`` sets SO_REUSEPORT (``wsload serve --processes N``).

        Raises:
            ToolError: the address cannot be resolved or bound (port in use, no IPv6).
        """
        listener = await _listen(host, port, reuse_port)
        bound_host, bound_port = listener.socket.getsockname()[:2]
        async with listener, trio.open_nursery() as nursery:
            if self.config.shutdown_after is not None:
                nursery.start_soon(self._storm_later, self.config.shutdown_after)
            task_status.started((bound_host, bound_port))
            await self._accept_loop(listener, nursery)

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        """``trio.serve_listeners`` without its per-connection ``aclose_forcefully``.

        Each connection task closes its own socket synchronously (it may need SO_LINGER
        first), so the extra cancel scope and checkpoint per connection are pure cost.
        Running out of file descriptors pauses accepting briefly, as Trio does.
        """
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _CAPACITY_ERRNOS:
                    raise
                await trio.sleep(_CAPACITY_PAUSE)
                continue
            nursery.start_soon(self.handle_stream, stream)

    async def handle_stream(self, stream: trio.abc.HalfCloseableStream) -> None:
        """Serve one already-accepted connection (any half-closeable Trio stream) to its end.

        :meth:`serve` calls it per accepted socket; tests call it on in-memory streams to
        check exact timings under Trio's autojump clock.
        """
        await serve_connection(self._state, stream)

    async def shutdown_storm(self, code: int | None = None, grace: float | None = None) -> None:
        """Close every open connection at once, then terminate whoever is left after ``grace``.

        The seeds' two sweeps (Node ``ws``: ``close()`` everyone, later ``terminate()`` who is
        still open). ``grace`` 0 is their hard shutdown: the Close frame is written and the
        socket destroyed at once. Returns when every swept connection has ended (at most
        ``grace`` + :data:`STORM_SLACK` later). Connections upgraded after the sweep are left
        alone, as in Node.

        Args:
            code: the Close code (default ``config.shutdown_code``, 1001 Going Away).
            grace: seconds before the second sweep (default ``config.shutdown_grace``).
        """
        code = self.config.shutdown_code if code is None else code
        grace = self.config.shutdown_grace if grace is None else grace
        hard = grace <= 0.0
        self.stats.storms += 1
        deadline = trio.current_time() + (HARD_SEND_LIMIT if hard else grace)
        swept = list(self._state.open)
        for conn in swept:
            conn.request_storm(code, deadline, hard)
        with trio.move_on_at(deadline + STORM_SLACK):
            for conn in swept:
                await conn.closed()

    async def _storm_later(self, delay: float) -> None:
        await trio.sleep(delay)
        await self.shutdown_storm()


def _only(exc: BaseException) -> BaseException:
    """The single leaf of nested one-exception groups (Trio nurseries wrap what they raise)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def run_server_cli(
    config: ServerConfig,
    host: str,
    port: int,
    echo: Callable[[str], None],
    *,
    seed: int | None = None,
) -> ServerStats:
    """Run a server in the foreground until SIGINT/SIGTERM (``wsload serve``); return its stats.

    Prints ``listening on ws://HOST:PORT`` through ``echo`` once the socket listens. SIGUSR1
    starts a shutdown storm with the configured code and grace; the signal handlers are
    installed before the line is printed, so a SIGUSR1 sent as soon as it is read cannot kill
    the process. Ctrl-C never shows a traceback.

    Raises:
        ToolError: the address cannot be bound.
    """
    server = BuiltinServer(config, seed=seed)
    watched = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGUSR1"):
        watched.append(signal.SIGUSR1)

    async def main() -> None:
        with trio.open_signal_receiver(*watched) as signals:
            async with trio.open_nursery() as nursery:
                bound: tuple[str, int] = await nursery.start(server.serve, host, port)
                echo(f"listening on {ws_url(*bound)}")
                sys.stdout.flush()
                async for signum in signals:
                    if signum == getattr(signal, "SIGUSR1", None):
                        nursery.start_soon(server.shutdown_storm)
                    else:
                        break
                nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except KeyboardInterrupt:  # Ctrl-C before the handlers were installed
        pass
    except BaseExceptionGroup as group:
        leaf = _only(group)
        if isinstance(leaf, KeyboardInterrupt):
            pass
        elif isinstance(leaf, ToolError):
            raise leaf from None
        else:
            raise
    return server.stats
