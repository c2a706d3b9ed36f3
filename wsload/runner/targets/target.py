"""``url = "builtin"``: the built-in server in its own process, on the other core.

Running the target in the generator's process would make them share one core and one event
loop: the generator's loop lag (and so every latency) would include the server's work. A child
process keeps them apart. The parent talks to it over a ``multiprocessing`` pipe: the child says
``("ready", host, port)``; the parent says ``"storm"`` or ``"stop"``; the child answers ``stop``
with its statistics (``ServerStats.as_dict()``) and exits.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import trio

from wsload.errors import ToolError
from wsload.scenario.model import Scenario, ServerConfig

__all__ = ["BuiltinTarget", "open_target"]

_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0


def _child(
    config: ServerConfig, seed: int | None, conn: multiprocessing.connection.Connection
) -> None:
    """Child process entry: serve until the parent says stop, then report statistics.

    SIGINT and SIGTERM are ignored: a terminal's Ctrl-C (or a group-wide SIGTERM) reaches the
    whole process group, and a server that died with it would turn the parent's graceful stop
    (clean closes) into a wave of 1006s. The parent always stops the child (pipe message, then
    kill), and a dead parent's pipe reads EOF, which stops it too.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from wsload.server.server import BuiltinServer

    server = BuiltinServer(config, seed=seed)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            host, port = await nursery.start(server.serve, "127.0.0.1", 0)
            conn.send(("ready", host, port))
            while True:
                command = await trio.to_thread.run_sync(_recv, conn, abandon_on_cancel=True)
                if command == "storm":
                    nursery.start_soon(server.shutdown_storm)
                    continue
                break
            nursery.cancel_scope.cancel()
        conn.send(("stats", server.stats.as_dict()))

    try:
        trio.run(main)
    finally:
        conn.close()


def _recv(conn: multiprocessing.connection.Connection) -> Any:
    try:
        return conn.recv()
    except EOFError:  # parent gone: stop serving
        return "stop"


class BuiltinTarget:
    """Async context manager owning the built-in server's process.

    ``url`` is ready inside the ``async with``; ``stats`` holds the server's statistics after it
    (``None`` if the child could not report them in time).
    """

    def __init__(self, config: ServerConfig, seed: int | None = None) -> None:
        self.config = config
        self.seed = seed
        self.url = ""
        self.stats: dict[str, Any] | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    async def __aenter__(self) -> BuiltinTarget:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_child,
            args=(self.config, self.seed, child),
            name="wsload-builtin-server",
            daemon=True,
        )
        await trio.to_thread.run_sync(process.start)
        child.close()
        self._conn, self._process = parent, process
        ready = await trio.to_thread.run_sync(parent.poll, _START_TIMEOUT)
        message = parent.recv() if ready else None
        if not (isinstance(message, tuple) and message[0] == "ready"):
            await self._kill()
            raise ToolError(f"the built-in server did not start within {_START_TIMEOUT:.0f} s")
        _, host, port = message
        self.url = f"ws://{host}:{port}/"
        return self

    @property
    def pid(self) -> int | None:
        """The server process's id (None before it started)."""
        return self._process.pid if self._process is not None else None

    async def storm(self) -> None:
        """Ask the server for a shutdown storm now (its configured code and grace)."""
        if self._conn is not None:
            self._conn.send("storm")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with trio.CancelScope(shield=True):
            conn = self._conn
            if conn is not None:
                try:
                    conn.send("stop")
                    if await trio.to_thread.run_sync(conn.poll, _STOP_TIMEOUT):
                        kind, stats = conn.recv()
                        if kind == "stats":
                            self.stats = stats
                except (OSError, EOFError):
                    pass
            await self._kill()

    async def _kill(self) -> None:
        process = self._process
        if process is not None:
            await trio.to_thread.run_sync(process.join, 2.0)
            if process.is_alive():
                process.kill()
                await trio.to_thread.run_sync(process.join, 2.0)
        if self._conn is not None:
            self._conn.close()
            self._conn = None


async def open_target(
    stack: AsyncExitStack, scenario: Scenario
) -> tuple[str, BuiltinTarget | None]:
    """The URL to load, and the built-in server when ``url = "builtin"`` (started in its own
    process, stopped when ``stack`` closes; its statistics are then in ``target.stats``)."""
    if not scenario.target.is_builtin:
        return scenario.target.url, None
    target = await stack.enter_async_context(BuiltinTarget(scenario.target.server, scenario.seed))
    return target.url, target
