"""The Trio runner: one nursery of connection tasks, one aggregator, one clock.

Each load model is a small coroutine that decides *when* to call ``_connection`` (``MODELS``
maps ``load.model`` to it: the table is the list of load models); everything
else (the close mix, recording, in-flight accounting, draining, stopping) is shared. Records go
straight into the ``Collector`` (the aggregator) as each connection ends; nothing per connection
is kept after that.
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import PurePath

import trio

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.engine.driver import run_connection
from wsload.engine.reference import run_connection_reference
from wsload.engine.wireclock import WireClock
from wsload.metrics.collector import Collector
from wsload.metrics.snapshots import IntervalSnapshot
from wsload.plan.data import exhausted_reason, row_for
from wsload.plan.schedule import concurrency_at, planned_end
from wsload.plan.segment import (
    WHOLE,
    Segment,
    SegmentMix,
    owned_count,
    owned_seqs,
    segment_offsets,
    shared_release_offset,
)
from wsload.process import AFTERMATH_PRIORITY, raised_priority, take_priority_raised
from wsload.runner.load.gate import ReleaseGate
from wsload.runner.load.heap import FREEZE_EVERY, freeze_held, load_heap, release_held
from wsload.runner.load.lag import LagMonitor, cpu_wait_seconds
from wsload.runner.load.reconnect import run_client
from wsload.scenario.model import LoadConfig, Scenario

__all__ = ["MODELS", "LoadRun", "Progress", "internal_error_detail", "run_load"]

_INTERVAL = 1.0
_OVERDUE_BATCH = 16
"""At most this many overdue starts in a row without letting other tasks run."""


def internal_error_detail(exc: BaseException) -> str:
    """``TypeError: ... (wsload/engine/driver.py:299)``: the exception and the innermost
    line that raised it (compiled modules name their source lines too), for a bug report."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" ({_short_path(last.filename)}:{last.lineno})"
    return f"wsload error: {type(exc).__name__}: {exc}{where}"


def _short_path(filename: str) -> str:
    """The path from the (last) ``wsload`` folder down, else the file's name."""
    parts = PurePath(filename).parts
    if "wsload" in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index("wsload") :])
    return parts[-1] if parts else filename


@dataclass(slots=True)
class Progress:
    """Live figures for the terminal panel; updated in place by the runner."""

    started: float = 0.0
    planned_s: float | None = None
    attempted: int = 0
    dropped: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    finished: int = 0
    intended: int = 0
    phase: str = "starting"
    last_interval: IntervalSnapshot | None = None
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class LoadRun:
    """What the runner itself observed (the collector holds what the connections observed)."""

    started: float
    ended: float
    lag: LagMonitor
    interrupted: bool
    cpu_seconds: float
    intervals: int
    intended: int
    cpu_wait_seconds: float | None = None  # runnable but waiting for a CPU (lag.py)
    ended_by: str | None = None  # why the load ended before its plan ([data] ran out)
    wire: WireClock = field(default_factory=WireClock)  # kernel stamps, notice lag
    priority_raised: int = 0  # the most nice steps it ran raised by (process.raised_priority)


