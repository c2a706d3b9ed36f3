"""``url = "builtin"``: the built-in server in its own processes, apart from the generator.

Running the target in the generator's process would make them share one core and one event
loop: the generator's loop lag (and so every latency) would include the server's work. Child
processes keep them apart; more than one (``processes``, chosen by ``runner/modes/machine.py``
when one process's file limit or core is not enough) share one port through SO_REUSEPORT, as
``wsload serve --processes N`` does, the port held by a bound socket in the parent until all
listen. The parent talks to each over a ``multiprocessing`` pipe: the child says ``("ready",
host, port)``; the parent says ``"storm"`` or ``"stop"``; the child answers ``stop`` with its
statistics (``ServerStats.as_dict()``, summed over the processes) and exits.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import signal
from collections.abc import Mapping
from contextlib import AsyncExitStack
from functools import partial
from types import TracebackType
from typing import Any

import trio

from wsload.errors import ToolError
from wsload.scenario.model import Scenario, ServerConfig
from wsload.server.multi import reserve_port, sum_stats

__all__ = ["BuiltinTarget", "open_target"]

_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0

Conn = multiprocessing.connection.Connection


def _child(
    config: ServerConfig,
    seed: int | None,
    conn: multiprocessing.connection.Connection,
    port: int = 0,
) -> None:
    """Child process entry: serve until the parent says stop, then report statistics.

    SIGINT and SIGTERM are ignored: a terminal's Ctrl-C (or a group-wide SIGTERM) reaches the
    whole process group, and a server that died with it would turn the parent's graceful stop
    (clean closes) into a wave of 1006s. The parent always stops the child (pipe message, then
    kill), and a dead parent's pipe reads EOF, which stops it too.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from wsload.process import raise_nofile_limit
    from wsload.server.server import BuiltinServer

    raise_nofile_limit()
    server = BuiltinServer(config, seed=seed)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            serve = partial(server.serve, "127.0.0.1", port, reuse_port=port != 0)
            host, bound = await nursery.start(serve)
            conn.send(("ready", host, bound))
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
    except EOFError:  # the other end is gone: the parent (stop serving) or the child
        return "stop"


class BuiltinTarget:
    """Async context manager owning the built-in server's processes.

    ``url`` is ready inside the ``async with``; ``stats`` holds the server's statistics after it
    (summed over its processes; ``None`` if none could report them in time).
    """

    def __init__(self, config: ServerConfig, seed: int | None = None, processes: int = 1) -> None:
        self.config = config
        self.seed = seed
        self.processes = max(1, processes)
        self.url = ""
        self.stats: dict[str, Any] | None = None
        self._children: list[tuple[multiprocessing.process.BaseProcess, Conn]] = []

    async def __aenter__(self) -> BuiltinTarget:
        ctx = multiprocessing.get_context("spawn")
        reserved = reserve_port("127.0.0.1", 0) if self.processes > 1 else None
        port = reserved.getsockname()[1] if reserved is not None else 0
        try:
            for _ in range(self.processes):
                parent, child = ctx.Pipe()
                process = ctx.Process(
                    target=_child,
                    args=(self.config, self.seed, child, port),
                    name="wsload-builtin-server",
                    daemon=True,
                )
                await trio.to_thread.run_sync(process.start)
                child.close()
                self._children.append((process, parent))
            for _, conn in self._children:
                ready = await trio.to_thread.run_sync(conn.poll, _START_TIMEOUT)
                message = _recv(conn) if ready else None
                if not (isinstance(message, tuple) and message[0] == "ready"):
                    raise ToolError(
                        f"the built-in server did not start within {_START_TIMEOUT:.0f} s"
                    )
                _, host, port = message
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._kill()
            raise
        finally:
            if reserved is not None:
                reserved.close()
        self.url = f"ws://{host}:{port}/"
        return self

    @property
    def pid(self) -> int | None:
        """The (first) server process's id (None before it started)."""
        return self._children[0][0].pid if self._children else None

    async def storm(self) -> None:
        """Ask the server for a shutdown storm now (its configured code and grace)."""
        for _, conn in self._children:
            with contextlib.suppress(OSError):
                conn.send("storm")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with trio.CancelScope(shield=True):
            for _, conn in self._children:
                with contextlib.suppress(OSError):
                    conn.send("stop")
            parts = [await self._stats(conn) for _, conn in self._children]
            reported: list[Mapping[str, Any]] = [part for part in parts if part is not None]
            if reported:
                self.stats = dict(reported[0]) if len(parts) == 1 else sum_stats(reported)
            await self._kill()

    @staticmethod
    async def _stats(conn: Conn) -> dict[str, Any] | None:
        try:
            if await trio.to_thread.run_sync(conn.poll, _STOP_TIMEOUT):
                kind, stats = conn.recv()
                if kind == "stats":
                    return dict(stats)
        except (OSError, EOFError):
            pass
        return None

    async def _kill(self) -> None:
        for process, conn in self._children:
            await trio.to_thread.run_sync(process.join, 2.0)
            if process.is_alive():
                process.kill()
                await trio.to_thread.run_sync(process.join, 2.0)
            conn.close()
        self._children = []


async def open_target(
    stack: AsyncExitStack, scenario: Scenario, processes: int = 1
) -> tuple[str, BuiltinTarget | None]:
    """The URL to load, and the built-in server when ``url = "builtin"`` (started in its own
    ``processes``, stopped when ``stack`` closes; its statistics are then in ``target.stats``)."""
    if not scenario.target.is_builtin:
        return scenario.target.url, None
    server = BuiltinTarget(scenario.target.server, scenario.seed, processes)
    target = await stack.enter_async_context(server)
    return target.url, target
