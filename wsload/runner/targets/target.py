"""``url = "builtin"``: the built-in server in its own process, on the other core.

Running the target in the generator's process would make them share one core and one event
loop: the generator's loop lag (and so every latency) would include the server's work. A child
process keeps them apart; ``wsload.server.child`` owns that process and its pipe, and this
module only runs its blocking calls in threads so that the run's event loop never waits.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import trio

from wsload.scenario.model import Scenario, ServerConfig
from wsload.server.child import ServerChild

__all__ = ["BuiltinTarget", "open_target"]

_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0


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
        self._child: ServerChild | None = None

    async def __aenter__(self) -> BuiltinTarget:
        child = ServerChild(self.config, seed=self.seed, name="wsload-builtin-server")
        self._child = child
        try:
            await trio.to_thread.run_sync(child.start)
            host, port = await trio.to_thread.run_sync(child.ready, _START_TIMEOUT)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._reap()
            raise
        self.url = f"ws://{host}:{port}/"
        return self

    @property
    def pid(self) -> int | None:
        """The server process's id (None before it started)."""
        return self._child.process.pid if self._child is not None else None

    async def storm(self) -> None:
        """Ask the server for a shutdown storm now (its configured code and grace)."""
        if self._child is not None:
            self._child.send("storm")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with trio.CancelScope(shield=True):
            child = self._child
            if child is not None:
                child.send("stop")
                self.stats = await trio.to_thread.run_sync(child.stats, _STOP_TIMEOUT)
            await self._reap()

    async def _reap(self) -> None:
        if self._child is not None:
            await trio.to_thread.run_sync(self._child.reap)


async def open_target(
    stack: AsyncExitStack, scenario: Scenario
) -> tuple[str, BuiltinTarget | None]:
    """The URL to load, and the built-in server when ``url = "builtin"`` (started in its own
    process, stopped when ``stack`` closes; its statistics are then in ``target.stats``)."""
    if not scenario.target.is_builtin:
        return scenario.target.url, None
    target = await stack.enter_async_context(BuiltinTarget(scenario.target.server, scenario.seed))
    return target.url, target
