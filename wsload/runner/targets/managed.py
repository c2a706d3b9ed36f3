"""``[target.process]``: the server under test as a child process that wsload owns.

wsload starts the command (argv, never a shell) in its own session, so a terminal's Ctrl-C
reaches wsload only and wsload decides how the server ends: the configured ``stop_signal``,
then SIGKILL to the whole process group after ``stop_timeout`` (a ``npm start`` wrapper's
children included). Whatever happens (the load ends, Ctrl-C, the target crashes, the start
fails), the process is stopped and reaped before ``open_managed`` returns.

The child's stdout and stderr go straight to ``server.log`` in the results directory: the file
is opened through ``wsload.report.files.open_log`` (user-only, like every result file) and the
child gets a duplicate of its descriptor, so the child's output is written by the kernel with no
copying task in wsload's event loop (a chatty server must not add to the generator's loop lag).
wsload's own lines (``[wsload] started pid ...``) go through the same file description, so the
two share one offset and never overwrite each other.

A SIGKILL of wsload itself (``kill -9``, the OOM killer) runs none of wsload's code, so the
server is started through ``_DIE_WITH_PARENT``: a one-line launcher that asks Linux to SIGKILL
it when wsload dies (``PR_SET_PDEATHSIG``, which survives the ``exec``) and then replaces itself
with the command (same pid, same session). ``subprocess``'s ``preexec_fn`` could set it too,
but is unsafe in a process with threads, and wsload has some.

Every instant here is ``trio.current_time()``: the run's one clock, so event times, exits and
the connections' records compare directly.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import trio

from wsload.errors import ToolError
from wsload.report import files
from wsload.scenario.model import ProcessConfig

__all__ = [
    "LOG_NAME",
    "ManagedProcess",
    "ProcessRun",
    "clients_on",
    "free_port",
    "open_managed",
]

LOG_NAME = "server.log"
_TAIL_LINES = 20
_READY_POLL = 0.05
_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PORT = 10_000
"""``port = 0`` picks from ``_LOWEST_PORT`` up to the ephemeral range (see ``free_port``)."""
_DIE_WITH_PARENT = (
    "import ctypes, os, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL\n"
    "except (OSError, AttributeError):\n"
    "    pass  # not Linux: the command runs without the guard\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(1)  # wsload died before the guard was set\n"
    "os.execv(sys.argv[2], sys.argv[3:])\n"
)
"""``python -I -c _DIE_WITH_PARENT WSLOAD_PID EXECUTABLE ARGV...``: the command, killed by the
kernel if wsload dies first (Linux; elsewhere the command runs unguarded)."""


_TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_ESTABLISHED = "01"


def clients_on(port: int, tables: tuple[Path, ...] = _TCP_TABLES) -> int | None:
    """Established TCP connections whose local port is ``port`` (a server's accepted clients,
    whoever's they are), from the kernel's tables; None where there are none to read
    (not Linux)."""
    found, count = False, 0
    for table in tables:
        try:
            lines = table.read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            fields = line.split()
            local = fields[1] if len(fields) > 3 and fields[3] == _ESTABLISHED else ":"
            count += local.rpartition(":")[2] == f"{port:04X}"
    return count if found else None


@dataclass(slots=True)
class ProcessRun:
    """One start of the command: its pid and, once it ended, when and how.

    Attributes:
        pid: the process id.
        started: when it was spawned (run clock).
        ready: when it was first ready: its port accepted a connection (and it printed its
            ``ready_line``); None: never.
        exited: when wsload saw it exit (None: still running).
        status: its exit status: the exit code, or minus the signal number that killed it.
    """

    pid: int
    started: float
    ready: float | None = None
    exited: float | None = None
    status: int | None = None


def _log_tail(path: Path, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` lines of ``path`` ("" when it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _lines_from(path: Path, offset: int) -> tuple[list[str], int]:
    """The server's complete lines in ``path`` from byte ``offset`` on (wsload's own
    ``[wsload]`` lines left out), and the offset after the last of them."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            data = log.read()
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1
    lines = data[:end].decode("utf-8", errors="replace").splitlines()
    return [line for line in lines if not line.startswith("[wsload] ")], offset + end


