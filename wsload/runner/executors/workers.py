"""``wsload run --workers N``: N generator processes on this machine, one segment each.

One Trio loop uses one core and one process holds at most RLIMIT_NOFILE sockets, so the load is
split into N segments (``wsload.plan.segment``) run by N ``spawn``ed processes, as the
built-in target is (``wsload.server.child``: a ``multiprocessing`` pipe per child). The protocol on
each pipe, worker → parent: ``("ready",)``, then ``("interval", wire)`` each second,
``("progress", dict)`` four times a second, ``("open",)`` (a storm's share is open) and finally
``("done", SegmentResult wire)`` or ``("error", text)``; parent → worker: ``("start", epoch)``,
``("event", index, offset)`` (a deploy's event was sent ``offset`` seconds after the start, None:
not sent), ``("release", epoch)`` (every share of the storm is open or ended: release at
``epoch``, ``RELEASE_LEAD`` ahead, and count from then; ``wsload.runner.load.gate``), ``"stop"``
(graceful), ``"hard"``.

A deploy (``[target.process]`` events, ``[reconnect]``) stays the parent's: it starts the
server, fires the events and restarts it (``targets/deploy.py``); each worker audits its own
connections against the announced instants (``wsload.metrics.audits``) and its result carries
the tallies, which the merge adds. Before it reports, a worker waits (at most
``_ANNOUNCE_WAIT``) for the announcement of an event already due, still in the pipe.

Workers ignore SIGINT and SIGTERM (a terminal's Ctrl-C, or a group-wide SIGTERM, reaches the
whole process group): the parent decides, and forwards its graceful or hard stop, so an
interrupted run still gathers every worker's result. The dispositions are ignored from the very
first instruction of the child (``_signals_ignored`` around ``Process.start``: ``SIG_IGN`` is
inherited through fork and exec), not only once ``_worker`` runs, so a Ctrl-C while a worker
imports is no KeyboardInterrupt traceback and no dead worker. A stop that reaches a worker
before its start ends it at once with an (empty) interrupted result, as the in-process run does.
A worker that dies is reported; the others' results are kept and the summary's
``generator.segment`` names the shares it holds.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import trio

from wsload.metrics.audits import SegmentAudit
from wsload.metrics.result import SegmentResult, latest_shift
from wsload.metrics.snapshots import IntervalSnapshot, snapshot_from_wire, snapshot_to_wire
from wsload.plan.schedule import planned_end
from wsload.plan.segment import Segment
from wsload.process import raise_nofile_limit
from wsload.runner.executors.executor import LoadFeed, SplitResults, error_text, progress_to_wire
from wsload.runner.executors.segment_run import run_segment
from wsload.runner.load.gate import ReleaseGate
from wsload.runner.load.loop import Progress
from wsload.scenario.model import Scenario

__all__ = ["RELEASE_LEAD", "START_MARGIN", "Workers"]

START_MARGIN = 0.2
"""Seconds between "start" being sent and the common start (covers the pipe and a wake-up)."""

RELEASE_LEAD = 0.05
"""A storm's release instant is this far ahead of the parent's word to its workers: each has
it before the instant, whatever the order the parent writes in. Released at the word itself,
a worker written to late (the parent itself waiting for a core behind the workers already
released, whose passes run at a raised priority) released 106 ms after the first, with
100,000 connections on two cores, and its pass ended last."""
_READY_TIMEOUT = 60.0
_KILL_AFTER = 10.0
_PROGRESS_PERIOD = 0.25
_ANNOUNCE_WAIT = 2.0
_ANNOUNCE_POLL = 0.01
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

Conn = multiprocessing.connection.Connection


def _worker(
    scenario: Scenario, url: str, index: int, count: int, conn: Conn
) -> None:  # pragma: no cover - runs in the child process (covered through Workers.run)
    """Worker process entry: run segment ``index`` of ``count``, stream intervals and progress,
    send the result. The segment is built here, not pickled: mypyc compiles ``Segment``, and a
    compiled frozen dataclass does not unpickle (its fields cannot be set after creation)."""
    segment = Segment(index, count)
    for sig in _STOP_SIGNALS:  # inherited already (_signals_ignored); kept for any other start
        signal.signal(sig, signal.SIG_IGN)
    raise_nofile_limit()
    try:
        trio.run(_worker_main, scenario, url, segment, conn)
    except Exception as exc:  # report, never a silent death
        conn.send(("error", error_text(exc)))
    finally:
        conn.close()


async def _worker_main(scenario: Scenario, url: str, segment: Segment, conn: Conn) -> None:
    """Wait for the common start, then run the segment; a stop before the start still runs it
    (stopped at once: an interrupted, empty result), so the parent gets a "done" and writes the
    run as a stopped one (exit 130) instead of "every worker failed"."""
    stop, hard_stop = trio.Event(), trio.Event()
    progress = Progress()
    audit = SegmentAudit.of(scenario)
    conn.send(("ready",))
    start_at: float | None = None
    while start_at is None and not stop.is_set():
        await trio.lowlevel.wait_readable(conn.fileno())
        message = _recv(conn)
        if message is None:  # the parent is gone: nobody to report to
            return
        if isinstance(message, tuple) and message[0] == "start":
            start_at = float(message[1])
            if audit is not None:  # the common start on this process's clock
                audit.start(trio.current_time() + (start_at - time.time()))
        elif message in ("stop", "hard"):
            stop.set()
            if message == "hard":
                hard_stop.set()

    def on_interval(snapshot: IntervalSnapshot) -> None:
        conn.send(("interval", snapshot_to_wire(snapshot, progress.started)))

    gate = ReleaseGate(lambda: conn.send(("open",)))

    async def commands() -> None:
        while True:
            await trio.lowlevel.wait_readable(conn.fileno())
            message = _recv(conn)
            if isinstance(message, tuple) and message[0] == "event":
                if audit is not None:
                    audit.announce(int(message[1]), message[2])
                continue
            if isinstance(message, tuple) and message[0] == "release":
                gate.release(trio.current_time() + (float(message[1]) - time.time()))
                continue
            if message == "hard":
                hard_stop.set()
            stop.set()  # "stop", or the parent is gone
            gate.release(None)
            if message is None:
                hard_stop.set()
                return

    async def report_progress() -> None:
        while True:
            await trio.sleep(_PROGRESS_PERIOD)
            conn.send(("progress", progress_to_wire(progress)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(commands)
        nursery.start_soon(report_progress)
        part = await run_segment(
            scenario,
            url,
            segment=segment,
            start_at=start_at,
            progress=progress,
            on_interval=on_interval,
            stop=stop,
            hard_stop=hard_stop,
            on_record=None if audit is None else audit.on_record,
            release_gate=gate,
        )
        if audit is not None:
            with trio.move_on_after(_ANNOUNCE_WAIT):
                while audit.waiting(trio.current_time()):
                    await trio.sleep(_ANNOUNCE_POLL)
            audit.attach(part)
        nursery.cancel_scope.cancel()
    conn.send(("progress", progress_to_wire(progress)))
    conn.send(("done", part.to_wire()))


def _recv(conn: Conn) -> Any:
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


@dataclass(slots=True)
class _Worker:
    index: int
    segment: Segment
    process: multiprocessing.process.BaseProcess
    conn: Conn
    ready: trio.Event = field(default_factory=trio.Event)
    ended: trio.Event = field(default_factory=trio.Event)
    opened: bool = False  # its share of a storm is open (it said "open")
    result: SegmentResult | None = None
    error: str | None = None

    def send(self, message: Any) -> None:
        if not self.ended.is_set():
            with contextlib.suppress(OSError):
                self.conn.send(message)


class _Parent:
    """Reads every worker's pipe, sums progress, hands intervals and results on, forwards
    stops."""

    def __init__(self, workers: list[_Worker], split: SplitResults) -> None:
        self.workers = workers
        self.split = split
        self.released = False

    async def read(self, worker: _Worker) -> None:
        try:
            while True:
                await trio.lowlevel.wait_readable(worker.conn.fileno())
                message = _recv(worker.conn)
                if message is None:
                    break
                try:
                    if self._dispatch(worker, message):
                        break
                except (ValueError, TypeError, IndexError) as exc:
                    worker.error = f"sent a malformed message: {exc}"
                    break
        finally:
            worker.ended.set()
            worker.ready.set()  # never leave the start barrier waiting for a dead worker
            self.split.ended(worker.index)
            self._release_when_open()  # nor the storm's release waiting for it

    def _dispatch(self, worker: _Worker, message: Any) -> bool:
        """Handle one message; True when it was the worker's last."""
        kind = message[0]
        payload: Any = message[1] if len(message) > 1 else None
        if kind == "ready":
            worker.ready.set()
        elif kind == "open":
            worker.opened = True
            self._release_when_open()
        elif kind == "interval":
            self.split.interval(worker.index, str(worker.segment), snapshot_from_wire(payload))
        elif kind == "progress":
            self.split.progress(worker.index, payload)
        elif kind == "done":
            worker.result = SegmentResult.from_wire(payload)
            self.split.result(worker.result)
            return True
        elif kind == "error":
            worker.error = str(payload)
            return True
        return False

    def _release_when_open(self) -> None:
        """Release a storm once every worker's share is open (or the worker ended): all at
        one wall-clock instant, which each worker counts ``close_start_lag`` from."""
        workers = self.workers
        if self.released or not any(w.opened for w in workers):
            return
        if all(w.opened or w.ended.is_set() for w in workers):
            self.released = True
            at = time.time() + RELEASE_LEAD
            for worker in workers:
                worker.send(("release", at))

    def announce(self, index: int, offset: float | None) -> None:
        """A deploy's event was sent: every worker audits its connections against it."""
        for worker in self.workers:
            worker.send(("event", index, offset))

    async def forward_stops(self, stop: trio.Event, hard_stop: trio.Event) -> None:
        await stop.wait()
        for worker in self.workers:
            worker.send("stop")
        await hard_stop.wait()
        for worker in self.workers:
            worker.send("hard")


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored while a child is forked, restored after.

    ``SIG_IGN`` survives fork and exec, and Python keeps an inherited ignored SIGINT, so the
    child ignores both from its first instruction: a Ctrl-C while it imports wsload cannot kill
    it with a KeyboardInterrupt. (A blocked signal mask would lose no parent signal, but it does
    not survive the ``spawn`` start into the child.) A signal the parent gets inside this
    window of a few milliseconds is lost; the user's next Ctrl-C works. ``signal.signal`` only
    works in the main thread: elsewhere (an embedding program) the child relies on ``_worker``.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _spawn(scenario: Scenario, url: str, index: int, count: int) -> _Worker:
    """Start worker ``index``; in the main thread (see ``_signals_ignored``), without a
    checkpoint, so no signal handler of the Trio run changes meanwhile."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    segment = Segment(index, count)
    process = ctx.Process(
        target=_worker,
        args=(scenario, url, index, count, child),
        name=f"wsload-worker-{index}",
        daemon=True,
    )
    with _signals_ignored():
        process.start()
    child.close()
    return _Worker(index, segment, process, parent)


async def _reap(worker: _Worker) -> None:
    """Join the process (bounded), kill it if it will not go, close the pipe."""
    process = worker.process
    await trio.to_thread.run_sync(process.join, _KILL_AFTER)
    if process.is_alive():
        process.kill()
        await trio.to_thread.run_sync(process.join, 2.0)
    if worker.result is None and worker.error is None:
        worker.error = f"exited with code {process.exitcode} before sending its result"
    worker.conn.close()


@dataclass(frozen=True, slots=True)
class Workers:
    """The load as ``count`` segments in ``count`` spawned worker processes, merged.

    ``feed.on_interval`` gets the merged intervals; ``feed.segment_logs`` keeps each worker's
    own intervals and result (``<out>/segments/<i>of<N>/``, mergeable with ``wsload merge``).

    Attributes:
        start_at: the common start (wall-clock epoch); never earlier than the moment every
            worker is ready plus ``START_MARGIN``.
    """

    count: int
    start_at: float | None = None

    @property
    def processes(self) -> int:
        return self.count

    async def run(self, scenario: Scenario, url: str, feed: LoadFeed) -> SegmentResult:
        """Spawn the workers, run them from one start, reap them, merge their results.

        Raises:
            ToolError: no worker produced a result.
        """
        split = SplitResults(
            self.count,
            feed,
            warning="worker {segment}: {error}",
            none_left="every worker failed: no result to write",
        )
        workers: list[_Worker] = []
        try:
            for index in range(self.count):
                workers.append(_spawn(scenario, url, index, self.count))
                await trio.lowlevel.checkpoint()  # let the signal task run between starts
            shift = await self._gather(scenario, workers, feed, _Parent(workers, split))
        finally:
            with trio.CancelScope(shield=True):
                for worker in workers:
                    await _reap(worker)
        for worker in workers:
            if worker.error is not None:
                split.failed(str(worker.segment), worker.error)
        result = split.finish(scenario)
        result.start_shift_s = latest_shift((shift, result.start_shift_s))
        return result

    async def _gather(
        self, scenario: Scenario, workers: list[_Worker], feed: LoadFeed, parent: _Parent
    ) -> float | None:
        """Wait until every worker is ready, start them together, read them to their end.

        Returns:
            How much later than ``start_at`` the common start is (None without it): the
            workers were ready too late for it, or less than ``START_MARGIN`` before it.
        """
        progress = feed.progress
        feed.on_event = parent.announce
        async with trio.open_nursery() as nursery:
            for worker in workers:
                nursery.start_soon(parent.read, worker)
            nursery.start_soon(parent.forward_stops, feed.stop, feed.hard_stop)
            with trio.move_on_after(_READY_TIMEOUT):
                for worker in workers:
                    await worker.ready.wait()
            now = time.time()
            start_at = max(self.start_at or 0.0, now + START_MARGIN)
            progress.started = trio.current_time() + (start_at - now)
            progress.planned_s = planned_end(scenario.load)
            for worker in workers:
                worker.send(("start", start_at))
            for worker in workers:
                await worker.ended.wait()
            nursery.cancel_scope.cancel()
        return None if self.start_at is None else start_at - self.start_at