class _Runner:
    def __init__(
        self,
        scenario: Scenario,
        ctx: DriverContext,
        collector: Collector,
        progress: Progress,
        on_interval: Callable[[IntervalSnapshot], None],
        segment: Segment = WHOLE,
        on_record: Callable[[ConnectionRecord], None] | None = None,
        gate: ReleaseGate | None = None,
        hard_stop: trio.Event | None = None,
    ) -> None:
        self.on_record = on_record
        self.hard_stop = hard_stop if hard_stop is not None else trio.Event()
        self.gate = gate
        self.scenario = scenario
        self.segment = segment
        self.ctx = ctx
        self.collector = collector
        self.progress = progress
        self.on_interval = on_interval
        self.mix = SegmentMix(scenario.close, scenario.seed)
        self.lag = LagMonitor()
        self.sources = scenario.target.source_addresses
        self.seq = 0
        self.data = scenario.data
        self.ended_by: str | None = None
        self.intervals = 0
        self._overdue = 0  # consecutive starts found already due (see _wait_until)
        # what a storm raised from its hold (its priority) until the end of its drain
        self.aftermath = contextlib.ExitStack()
        reference = scenario.target.engine == "trio-websocket"
        self.connect = run_connection_reference if reference else run_connection
        # the connections run as the poller's fibers (wsload.engine.poller) where every wait
        # of theirs parks there: plain TCP through the run's poller, one attempt each
        self.fibers = (
            not reference
            and ctx.parking
            and ctx.opener is None
            and not ctx.url.startswith("wss:")
            and scenario.reconnect is None
        )

    def _stopped(self, stop: trio.Event) -> bool:
        """No more starts: the graceful stop, or the hard one (whose cancellation reaches the
        model one Trio batch after it is set: a start due in that batch would come after
        it)."""
        return stop.is_set() or self.hard_stop.is_set()

    def _plan(self, k: int, scheduled: float) -> ConnectionPlan:
        """The plan of global connection ``k`` (0-based; ``seq`` is 1-based, as in URLs)."""
        self.seq += 1
        source = self.sources[k % len(self.sources)] if self.sources else None
        data = self.data
        row = () if data is None else row_for(data, k + 1, self.scenario.seed)
        return ConnectionPlan(
            seq=k + 1,
            scheduled=scheduled,
            close=self.mix.at(k),
            source_address=source,
            row=row or (),
        )

    def out_of_data(self, k: int) -> bool:
        """True (and the load's end reason set) when global connection ``k`` has no row:
        ``[data]`` order = "unique" and every row was handed out."""
        data = self.data
        if data is None or data.order != "unique" or k < len(data.rows):
            return False
        self.ended_by = exhausted_reason(data)
        return True

    def _count_start(self) -> None:
        """Counted when the task is *started*, so the drain never misses a pending one."""
        progress = self.progress
        progress.attempted += 1
        progress.in_flight += 1
        progress.peak_in_flight = max(progress.peak_in_flight, progress.in_flight)

    def _record(self, record: ConnectionRecord) -> None:
        """One finished connection (attempt) to the aggregator."""
        self.ctx.upgraded.pop(record.seq, None)  # the next attempt's upgrade is its own
        self.collector.add(record)
        if self.on_record is not None:
            self.on_record(record)
        outcomes = self.progress.outcomes
        outcomes[record.outcome] = outcomes.get(record.outcome, 0) + 1

    async def _connection(self, plan: ConnectionPlan, started: float | None = None) -> None:
        """Run one connection (with ``[reconnect]``: one logical client, every attempt) and
        hand its record(s) to the aggregator, whatever happens.

        ``started``: the closed loop's slot read the clock, planned the connection at that
        instant and starts it now without an await: its start lag is 0 by construction.
        """
        progress = self.progress
        now = self.ctx.now() if started is None else started
        self.lag.record_start(now - plan.scheduled)
        try:
            if self.scenario.reconnect is None:
                # run_client's one attempt, inline: one coroutine fewer for every wait of the
                # connection to resume through (not try/finally: compiled by mypyc 2.4.1, a
                # finally here read None from a local assigned before the await raised)
                try:
                    record = await self.connect(plan, self.ctx)
                except Exception as exc:  # a bug of wsload's own: recorded, the run goes on
                    record = self._internal_error(plan, exc)
                except BaseException:
                    self._record(self._interrupted(plan))
                    raise
                self._record(record)
            else:
                await run_client(
                    plan,
                    self.ctx,
                    self.connect,
                    self._record,
                    self._interrupted,
                    self._internal_error,
                    self.scenario.reconnect,
                    self.scenario.seed,
                )
        finally:
            progress.in_flight -= 1
            progress.finished += 1

    def _interrupted(self, plan: ConnectionPlan) -> ConnectionRecord:
        """The record of a connection cancelled at the end of the drain or by a hard stop
        (its upgrade kept when it got that far: ``opened`` counts it)."""
        return plan.record(
            Outcome.INTERRUPTED,
            "still open when wsload stopped (end of drain or interrupt)",
            socket_closed=trio.current_time(),
            upgraded=self.ctx.upgraded.pop(plan.seq, None),
        )

    def _internal_error(self, plan: ConnectionPlan, exc: Exception) -> ConnectionRecord:
        """The record of a connection an exception inside wsload ended (the driver never
        raises for what the target does: this is a bug). One bug on one path must not cost a
        run everything it measured: the connection is recorded as ``internal_error`` with
        the exception and where it was raised, the run goes on, and the verdict says the
        figures are incomplete (``wsload.report.verdict``)."""
        return plan.record(
            Outcome.INTERNAL_ERROR,
            internal_error_detail(exc),
            socket_closed=trio.current_time(),
            upgraded=self.ctx.upgraded.pop(plan.seq, None),
        )

    async def _wait_until(self, due: float, stop: trio.Event) -> None:
        """Sleep until ``due`` (or ``stop``); when already late, still yield now and then.

        A generator that cannot keep up with its schedule finds every start overdue; without
        a checkpoint it would run the whole schedule in one step, and neither the stop, the
        lag monitor, the interval log nor the started connections would run until it ended.
        """
        if due > self.ctx.now():
            self._overdue = 0
            with trio.move_on_at(due):
                await stop.wait()
            return
        self._overdue += 1
        if self._overdue >= _OVERDUE_BATCH:
            self._overdue = 0
            await trio.lowlevel.checkpoint()

    def _start(self, nursery: trio.Nursery, k: int, scheduled: float) -> None:
        self._count_start()
        plan = self._plan(k, scheduled)
        poller = self.ctx.poller
        if self.fibers and poller is not None:
            poller.start(self._connection(plan))
        else:
            nursery.start_soon(self._connection, plan)

    async def arrival(self, nursery: trio.Nursery, start: float, stop: trio.Event) -> None:
        cap = self.scenario.load.max_in_flight
        scenario = self.scenario
        for k, offset in segment_offsets(
            scenario.load, self.segment, scenario.close, scenario.seed
        ):
            due = start + offset
            await self._wait_until(due, stop)
            if self._stopped(stop) or self.out_of_data(k):
                return
            self.progress.intended += 1
            if self.progress.in_flight >= cap:
                self.progress.dropped += 1
                self.collector.add_dropped()
                continue
            self._start(nursery, k, due)

    async def concurrency(self, nursery: trio.Nursery, start: float, stop: trio.Event) -> None:
        load = self.scenario.load
        end = planned_end(load)
        close, seed = self.scenario.close, self.scenario.seed
        limit = (
            None
            if load.connections is None
            else owned_count(close, seed, self.segment, load.connections)
        )
        owned = owned_seqs(close, seed, self.segment)
        deadline = start + end if end is not None else math.inf
        clock = self.ctx.bind_clock()

        def more(now: float) -> bool:
            if self._stopped(stop) or now >= deadline:
                return False
            return (limit is None or self.progress.attempted < limit) and self.ended_by is None

        async def slot(index: int) -> None:
            now = clock()  # one reading per start: the checks and the plan share the instant
            while more(now):
                if index >= concurrency_at(load, now - start):
                    if poller is not None:
                        await poller.promote()  # Trio's sleep, in a task
                    await trio.sleep(0.05)
                    now = clock()
                    continue
                k = next(owned)
                if self.out_of_data(k):
                    return
                self._count_start()
                self.progress.intended += 1
                await self._connection(self._plan(k, now), now)
                now = clock()

        peak = max([load.concurrency or 0, *(s.concurrency or 0 for s in load.stages)])
        poller = self.ctx.poller if self.fibers else None
        for index in range(self.segment.index, peak, self.segment.count):
            if poller is not None:
                poller.start(slot(index))
            else:
                nursery.start_soon(slot, index)
        while more(clock()):  # the slots finish their current connection during the drain
            with trio.move_on_after(0.05):
                await stop.wait()

    async def storm(self, nursery: trio.Nursery, start: float, stop: trio.Event) -> None:
        load = self.scenario.load
        release = self.ctx.release
        assert release is not None
        offsets = segment_offsets(load, self.segment, self.scenario.close, self.scenario.seed)
        for k, offset in offsets:
            due = start + offset
            await self._wait_until(due, stop)
            if self._stopped(stop) or self.out_of_data(k):
                break
            self.progress.intended += 1
            self._start(nursery, k, due)
            if self.progress.intended % FREEZE_EVERY == 0:
                freeze_held()  # they are held until the release: out of the collector's walks
        self.progress.phase = "holding"
        # raised before the instant (where the process may), and to the end of the load: a
        # worker raised only at its own release found the cores taken by the passes of those
        # released before it (one of six released 106 ms late, 100,000 connections on two
        # cores); the burst step is left once the pass's writes are done (Alarm.release)
        self.aftermath.enter_context(raised_priority(AFTERMATH_PRIORITY))
        burst = self.aftermath.enter_context(contextlib.ExitStack())
        burst.enter_context(raised_priority())
        with trio.move_on_after(max(0.0, start + load.open_deadline - trio.current_time())):
            while (
                self.ctx.ready_count + self.progress.finished < self.progress.attempted
                and not stop.is_set()
            ):
                await trio.sleep(0.01)
        shared = shared_release_offset(load, self.segment)
        counted_from = None if shared is None else start + shared
        gate = self.gate
        if gate is not None:  # the parent releases every worker together once all are open
            gate.opened()
            with trio.move_on_at(start + load.open_deadline):
                await gate.wait()
            if gate.at is not None:  # its instant comes a little after its word to everyone
                with trio.move_on_at(gate.at):
                    await stop.wait()
            counted_from = gate.at if gate.at is not None else trio.current_time()
        elif shared is not None:  # segments release together (and count from) the shared instant
            with trio.move_on_at(start + shared):
                await stop.wait()
        self.progress.phase = "storm"
        now = trio.current_time()
        self.collector.release_at = now  # closes that begin from here on are the storm's
        if counted_from is not None:  # a stop may release before the instant: count from then
            self.collector.lag_from = min(now, counted_from)
        release_held(lambda: self.ctx.alarm.release(release, burst))

    async def intervals_task(self, start: float) -> None:
        next_tick = start + _INTERVAL
        while True:
            await trio.sleep_until(next_tick)
            # after a stall longer than an interval, skip the missed ticks instead of
            # emitting a burst of near-empty intervals
            next_tick = max(next_tick + _INTERVAL, trio.current_time() + _INTERVAL / 2)
            self.emit_interval()

    def emit_interval(self) -> None:
        snapshot = self.collector.take_interval(
            in_flight=self.progress.in_flight,
            loop_lag=self.lag.take_interval(),
            saturated=self.lag.saturated,
        )
        self.intervals += 1
        self.progress.last_interval = snapshot
        self.on_interval(snapshot)


