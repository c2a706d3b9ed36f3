"""One run's waits for readable client sockets: an epoll of its own and one deadline heap.

Why not ``trio.lowlevel.wait_readable`` inside a cancel scope, as other waits do: a client
connection waits three or four times per clean-close cycle (the 101, the echo, the server's
Close, sometimes its FIN apart), and each such wait costs Trio two ``epoll_ctl`` calls (it arms
the descriptor with ``EPOLLONESHOT`` for the wait and disarms it after) and a cancel scope for
the deadline (≈ 7 µs to enter and leave, with its deadline bookkeeping). Here a socket is added
once, edge-triggered, to an epoll of the run's own; a waiting task parks in
``wait_task_rescheduled`` with its deadline in one heap; and one system task waits for that
epoll (in Trio's, like any descriptor) inside one cancel scope whose deadline follows the
nearest parked one, and reschedules every task whose socket became readable, or whose deadline
passed, in one pass. A park is still a checkpoint (an outer cancellation aborts it), and a
deadline still fires on the run's clock: an autojump ``MockClock`` jumps to the loop scope's
deadline exactly as it would to the task's own.

Edge-triggered means the kernel reports new bytes (or the FIN, or an error) once:
:attr:`Waitable.ready` keeps that report for a socket whose task is not parked, so a task never
parks on bytes it was told about; a report for bytes a read already took costs one read that
finds nothing.
"""

from __future__ import annotations

import heapq
import math
import select
from collections.abc import Callable

import trio

__all__ = ["BATCH", "Poller", "Waitable"]

_EVENTS = select.EPOLLIN | select.EPOLLET
"""Readable (bytes, the FIN; errors are always reported), once per change."""
_COMPACT = 1024
"""Stale heap entries tolerated beyond twice the live ones before the heap is rebuilt."""
BATCH = 32
"""Readable sockets taken per dispatch (``epoll_wait``'s ``maxevents``; Python's default is
1,023). The tasks one dispatch wakes run in one Trio batch, before the loop looks at its timers
again: after a storm's release a worker's replies arrive by the thousand, and a dispatch of
1,023 of them held the loop ≈ 100 ms (the lag monitor's tick with it). The sockets not taken stay
in the kernel's ready list, so the epoll is still readable and the next pass takes them, one
Trio batch later (≈ 10 µs of bookkeeping per pass)."""


class Waitable:
    """A socket's parking state (the base of :class:`~wsload.engine.rawstream.RawIO`).

    Attributes:
        fd: the socket's descriptor (-1: closed by another task, never read again).
        ready: the poller reported the socket readable since its last read began.
        registered: the descriptor is in the poller's epoll.
        task: the task parked on it (None: not parked).
        serial: the heap entry of the park's deadline (0: none).
        woke: what the last park ended with (True: readable; False: deadline or wake-up).
    """

    __slots__ = ("fd", "ready", "registered", "serial", "task", "woke")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.ready = False
        self.registered = False
        self.task: trio.lowlevel.Task | None = None
        self.serial = 0
        self.woke = False


class Poller:
    """Parks client tasks until their socket is readable, their deadline passes, or a wake.

    One per Trio run (``DriverContext.bind_clock``); its loop is a system task started at the
    first park, which ends with the run (the epoll is closed then).
    """

    __slots__ = (
        "_deadline",
        "_epoll",
        "_heap",
        "_live",
        "_now",
        "_scope",
        "_serial",
        "_waitables",
    )

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._epoll: select.epoll | None = None  # opened at the first park, closed with the run
        # fd -> its socket's state; a closed socket's entry stays until the number is reused
        self._waitables: dict[int, Waitable] = {}
        self._heap: list[tuple[float, int, Waitable]] = []  # (deadline, serial, w), pruned lazily
        self._live = 0  # parks with a finite deadline (their heap entries are current)
        self._serial = 0
        self._scope: trio.CancelScope | None = None
        self._deadline = math.inf  # the loop scope's deadline

    async def park(self, w: Waitable, deadline: float) -> bool:
        """Wait until ``w``'s socket may be readable (True), or ``deadline`` passes or
        :meth:`wake` is called (False). A checkpoint: an outer cancellation aborts it."""
        if not w.registered:
            epoll = self._epoll
            if epoll is None:
                self._epoll = epoll = select.epoll()
                trio.lowlevel.spawn_system_task(self._run, epoll, name="wsload.engine.poller")
            epoll.register(w.fd, _EVENTS)
            self._waitables[w.fd] = w
            w.registered = True
        if deadline < math.inf:
            self._serial += 1
            w.serial = serial = self._serial
            heapq.heappush(self._heap, (deadline, serial, w))
            self._live += 1
            if deadline < self._deadline:
                self._deadline = deadline
                if self._scope is not None:
                    self._scope.deadline = deadline
        w.task = trio.lowlevel.current_task()
        w.woke = False

        def abort(_: object) -> trio.lowlevel.Abort:
            self._unpark(w)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        return w.woke

    def _unpark(self, w: Waitable) -> None:
        w.task = None
        if w.serial:
            w.serial = 0
            self._live -= 1

    def wake(self, w: Waitable, readable: bool = False) -> None:
        """Reschedule ``w``'s parked task, if any: its park returns ``readable``."""
        task = w.task
        if task is not None:
            self._unpark(w)
            w.woke = readable
            trio.lowlevel.reschedule(task)

    async def _run(self, epoll: select.epoll) -> None:
        fd = epoll.fileno()
        try:
            while True:
                with trio.CancelScope(deadline=self._deadline) as scope:
                    self._scope = scope
                    while True:
                        await trio.lowlevel.wait_readable(fd)
                        self._dispatch(epoll)
                        if self._heap:
                            self._expire()
                            if scope.deadline != self._deadline:  # a move costs Trio ≈ 3 µs
                                scope.deadline = self._deadline
                self._scope = None
                self._expire()
        finally:
            self._scope = None
            epoll.close()

    def _dispatch(self, epoll: select.epoll) -> None:
        """Mark the reported sockets (at most :data:`BATCH`) readable and wake their parked
        tasks."""
        waitables = self._waitables
        for fd, _ in epoll.poll(0, BATCH):
            w = waitables.get(fd)
            if w is not None:
                w.ready = True
                if w.task is not None:
                    self.wake(w, True)

    def _expire(self) -> None:
        """Wake the parks whose deadline passed, drop stale entries, set the next deadline."""
        heap = self._heap
        if len(heap) > 2 * self._live + _COMPACT:
            heap[:] = [entry for entry in heap if entry[2].serial == entry[1]]
            heapq.heapify(heap)
        now = self._now()
        while heap:
            deadline, serial, w = heap[0]
            if w.serial != serial:  # woken, aborted, or parked again since
                heapq.heappop(heap)
            elif deadline <= now:
                heapq.heappop(heap)
                self.wake(w)
            else:
                self._deadline = deadline
                return
        self._deadline = math.inf
