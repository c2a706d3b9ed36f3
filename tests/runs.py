"""Whole runs in-process for the runner tier: ``run`` parses a scenario and runs ``run_load``
to its end on the test's own Trio clock; ``check_sums`` holds every run's invariants; a spy
collects the records the real drivers return; ``raw_server`` and :class:`PoliteServer` are
scripted loopback peers served in the same Trio run (server-side stamps compare directly with
the records')."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import pytest
import trio
from peers import RawPeer

from wsload.core.record import ConnectionRecord
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.metrics.collector import Collector
from wsload.metrics.snapshots import IntervalSnapshot
from wsload.plan.segment import WHOLE, Segment
from wsload.runner.load import loop
from wsload.runner.load.loop import LoadRun, Progress, run_load
from wsload.scenario.model import Scenario
from wsload.scenario.parse import parse_scenario

__all__ = [
    "HDR",
    "PEER_CLOSE_TIMEOUT",
    "PoliteServer",
    "Run",
    "check_stopped_schedule",
    "check_sums",
    "raw_server",
    "run",
    "spy_on",
]

PEER_CLOSE_TIMEOUT = 0.5
HDR = 1 - 1e-3
"""Histogram statistics are exact to 3 significant digits: a bound on one is this much looser."""


def spy_on(monkeypatch: pytest.MonkeyPatch) -> list[ConnectionRecord]:
    """Collect every record the real drivers return, in completion order (changes nothing)."""
    seen: list[ConnectionRecord] = []

    def spy(
        real: Callable[[ConnectionPlan, DriverContext], Awaitable[ConnectionRecord]],
    ) -> Callable[[ConnectionPlan, DriverContext], Awaitable[ConnectionRecord]]:
        async def wrapper(plan: ConnectionPlan, ctx: DriverContext) -> ConnectionRecord:
            record = await real(plan, ctx)
            seen.append(record)
            return record

        return wrapper

    monkeypatch.setattr(loop, "run_connection", spy(loop.run_connection))
    monkeypatch.setattr(loop, "run_connection_reference", spy(loop.run_connection_reference))
    return seen


@dataclass
class Run:
    """One ``run_load`` and everything it reported."""

    scenario: Scenario
    collector: Collector
    progress: Progress
    result: LoadRun
    intervals: list[IntervalSnapshot] = field(default_factory=list)
    elapsed: float = 0.0


async def run(
    text: str,
    url: str,
    *,
    stop: trio.Event | None = None,
    hard_stop: trio.Event | None = None,
    ctx_stop: bool = True,
    segment: Segment = WHOLE,
) -> Run:
    """Parse ``text`` with ``url`` as its target and run it to the end."""
    scenario = parse_scenario(f'name = "t"\nseed = 7\n[target]\nurl = "{url}"\n' + text)
    ctx = DriverContext.create(
        scenario.target,
        scenario.session,
        scenario.target.url,
        seed=scenario.seed,
        stop=trio.Event() if ctx_stop else None,
    )
    collector = Collector(labels=[spec.label for spec in scenario.close])
    progress = Progress()
    intervals: list[IntervalSnapshot] = []
    result = await run_load(
        scenario,
        ctx,
        collector,
        progress=progress,
        on_interval=intervals.append,
        stop=stop,
        hard_stop=hard_stop,
        segment=segment,
    )
    # elapsed from the load's start: the heap's collection before it (load_heap) takes 200+ ms
    # in a test process that has run a thousand tests, and is not part of the load
    return Run(
        scenario, collector, progress, result, intervals, trio.current_time() - progress.started
    )


def check_sums(r: Run) -> None:
    """Invariants of every run: outcomes sum to attempted, intervals sum to the totals."""
    counts = r.collector.counts()
    assert sum(counts.outcomes.values()) == counts.attempted == r.progress.attempted
    assert r.progress.finished == r.progress.attempted and r.progress.in_flight == 0
    assert sum(r.progress.outcomes.values()) == r.progress.attempted
    assert sum(s.attempted for s in r.intervals) == counts.attempted
    assert sum(s.dropped for s in r.intervals) == r.collector.dropped == r.progress.dropped
    assert r.result.intended == r.progress.intended == r.progress.attempted + r.progress.dropped
    assert r.result.intervals == len(r.intervals)


async def raw_server(
    nursery: trio.Nursery, handler: Callable[[trio.SocketStream], Awaitable[None]]
) -> str:
    with trio.fail_after(10):
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"


@dataclass
class PoliteServer:
    """A raw server that answers a Close with the same Close and then closes TCP.

    Counts connections open at once (``peak``) and stamps each Close it receives on the
    test's Trio clock.
    """

    open: int = 0
    peak: int = 0
    accepted: int = 0
    close_times: list[float] = field(default_factory=list)
    upgraded_times: list[float] = field(default_factory=list)

    async def __call__(self, stream: trio.SocketStream) -> None:
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            peer = RawPeer(stream)
            await peer.accept()
            self.accepted += 1
            self.upgraded_times.append(trio.current_time())
            while (frame := await peer.frame()) is not None:
                opcode, payload = frame
                if opcode == 0x8:
                    self.close_times.append(trio.current_time())
                    await peer.send(bytes((0x88, len(payload))) + payload)
                    break
                if opcode in (0x1, 0x2):
                    await peer.send(bytes((0x80 | opcode, len(payload))) + payload)
        except (trio.BrokenResourceError, EOFError):
            pass
        finally:
            self.open -= 1
            await stream.aclose()


def check_stopped_schedule(r: Run, rate: float, stopped_at: float) -> None:
    """An arrival run at ``rate`` stopped at ``stopped_at`` (Trio clock) started the grid's
    slots up to the stop and none after it.

    Counted against the run's own lateness, not a wall-clock guess: a busy machine may leave
    the generator behind its schedule when the stop comes (it then skips the slots it had not
    reached, at most its worst measured lag's worth), but it never starts one after the stop.
    """
    due = math.floor((stopped_at - r.progress.started) * rate) + 1  # slots 0, 1/rate, ...
    lag = r.result.lag
    late = max(lag.max_start_lag_us, lag.loop_lag.get_max_value()) / 1e6
    assert due - math.ceil(late * rate) - 1 <= r.progress.intended <= due, (due, late)
