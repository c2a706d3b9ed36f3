"""A built-in server in a child process: started, waited for, commanded, reaped.

Both ways wsload runs its server away from the caller's process use this one loop: the
``url = "builtin"`` target of a run (``wsload.runner.targets.target``, so that the server does
not share the generator's core and event loop) and ``wsload serve --processes N``
(``wsload.server.multi``, N children on one SO_REUSEPORT port).

The parent and the child talk over a ``multiprocessing`` pipe. The child says
``("ready", host, port)`` once it listens (or ``("error", text)`` if it cannot); the parent says
``"storm"`` or ``"stop"``; the child answers ``stop`` with ``("stats", ServerStats.as_dict())``
and exits. The child ignores SIGINT and SIGTERM: a terminal's Ctrl-C (or a group-wide SIGTERM)
reaches the whole process group, and a server that died with it would turn the parent's
graceful stop (clean closes) into a wave of 1006s and lose its statistics. The parent always
stops the child (``stop``, then a kill after a bounded wait), and a dead parent's pipe reads
EOF, which stops the child too.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import signal
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import trio

from wsload.errors import ToolError
from wsload.scenario.model import ServerConfig

if TYPE_CHECKING:
    from wsload.server.server import BuiltinServer

__all__ = ["KILL_WAIT", "ServerChild"]

KILL_WAIT = 2.0
"""Seconds a child that stopped serving gets to exit before it is killed, and then to be reaped."""

Command = Literal["storm", "stop"]

_GONE = object()
"""What ``ServerChild._receive`` returns when the pipe closed under it: the child exited."""


def _serve(
    config: ServerConfig,
    host: str,
    port: int,
    reuse_port: bool,
    seed: int | None,
    conn: multiprocessing.connection.Connection,
) -> None:  # pragma: no cover - runs in the child (covered through ServerChild)
    """Child process entry: serve until the parent says stop (or is gone), then report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from wsload.process import raise_nofile_limit, serving_heap
    from wsload.server.server import BuiltinServer

    reply: tuple[str, Any]
    try:
        raise_nofile_limit()
        server = BuiltinServer(config, seed=seed)
        serving_heap()
        trio.run(_serve_until_stopped, server, host, port, reuse_port, conn)
        reply = ("stats", server.stats.as_dict())
    except Exception as exc:  # cannot listen, or the server failed: the parent says why
        reply = ("error", _reason(exc))
    with contextlib.suppress(OSError):  # a parent that is gone needs no answer
        conn.send(reply)
    conn.close()


async def _serve_until_stopped(
    server: BuiltinServer,
    host: str,
    port: int,
    reuse_port: bool,
    conn: multiprocessing.connection.Connection,
) -> None:
    """Listen, say ready, then run the parent's commands until ``stop`` (or its EOF)."""
    async with trio.open_nursery() as nursery:
        serve = partial(server.serve, host, port, reuse_port=reuse_port)
        conn.send(("ready", *await nursery.start(serve)))
        while await trio.to_thread.run_sync(_command, conn, abandon_on_cancel=True) == "storm":
            nursery.start_soon(server.shutdown_storm)
        nursery.cancel_scope.cancel()


def _reason(exc: BaseException) -> str:
    """The error itself, not the nursery's group of one around it."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return str(exc)


def _command(conn: multiprocessing.connection.Connection) -> Any:
    try:
        return conn.recv()
    except EOFError:  # parent gone: stop serving
        return "stop"


class ServerChild:
    """One built-in server in a ``spawn``ed child process, driven through blocking calls.

    ``start`` then ``ready``; ``send`` commands; ``stats`` after ``send("stop")``; ``reap``
    always (it kills a child that did not exit). An async caller runs the waiting calls in a
    thread (``trio.to_thread.run_sync``).

    Args:
        config: the server's ``[server]`` table.
        host, port: where to listen; port 0 picks a free one.
        reuse_port: listen with SO_REUSEPORT, to share the port with other children.
        seed: the server's random seed (its close mix), None for fresh entropy.
        name: the child process's name (seen in ``ps`` and in error messages).
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        reuse_port: bool = False,
        seed: int | None = None,
        name: str = "wsload-server",
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._child_end = child
        self.process = ctx.Process(
            target=_serve,
            args=(config, host, port, reuse_port, seed, child),
            name=name,
            daemon=True,
        )

    def start(self) -> None:
        """Spawn the child (it starts listening on its own; ``ready`` waits for that)."""
        self.process.start()
        self._child_end.close()

    def ready(self, timeout: float) -> tuple[str, int]:
        """Wait for the child's readiness message; return the address it listens on.

        Raises:
            ToolError: the child could not listen, died, or said nothing within ``timeout``.
        """
        message = self._receive(timeout)
        if isinstance(message, tuple) and message[0] == "ready":
            return str(message[1]), int(message[2])
        if isinstance(message, tuple) and message[0] == "error":
            raise ToolError(f"the built-in server did not start: {message[1]}")
        if message is _GONE:
            self.process.join(KILL_WAIT)
            status = self.process.exitcode
            raise ToolError(f"the built-in server exited before it was ready (status {status})")
        raise ToolError(f"the built-in server did not start within {timeout:.0f} s")

    def send(self, command: Command) -> None:
        """Ask for a shutdown storm or a stop; a child already gone is not an error."""
        with contextlib.suppress(OSError):
            self._conn.send(command)

    def stats(self, timeout: float) -> dict[str, Any] | None:
        """After ``send("stop")``: the child's statistics, None if they did not come in time."""
        message = self._receive(timeout)
        if isinstance(message, tuple) and message[0] == "stats":
            return dict(message[1])
        return None

    @property
    def alive(self) -> bool:
        """Whether the child process still runs."""
        return self.process.is_alive()

    def reap(self, timeout: float = KILL_WAIT) -> None:
        """Close the pipe (a child still serving reads EOF and stops), wait up to ``timeout``
        for it to exit, and kill it if it has not."""
        self._conn.close()
        self._child_end.close()
        if self.process.pid is not None:
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(KILL_WAIT)

    def _receive(self, timeout: float) -> Any:
        """The child's next message within ``timeout``: None if none came, ``_GONE`` if the
        pipe closed (the child exited)."""
        try:
            return self._conn.recv() if self._conn.poll(timeout) else None
        except (EOFError, OSError):
            return _GONE