ModelTask = Callable[[_Runner, trio.Nursery, float, trio.Event], Awaitable[None]]
"""A load model: given the connections' nursery, the schedule's start and the stop event,
start connections until the model's plan is done (or stop is set)."""

MODELS: dict[str, ModelTask] = {
    "arrival": _Runner.arrival,
    "concurrency": _Runner.concurrency,
    "storm": _Runner.storm,
}
"""Every ``load.model`` the runner applies (``search`` is a mode made of ``arrival`` or
``storm`` levels, not a model)."""


async def _idle(progress: Progress, stop: trio.Event | None = None) -> None:
    """Return when no connection is in flight (or ``stop`` is set). Polls: cheap and simple."""
    while progress.in_flight and not (stop is not None and stop.is_set()):
        await trio.sleep(0.02)


async def _forward_stop(stop: trio.Event, ctx: DriverContext) -> None:
    """A graceful stop tells every open connection to run its close behaviour now."""
    await stop.wait()
    if ctx.stop is not None:
        ctx.stop.set()
    if ctx.release is not None:
        ctx.release.set()


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def run_load(
    scenario: Scenario,
    ctx: DriverContext,
    collector: Collector,
    *,
    progress: Progress | None = None,
    on_interval: Callable[[IntervalSnapshot], None] = lambda _: None,
    stop: trio.Event | None = None,
    hard_stop: trio.Event | None = None,
    segment: Segment = WHOLE,
    on_record: Callable[[ConnectionRecord], None] | None = None,
    release_gate: ReleaseGate | None = None,
) -> LoadRun:
    """Apply the scenario's load model until it ends, then drain in-flight connections.

    Args:
        ctx: the driver context (its ``stop`` event is set on a graceful stop; it and, for
            storms, the ``release`` event are created here if missing).
        stop: set it to stop scheduling and close open connections (graceful stop); the runner
            then waits ``load.shutdown_grace`` before cancelling the rest.
        hard_stop: set it to cancel every connection at once.
        segment: run only this share of the scenario (``wsload.plan.segment``).
        on_record: called with each connection's record right after the collector got it
            (``--record-connections`` streams them; nothing here keeps them).
        release_gate: a storm split over ``--workers``: released when the parent says
            (``wsload.runner.load.gate``) instead of at the segments' shared instant.

    Every wait is bounded: scheduling by duration/connections, the drain by ``load.drain``
    (``shutdown_grace`` after a stop); connections still open after that are cancelled and
    recorded as ``interrupted``, so outcomes always sum to attempted.
    """
    progress = progress if progress is not None else Progress()
    stop = stop if stop is not None else trio.Event()
    hard_stop = hard_stop if hard_stop is not None else trio.Event()
    load = scenario.load
    if load.model == "storm" and ctx.release is None:
        ctx.release = trio.Event()
    if ctx.stop is None:  # without it a graceful stop could not reach open connections
        ctx.stop = trio.Event()
    runner = _Runner(
        scenario,
        ctx,
        collector,
        progress,
        on_interval,
        segment,
        on_record,
        release_gate,
        hard_stop,
    )
    with load_heap():
        return await _apply(runner, load, ctx, progress, stop, hard_stop)


