"""``wsload run --cluster tcp://scheduler:8786``: the segments as tasks on a Dask cluster.

No protocol of our own: Dask ships the (frozen, picklable) scenario to its workers, runs one
task per segment (``run_segment_task``, a whole ``trio.run`` in the Dask worker process), and
returns what a local worker would pipe: the ``SegmentResult`` wire form and the interval
snapshots. The parent merges them exactly, as for ``--workers``. Each task is pinned to its own
Dask worker (round-robin), so N segments use N worker processes, and all start at one wall-clock
instant agreed before submission. Install with ``pip install 'wsload[cluster]'``.

With ``url = "builtin"`` the target runs on *this* machine's loopback, which only the workers of
a local cluster can reach; for remote workers point ``target.url`` at a reachable server.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import trio

from wsload.errors import ToolError, UsageError
from wsload.metrics.result import SegmentResult
from wsload.metrics.snapshots import IntervalSnapshot, snapshot_from_wire, snapshot_to_wire
from wsload.plan.schedule import planned_end
from wsload.plan.segment import parse_segment
from wsload.process import raise_nofile_limit
from wsload.runner.executor import LoadFeed, SplitResults, error_text
from wsload.runner.loop import Progress
from wsload.runner.segment_run import run_segment
from wsload.scenario.model import Scenario

__all__ = ["START_MARGIN", "Cluster", "run_segment_task", "scheduler_address"]

START_MARGIN = 2.0
"""Seconds from submission to the common start: Dask's task dispatch takes tens of ms, a
cold worker importing wsload takes longer."""

_CONNECT_TIMEOUT = 30.0
_REACH_TIMEOUT = 5.0
_UNBOUNDED_RUN = 3600.0
"""Bound on a run without duration (``connections`` only) waiting for its tasks."""


def run_segment_task(scenario: Scenario, url: str, segment: str, start_at: float) -> dict[str, Any]:
    """The Dask task: run one segment in this worker process; return its result and intervals.

    Runs in a Dask worker's thread; ``trio.run`` works there (no signal handling is needed:
    the parent interrupts by cancelling the futures).
    """
    raise_nofile_limit()
    intervals: list[dict[str, Any]] = []

    async def main() -> SegmentResult:
        progress = Progress()

        def on_interval(snapshot: IntervalSnapshot) -> None:
            intervals.append(snapshot_to_wire(snapshot, progress.started))

        return await run_segment(
            scenario,
            url,
            segment=parse_segment(segment),
            start_at=start_at,
            progress=progress,
            on_interval=on_interval,
        )

    part = trio.run(main)
    return {"result": part.to_wire(), "intervals": intervals}


def _bound(scenario: Scenario) -> float:
    """How long to wait for the tasks: the planned run plus every drain the runner allows."""
    load = scenario.load
    end = planned_end(load)
    run = end if end is not None else _UNBOUNDED_RUN
    return START_MARGIN + run + load.open_deadline + load.drain + load.shutdown_grace + 60.0


def _run_sync(
    scenario: Scenario, url: str, address: str, count: int, start_at: float | None
) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    try:
        import distributed
    except ImportError:
        raise UsageError(
            "--cluster needs Dask distributed: pip install 'wsload[cluster]'"
        ) from None
    make_client: Any = distributed.Client  # untyped library
    try:
        client = make_client(address, timeout=_CONNECT_TIMEOUT, set_as_default=False)
    except OSError as exc:
        raise ToolError(f"--cluster {address}: cannot reach the scheduler: {exc}") from None
    with client:
        names = sorted(client.scheduler_info()["workers"])
        if not names:
            raise ToolError(f"--cluster {address}: the cluster has no workers")
        n = count if count > 1 else len(names)
        start_at = max(start_at or 0.0, time.time() + START_MARGIN)
        run_id = uuid.uuid4().hex[:8]
        futures: list[Any] = [
            client.submit(
                run_segment_task,
                scenario,
                url,
                f"{i}/{n}",
                start_at,
                key=f"wsload-{run_id}-{i}",
                workers=[names[i % len(names)]],
                pure=False,
            )
            for i in range(n)
        ]
        deadline = time.monotonic() + _bound(scenario)
        out: list[tuple[str, dict[str, Any] | None, str | None]] = []
        for i, future in enumerate(futures):
            segment = f"{i}/{n}"
            try:
                data = future.result(timeout=max(0.1, deadline - time.monotonic()))
            except Exception as exc:  # the task's own error, a timeout or a lost worker
                out.append((segment, None, error_text(exc)))
            else:
                out.append((segment, data, None))
        client.cancel(futures)
    return out


def scheduler_address(address: str) -> tuple[str, int]:
    """``tcp://host:port`` (or ``host:port``) → ``(host, port)``.

    Raises:
        UsageError: not an address.
    """
    split = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = split.hostname, split.port
    except ValueError:
        host = port = None
    if not host or port is None:
        raise UsageError(f"--cluster: expected tcp://host:port, got {address!r}")
    return host, port


async def _check_reachable(address: str) -> None:
    """Fail in seconds, not after Dask's connect retries, when nobody listens there."""
    host, port = scheduler_address(address)
    with trio.move_on_after(_REACH_TIMEOUT):
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise ToolError(f"--cluster {address}: cannot reach the scheduler: {exc}") from None
        await stream.aclose()
        return
    raise ToolError(f"--cluster {address}: cannot reach the scheduler in {_REACH_TIMEOUT:g} s")


@dataclass(frozen=True, slots=True)
class Cluster:
    """The load as segments on the Dask cluster at ``address``, merged.

    Attributes:
        count: segments (1: one per Dask worker).
        start_at: the common start (wall-clock epoch); at the earliest ``START_MARGIN`` after
            submission.
    """

    address: str
    count: int = 1
    start_at: float | None = None

    @property
    def processes(self) -> int:
        return self.count  # what the pre-flight check splits the fd limit by, as --workers

    async def run(self, scenario: Scenario, url: str, feed: LoadFeed) -> SegmentResult:
        """Submit one task per segment, wait for all, merge what came back.

        Raises:
            UsageError: Dask distributed is not installed.
            ToolError: the scheduler cannot be reached, or no segment produced a result.
        """
        address = self.address
        await _check_reachable(address)
        outcomes = await trio.to_thread.run_sync(
            _run_sync, scenario, url, address, self.count, self.start_at
        )
        split = SplitResults(
            len(outcomes),
            feed,
            warning="cluster segment {segment} failed: {error}",
            none_left=f"--cluster {address}: every segment failed",
        )
        for index, (segment, data, error) in enumerate(outcomes):
            if data is None:
                split.failed(segment, error or "")
            else:
                part = SegmentResult.from_wire(data["result"])
                for wire in data["intervals"]:
                    split.interval(index, segment, snapshot_from_wire(wire))
                split.result(part)
            split.ended(index)
        return split.finish(scenario)