def free_port(host: str = "127.0.0.1", ranges: Path = _PORT_RANGE) -> int:
    """A port nothing listens on now, for ``port = 0``: below the kernel's ephemeral range.

    Why not the kernel's own pick (``bind(0)``, which comes from the ephemeral range): the
    server is restarted on the same port, and in the gap any outgoing connection may be given
    that port as its source, the reconnecting clients' own or the readiness probe's, which
    then connects to itself (TCP's simultaneous open) and reports a server that is not there;
    the restart then fails with the port in use. Below the range no connect() is given it.
    Falls back to the kernel's pick where the range leaves no room or cannot be read.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        low = int(ranges.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        low = _LOWEST_PORT
    for _ in range(64) if low - _LOWEST_PORT >= 1000 else ():
        port = random.randrange(_LOWEST_PORT, low)
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        picked: int = probe.getsockname()[1]
        return picked


class ManagedProcess:
    """The server process: started, watched, restarted, signalled and stopped.

    ``url`` is the target URL with ``{port}`` filled in; ``runs`` has one entry per start.
    """

    def __init__(self, config: ProcessConfig, url: str, log_path: Path) -> None:
        self.config = config
        host = urlsplit(url.replace("{port}", "1").replace("{seq}", "1")).hostname
        self.host = host or "127.0.0.1"
        self.port = config.port or free_port(self.host)
        self.url = url.replace("{port}", str(self.port))
        self.argv = tuple(arg.replace("{port}", str(self.port)) for arg in config.command)
        self.log_path = log_path
        self.runs: list[ProcessRun] = []
        self.restarts = 0
        self._log: TextIO | None = None
        self._process: trio.Process | None = None
        self._stopping = False
        self._signalled = False  # an event's signal went to the running process
        self.stop_sent: float | None = None  # when wsload's own stop began (run clock)

    def note(self, text: str) -> None:
        """A line of wsload's own in server.log (flushed: the child writes to the same file)."""
        if self._log is not None:
            self._log.write(f"[wsload] {text}\n")
            self._log.flush()

    async def start(self) -> None:
        """Spawn the command and wait until its port accepts a connection.

        Raises:
            ToolError: the command cannot be run, exits before it is ready, or its port does
                not accept connections within ``ready_timeout`` (the log's last lines say why).
        """
        if self._log is None:
            self._log = files.open_log(self.log_path)
        env = {**os.environ, **dict(self.config.env)}
        executable = shutil.which(self.argv[0], path=env.get("PATH"))
        if executable is None:
            raise ToolError(
                f"target.process: cannot run {self.argv[0]!r}: not found or not executable"
                + ("" if os.sep in self.argv[0] else " on PATH")
            )
        guarded = [sys.executable, "-I", "-c", _DIE_WITH_PARENT, str(os.getpid()), executable]
        self._log.flush()
        output_from = os.lseek(self._log.fileno(), 0, os.SEEK_CUR)  # this start's first line
        try:
            process = await trio.lowlevel.open_process(
                [*guarded, *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=self._log.fileno(),
                stderr=self._log.fileno(),
                env=env,
                start_new_session=True,  # its own group: no terminal Ctrl-C, killpg at the end
            )
        except OSError as exc:
            raise ToolError(
                f"target.process: cannot run {self.argv[0]!r}: {exc.strerror or exc}"
            ) from None
        self._process, self._signalled = process, False
        run = ProcessRun(pid=process.pid, started=trio.current_time())
        self.runs.append(run)
        self.note(f"started pid {process.pid}: {' '.join(self.argv)}")
        failure = await self._wait_ready(process, run, output_from)
        if failure is not None:
            await self.stop()
            tail = _log_tail(self.log_path)
            raise ToolError(
                f"target.process: {failure}"
                + (f"; last lines of {self.log_path}:\n{tail}" if tail else "")
            )

    async def _wait_ready(self, process: trio.Process, run: ProcessRun, offset: int) -> str | None:
        """None once the port accepts a connection and (with ``ready_line``) the server has
        printed a matching line since ``offset`` of server.log; else why not."""
        config = self.config
        pattern = None if config.ready_line is None else re.compile(config.ready_line)
        accepting, printed = False, pattern is None
        with trio.move_on_after(config.ready_timeout):
            while process.poll() is None:
                if not accepting:
                    try:
                        stream = await trio.open_tcp_stream(self.host, self.port)
                    except OSError:
                        pass
                    else:
                        await stream.aclose()
                        accepting = True
                if pattern is not None and not printed:
                    lines, offset = _lines_from(self.log_path, offset)
                    printed = any(pattern.search(line) for line in lines)
                if accepting and printed:
                    run.ready = trio.current_time()
                    self.note(
                        f"pid {process.pid} accepts connections on {self.host}:{self.port}"
                        + ("" if pattern is None else " and printed its ready_line")
                    )
                    return None
                await trio.sleep(_READY_POLL)
            self._reaped(run, process.returncode)
            return f"{self.argv[0]!r} exited with status {process.returncode} before it was ready"
        if accepting:
            return (
                f"{self.argv[0]!r} accepts connections on {self.host}:{self.port} but printed "
                f"no line matching ready_line {config.ready_line!r} within ready_timeout "
                f"({config.ready_timeout:g} s)"
            )
        return (
            f"{self.argv[0]!r} did not accept connections on {self.host}:{self.port} "
            f"within ready_timeout ({config.ready_timeout:g} s)"
        )

    async def _wait_exit(self, process: trio.Process, run: ProcessRun) -> None:
        """Until ``process`` exits; its run gets the exit's instant and status.

        The instant comes from a thread blocked in ``waitid(WNOWAIT)``, which wakes when the
        process becomes a zombie, not from the task that reaps it: that task may run after a
        whole batch of connection tasks woken by the same exit (the kernel closed the
        process's sockets first), which would make the exit look later than their EOFs.
        """
        instant = await _exit_instant(process.pid)
        await process.wait()
        self._reaped(run, process.returncode, instant)

    def _reaped(self, run: ProcessRun, status: int | None, instant: float | None = None) -> None:
        if run.exited is None:
            run.exited = instant if instant is not None else trio.current_time()
            run.status = status
            self.note(f"pid {run.pid} exited with status {status}")
            _kill_group(run.pid)  # what it left behind in its group goes with it

    async def supervise(self) -> None:
        """Record each exit; start the command again while ``restart`` allows (a deploy).

        A restart that fails to come up is logged and ends the supervision: the load goes on
        against a dead target, and its connections say so in their outcomes.
        """
        while self._process is not None and not self._stopping:
            process, run = self._process, self.runs[-1]
            await self._wait_exit(process, run)
            config = self.config
            if self._stopping or not config.restart or self.restarts >= config.max_restarts:
                return
            self.restarts += 1
            try:
                await self.start()
            except ToolError as exc:
                self.note(f"restart {self.restarts} failed: {exc}")
                return

    def send(self, signame: str) -> int | None:
        """Send ``signame`` to the running process now; its pid (None: it is not running)."""
        process = self._process
        if process is None or process.returncode is not None:
            return None
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.Signals[signame])
        self.note(f"sent {signame} to pid {process.pid}")
        self._signalled = True
        return process.pid

    async def stop(self) -> None:
        """``stop_signal``, then SIGKILL to the group after ``stop_timeout``; always reaped.

        A process an event already signalled first gets ``stop_timeout`` to exit by itself:
        its exit time and status are part of that event's audit, not wsload's doing.
        """
        self._stopping = True
        process = self._process
        if process is None:
            return
        run = self.runs[-1]
        with trio.CancelScope(shield=True):
            if process.returncode is None and self._signalled:
                with trio.move_on_after(self.config.stop_timeout):
                    await self._wait_exit(process, run)
            if process.returncode is None:
                self.stop_sent = trio.current_time()
                self.send(self.config.stop_signal)
                with trio.move_on_after(self.config.stop_timeout):
                    await process.wait()
                if process.returncode is None:
                    self.note(f"pid {process.pid} still running after stop_timeout: SIGKILL")
                    _kill_group(process.pid)
                    await process.wait()
            self._reaped(run, process.returncode)

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


async def _exit_instant(pid: int) -> float | None:
    """The run-clock instant ``pid`` exited (None: it was reaped elsewhere first).

    The thread reads ``time.perf_counter``, the monotonic clock Trio's own clock is an offset
    of; the offset is taken here, in the Trio thread.
    """
    offset = trio.current_time() - time.perf_counter()

    def wait() -> float | None:
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            return None
        return time.perf_counter()

    moment = await trio.to_thread.run_sync(wait, abandon_on_cancel=True)
    return None if moment is None else moment + offset


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def open_managed(
    config: ProcessConfig, url: str, out_dir: Path
) -> AsyncIterator[ManagedProcess]:
    """Start the server; stop and reap it however the body ends.

    No task is started here (so no nursery wraps the body's exceptions in a group): the caller
    runs ``supervise`` while the load runs.

    Raises:
        ToolError: the server could not start (exit 3; the message has the log's last lines).
    """
    managed = ManagedProcess(config, url, out_dir / LOG_NAME)
    try:
        await managed.start()
        yield managed
    finally:
        await managed.stop()
        managed.close_log()
