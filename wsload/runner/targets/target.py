"""``url = "builtin"``: the built-in server in its own processes, apart from the generator.

Running the target in the generator's process would make them share one core and one event
loop: the generator's loop lag (and so every latency) would include the server's work. Child
processes keep them apart; ``wsload.server.child`` owns each process and its pipe, and this
module only runs their blocking calls in threads so that the run's event loop never waits. More
than one (``processes``, chosen by ``runner/modes/machine.py`` when one process's file limit or
core is not enough) share one port through SO_REUSEPORT, as ``wsload serve --processes N``
does, the port held by a bound socket here until all listen; their statistics are summed.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import trio

from wsload.scenario.model import Scenario, ServerConfig
from wsload.server.child import ServerChild
from wsload.server.multi import reserve_port, sum_stats

__all__ = ["BuiltinTarget", "open_target"]

_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0


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
        self._children: list[ServerChild] = []

    async def __aenter__(self) -> BuiltinTarget:
        shared = self.processes > 1
        reserved = reserve_port("127.0.0.1", 0) if shared else None
        port = reserved.getsockname()[1] if reserved is not None else 0
        try:
            for _ in range(self.processes):
                child = ServerChild(
                    self.config,
                    port=port,
                    reuse_port=shared,
                    seed=self.seed,
                    name="wsload-builtin-server",
                )
                self._children.append(child)
                await trio.to_thread.run_sync(child.start)
            for child in self._children:
                host, port = await trio.to_thread.run_sync(child.ready, _START_TIMEOUT)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._reap()
            raise
        finally:
            if reserved is not None:
                reserved.close()
        self.url = f"ws://{host}:{port}/"
        return self

    @property
    def pid(self) -> int | None:
        """The (first) server process's id (None before it started)."""
        return self._children[0].process.pid if self._children else None

    async def storm(self) -> None:
        """Ask the server for a shutdown storm now (its configured code and grace), in every
        process."""
        for child in self._children:
            child.send("storm")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with trio.CancelScope(shield=True):
            for child in self._children:
                child.send("stop")
            parts = [
                await trio.to_thread.run_sync(child.stats, _STOP_TIMEOUT)
                for child in self._children
            ]
            reported = [part for part in parts if part is not None]
            if reported:
                self.stats = reported[0] if len(parts) == 1 else sum_stats(list(reported))
            await self._reap()

    async def _reap(self) -> None:
        for child in self._children:
            await trio.to_thread.run_sync(child.reap)
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
