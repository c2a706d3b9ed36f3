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

**Fibers.** A connection's coroutine may also run without a Trio task of its own: the runner
hands it to :meth:`Poller.start`, which steps it (``coro.send``) right away, and each park then
yields to whoever stepped it instead of to Trio; when its socket is reported readable (or its
deadline passes, or it is woken) the poller's loop steps it again, in the same pass that found
it, with no Trio task switch, no ``outcome`` object and no reschedule (≈ 3.5 Trio task steps
per clean-close cycle, each through an interpreted wrapper of the compiled coroutine). The
same code runs either way: only the park differs. A fiber that needs one of Trio's own waits
(a connect still in progress, a socket buffer full, a yield for fairness) calls
:meth:`Poller.promote` first and goes on in a Trio task of its own
(:func:`wsload.engine.traps.adopt`) in the nursery given to :meth:`Poller.drive_in`, until its
next park in the poller hands it back; that nursery's hub task takes the fibers with it when
the nursery is cancelled: each gets the same ``Cancelled`` thrown in, as a task would at its
park.
"""

from __future__ import annotations

import heapq
import math
import select
from collections.abc import Callable, Coroutine
from typing import Any

import trio

from wsload.engine.traps import adopt, suspend

__all__ = ["BATCH", "Fiber", "Poller", "Waitable"]

_EVENTS = select.EPOLLIN | select.EPOLLET
"""Readable (bytes, the FIN; errors are always reported), once per change."""
_COMPACT = 1024
"""Stale heap entries tolerated beyond twice the live ones before the heap is rebuilt."""
BATCH = 32
"""Readable sockets taken per dispatch (``epoll_wait``'s ``maxevents``; Python's default is
1,023). The tasks and fibers one dispatch wakes run before the loop looks at its timers
again: after a storm's release a worker's replies arrive by the thousand, and a dispatch of
1,023 of them held the loop ≈ 100 ms (the lag monitor's tick with it). The sockets not taken stay
in the kernel's ready list, so the epoll is still readable and the next pass takes them, one
Trio batch later (≈ 10 µs of bookkeeping per pass)."""
_PARKED = "parked"
"""What a fiber's park yields to the poller."""
_PROMOTE = "promote"
"""What a fiber yields to be moved into a Trio task of its own."""
_SPINS = 4
"""Polls of the epoll again, right after a pass that stepped fibers, while each finds sockets:
replies that arrived meanwhile are taken without a round through Trio's scheduler (an empty
poll costs one ``epoll_wait``); bounded so that Trio's other tasks still run."""
_SPIN_BUDGET = 0.001
"""Seconds of a pass after which it polls no more: about one Trio batch of 20 connections, so
that Trio's timers (the lag monitor's among them) are not held back longer than by tasks."""
_DEMOTE = "demote"
"""What a promoted fiber's next park yields to end its task: it is a fiber again."""


class Fiber:
    """A coroutine stepped by the poller instead of a Trio task (see the module's docstring).

    Attributes:
        coro: the coroutine (the runner's connection, or its closed-loop slot).
        done: it returned, raised, or left for a Trio task: never stepped again.
    """

    __slots__ = ("coro", "done")

    def __init__(self, coro: Coroutine[Any, Any, None]) -> None:
        self.coro = coro
        self.done = False


class Waitable:
    """A socket's parking state (the base of :class:`~wsload.engine.rawstream.RawIO`).

    Attributes:
        fd: the socket's descriptor (-1: closed by another task, never read again).
        ready: the poller reported the socket readable since its last read began.
        registered: the descriptor is in the poller's epoll.
        task: the task parked on it (None: not parked by a task).
        fiber: the fiber parked on it (None: not parked by a fiber).
        serial: the heap entry of the park's deadline (0: none).
        woke: what the last park ended with (True: readable; False: deadline or wake-up).
    """

    __slots__ = ("fd", "fiber", "ready", "registered", "serial", "task", "woke")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.ready = False
        self.registered = False
        self.task: trio.lowlevel.Task | None = None
        self.fiber: Fiber | None = None
        self.serial = 0
        self.woke = False


class Poller:
    """Parks client tasks and fibers until their socket is readable, their deadline passes,
    or a wake; steps the fibers.

    One per Trio run (``DriverContext.bind_clock``); its loop is a system task started at the
    first park, which ends with the run (the epoll is closed then).

    Attributes:
        stepping: the fiber being stepped right now (None: the code running is a task's).
    """

    __slots__ = (
        "_carried",
        "_deadline",
        "_epoll",
        "_error",
        "_failed",
        "_fibers",
        "_heap",
        "_live",
        "_now",
        "_nursery",
        "_passing",
        "_runnable",
        "_scope",
        "_serial",
        "_waitables",
        "stepping",
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
        self.stepping: Fiber | None = None
        self._fibers: set[Fiber] = set()  # started and not done
        self._runnable: list[Fiber] = []  # woken, to be stepped by the loop's pass
        self._passing = False  # the loop is in its pass: it steps what is woken before waiting
        self._nursery: trio.Nursery | None = None  # where promoted fibers become tasks
        self._failed: trio.Event | None = None  # set with _error: a fiber raised
        self._error: BaseException | None = None
        self._carried: dict[trio.lowlevel.Task, Fiber] = {}  # promoted fibers' tasks

    async def park(self, w: Waitable, deadline: float) -> bool:
        """Wait until ``w``'s socket may be readable (True), or ``deadline`` passes or
        :meth:`wake` is called (False). A checkpoint: an outer cancellation aborts it (a
        fiber's: the ``Cancelled`` its hub throws in)."""
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
                if self._scope is not None and not self._passing:
                    self._scope.deadline = deadline
        w.woke = False
        fiber = self.stepping
        if fiber is not None:
            w.fiber = fiber
            try:
                await suspend(_PARKED)
            except BaseException:
                self._unpark(w)
                raise
            return w.woke
        task = trio.lowlevel.current_task()
        if self._carried:
            fiber = self._carried.pop(task, None)
            if fiber is not None and self._failed is not None:  # hand it back: a fiber again
                fiber.done = False
                self._fibers.add(fiber)
                w.fiber = fiber
                try:
                    await suspend(_DEMOTE)
                except BaseException:
                    self._unpark(w)
                    raise
                return w.woke
        w.task = task

        def abort(_: object) -> trio.lowlevel.Abort:
            self._unpark(w)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        return w.woke

    def _unpark(self, w: Waitable) -> None:
        w.task = None
        w.fiber = None
        if w.serial:
            w.serial = 0
            self._live -= 1

    def wake(self, w: Waitable, readable: bool = False) -> None:
        """Reschedule ``w``'s parked task or fiber, if any: its park returns ``readable``."""
        task, fiber = w.task, w.fiber
        if task is not None:
            self._unpark(w)
            w.woke = readable
            trio.lowlevel.reschedule(task)
        elif fiber is not None:
            self._unpark(w)
            w.woke = readable
            runnable = self._runnable
            runnable.append(fiber)
            if len(runnable) == 1 and not self._passing and self._scope is not None:
                self._scope.cancel()  # another task woke it: the loop steps it in a new pass

    def drive_in(self, nursery: trio.Nursery) -> None:
        """Host fibers in ``nursery`` (the runner's connections'): a promoted fiber becomes a
        task there, and a hub task there throws its cancellation into every fiber (or raises
        the error a fiber raised, ending the run as a task's error would)."""
        self._nursery = nursery
        self._failed = trio.Event()
        nursery.start_soon(self._hub, name="wsload.engine.poller.hub")

    def start(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a fiber: stepped now, up to its first park (after
        :meth:`drive_in`); as a task of the nursery once the hub is gone."""
        nursery = self._nursery
        assert nursery is not None, "drive_in first"
        if self._failed is None:  # the hub was cancelled: the nursery cancels a new task too
            nursery.start_soon(adopt, coro)
            return
        fiber = Fiber(coro)
        self._fibers.add(fiber)
        self._step(fiber)

    async def promote(self) -> None:
        """Before one of Trio's own waits: a fiber moves into a Trio task of its own here and
        goes on there (a task's code: nothing happens)."""
        if self.stepping is not None:
            await suspend(_PROMOTE)

    def _step(self, fiber: Fiber, error: BaseException | None = None) -> None:
        """Run ``fiber`` up to its next park (``error``: thrown in instead)."""
        if fiber.done:
            return
        outer = self.stepping
        self.stepping = fiber
        try:
            yielded = fiber.coro.send(None) if error is None else fiber.coro.throw(error)
        except StopIteration:
            self.stepping = outer
            self._end(fiber)
            return
        except BaseException as exc:
            self.stepping = outer
            self._end(fiber)
            if exc is not error:
                self._fail(exc)
            return
        self.stepping = outer
        if yielded is _PARKED:
            return
        self._end(fiber)
        if yielded is _PROMOTE and self._nursery is not None:
            self._nursery.start_soon(self._carry, fiber)
            return
        self._fail(RuntimeError(f"wsload: a fiber yielded {yielded!r} instead of parking"))

    async def _carry(self, fiber: Fiber) -> None:
        """A promoted fiber's task: until its next park in the poller (or its end)."""
        task = trio.lowlevel.current_task()
        self._carried[task] = fiber
        try:
            await adopt(fiber.coro, _DEMOTE)
        finally:
            self._carried.pop(task, None)

    def _end(self, fiber: Fiber) -> None:
        fiber.done = True
        self._fibers.discard(fiber)

    def _fail(self, exc: BaseException) -> None:
        """A fiber raised: its hub raises it in the connections' nursery."""
        if self._error is None:
            self._error = exc
        if self._failed is not None:
            self._failed.set()

    async def _hub(self) -> None:
        failed = self._failed
        assert failed is not None
        try:
            await failed.wait()
        except trio.Cancelled as exc:
            self._failed = None  # fibers started from now on are tasks
            traceback = exc.__traceback__  # not grown by every fiber's frames
            for fiber in list(self._fibers):
                self._step(fiber, exc)
                exc.__traceback__ = traceback
            for fiber in list(self._fibers):  # parked again after the cancellation
                self._end(fiber)
                fiber.coro.close()
            if self._error is not None:
                raise self._error from exc
            raise
        assert self._error is not None
        raise self._error

    def _run_queue(self) -> None:
        """Step every woken fiber (and those their steps wake)."""
        while self._runnable:
            batch, self._runnable = self._runnable, []
            for fiber in batch:
                self._step(fiber)

    async def _run(self, epoll: select.epoll) -> None:
        """The loop: a pass whenever the epoll is readable, a deadline passes or a wake comes.

        A pass that ends on the scope's cancellation (its deadline, or a wake) takes the
        readable sockets too, before it expires the deadlines. It used to expire them only:
        when the scope was past its deadline each time it was entered (the fibers' stepping in
        a pass outlasting the gap to the next deadline on a loaded machine:
        tests/engine/test_engine_poller.py), Trio never looked at the epoll, and the replies
        waited in their sockets: the 100,000-client deploy against Node ``ws`` read its herd's
        101s and echoes 32 at a time, seconds apart, and 5-39 % of them only after their
        timeouts (docs/scale-out.md).
        """
        fd = epoll.fileno()
        try:
            while True:
                with trio.CancelScope(deadline=self._deadline) as scope:
                    self._scope = scope
                    while True:
                        if not self._runnable:  # woken before this loop first ran: step now
                            await trio.lowlevel.wait_readable(fd)
                        self._pass(epoll)
                        if scope.deadline != self._deadline:  # a move costs Trio ≈ 3 µs
                            scope.deadline = self._deadline
                self._scope = None
                self._pass(epoll)
        finally:
            self._scope = None
            self._passing = False
            epoll.close()

    def _pass(self, epoll: select.epoll) -> None:
        """Take the readable sockets, expire the deadlines that passed, step what woke."""
        self._passing = True
        began = self._now()
        self._dispatch(epoll)
        if self._heap:
            self._expire()
        self._run_queue()
        if self._fibers:  # replies that came while it stepped: no Trio round
            for _ in range(_SPINS):
                if self._now() - began > _SPIN_BUDGET or not self._dispatch(epoll):
                    break
                self._run_queue()
        self._passing = False

    def _dispatch(self, epoll: select.epoll) -> bool:
        """Mark the reported sockets (at most :data:`BATCH`) readable and wake their parked
        tasks or fibers; whether any socket was reported."""
        waitables = self._waitables
        events = epoll.poll(0, BATCH)
        for fd, _ in events:
            w = waitables.get(fd)
            if w is not None:
                w.ready = True
                if w.task is not None or w.fiber is not None:
                    self.wake(w, True)
        return bool(events)

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