async def _apply(
    runner: _Runner,
    load: LoadConfig,
    ctx: DriverContext,
    progress: Progress,
    stop: trio.Event,
    hard_stop: trio.Event,
) -> LoadRun:
    cpu0, wait0 = time.process_time(), cpu_wait_seconds()
    take_priority_raised()  # counted from here
    start = trio.current_time() + 0.001
    progress.started = start
    runner.collector.start_intervals(start)
    progress.planned_s = planned_end(load)
    async with trio.open_nursery() as outer:
        outer.start_soon(runner.lag.run)
        outer.start_soon(runner.intervals_task, start)
        outer.start_soon(_forward_stop, stop, ctx)
        async with trio.open_nursery() as connections:
            outer.start_soon(_cancel_on, hard_stop, connections.cancel_scope)
            ctx.bind_clock()  # ctx.now and the poller of this run, for the model too
            if runner.fibers and ctx.poller is not None:
                ctx.poller.drive_in(connections)
            progress.phase = "running"
            with runner.aftermath:  # a storm's raised priority, from its hold to the end
                await MODELS[load.model](runner, connections, start, stop)
                progress.phase = "draining"
                with trio.move_on_after(load.drain):
                    await _idle(progress, stop)
                if stop.is_set():
                    progress.phase = "stopping"
                    with trio.move_on_after(load.shutdown_grace):
                        await _idle(progress)
                connections.cancel_scope.cancel()
        runner.emit_interval()
        outer.cancel_scope.cancel()
    progress.phase = "done"
    return LoadRun(
        started=start,
        ended=trio.current_time(),
        lag=runner.lag,
        interrupted=stop.is_set() or hard_stop.is_set(),
        cpu_seconds=time.process_time() - cpu0,
        intervals=runner.intervals,
        intended=progress.intended,
        cpu_wait_seconds=_since(wait0, cpu_wait_seconds()),
        ended_by=runner.ended_by,
        wire=ctx.wire,
        priority_raised=take_priority_raised(),
    )


def _since(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else max(0.0, after - before)
