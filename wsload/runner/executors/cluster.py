"""``wsload run --cluster tls://scheduler:8786``: the segments as tasks on a Dask cluster.

No protocol of our own: Dask ships the (frozen, picklable) scenario to its workers, runs one
task per segment (``run_segment_task``, a whole ``trio.run`` in the Dask worker process), and
returns what a local worker would pipe: the ``SegmentResult`` wire form and the interval
snapshots. The parent merges them exactly, as for ``--workers``. Each task is pinned to its own
Dask worker (round-robin), so N segments use N worker processes, and all start at one wall-clock
instant agreed before submission. Install with ``pip install 'wsload[cluster]'``.

A Dask scheduler runs whatever code a client that reaches it sends, so a cluster others can
reach must be a ``tls://`` one, secured as Dask secures it (``distributed.Security``: a CA that
signs the scheduler's, the workers' and this client's certificates): the CA, certificate and
key come from ``ClusterTLS`` (``--cluster-ca/-cert/-key``) or else from Dask's configuration
(``distributed.comm.tls.*``). The scheduler's certificate is checked against that CA with one
handshake before Dask connects, so a scheduler that does not verify is a clear error in
seconds, not Dask's retries until its connect timeout.

With ``url = "builtin"`` the target runs on *this* machine's loopback, which only the workers of
a local cluster can reach; for remote workers point ``target.url`` at a reachable server.

A deploy (``[target.process]`` events, ``[reconnect]``) stays this process's, as for
``--workers``, but a task has no channel back from the parent while it runs: each task audits
its connections against the events' *planned* instants (the common start plus ``at``, on its
own clock), and the parent, which fires each signal at that instant, audits from it too
(``LoadFeed.audit_from_schedule``): the few ms a signal leaves late are inside its latencies.
"""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from wsload.errors import ToolError, UsageError, WsloadError
from wsload.metrics.audits import SegmentAudit
from wsload.metrics.result import SegmentResult, latest_shift
from wsload.metrics.snapshots import IntervalSnapshot, snapshot_from_wire, snapshot_to_wire
from wsload.plan.schedule import planned_end
from wsload.plan.segment import parse_segment
from wsload.process import raise_nofile_limit
from wsload.runner.executors.executor import LoadFeed, SplitResults, error_text, progress_to_wire
from wsload.runner.executors.segment_run import run_segment
from wsload.runner.load.loop import Progress
from wsload.scenario.model import Scenario

__all__ = ["START_MARGIN", "Cluster", "ClusterTLS", "run_segment_task", "scheduler_address"]

START_MARGIN = 2.0
"""Seconds from submission to the common start: Dask's task dispatch takes tens of ms, a
cold worker importing wsload takes longer."""

_CONNECT_TIMEOUT = 30.0
_REACH_TIMEOUT = 5.0
_LIVE_PERIOD = 1.0
"""Seconds between a task's live reports, and the bound of each of its Dask waits."""
_LIVE_POLL = 0.25
"""Seconds between the parent's looks at the queue and its stop flags."""
_MEMBERS_PERIOD = 1.0
"""Seconds between the parent's looks at which Dask workers are still there."""
_UNBOUNDED_RUN = 3600.0
"""Bound on a run without duration (``connections`` only) waiting for its tasks."""


def run_segment_task(
    scenario: Scenario, url: str, segment: str, start_at: float, channel: str | None = None
) -> dict[str, Any]:
    """The Dask task: run one segment in this worker process; return its result and intervals.

    Runs in a Dask worker's thread; ``trio.run`` works there (no signal handling is needed).
    ``channel``: the run's Dask names (``_Channel``): each second the task puts its new
    intervals and its progress on the run's queue (the parent's live panel), and it stops
    gracefully (or at once) when the parent sets the run's stop (or hard stop) event.
    """
    raise_nofile_limit()
    intervals: list[dict[str, Any]] = []
    live = _Channel.in_task(channel) if channel is not None else None
    index = parse_segment(segment).index

    async def main() -> SegmentResult:
        progress = Progress()
        stop, hard_stop = trio.Event(), trio.Event()
        audit = SegmentAudit.of(scenario)
        if audit is not None:  # the events at their planned instants, on this clock
            audit.announce_schedule(trio.current_time() + (start_at - time.time()))

        def on_interval(snapshot: IntervalSnapshot) -> None:
            intervals.append(snapshot_to_wire(snapshot, progress.started))

        async with trio.open_nursery() as nursery:
            if live is not None:
                nursery.start_soon(live.report, index, intervals, progress)
                nursery.start_soon(live.watch, stop, hard_stop)
            part = await run_segment(
                scenario,
                url,
                segment=parse_segment(segment),
                start_at=start_at,
                progress=progress,
                on_interval=on_interval,
                stop=stop,
                hard_stop=hard_stop,
                on_record=None if audit is None else audit.on_record,
            )
            nursery.cancel_scope.cancel()
        if audit is not None:
            audit.attach(part)
        return part

    part = trio.run(main)
    return {"result": part.to_wire(), "intervals": intervals}


class _Channel:
    """A run's live line between the parent and its tasks, made of Dask's own primitives (no
    port of ours): a ``distributed.Queue`` the tasks put ``(index, new intervals, progress)``
    on each second, and two ``distributed.Event``s the parent sets to stop them (graceful,
    then hard). Every call is a blocking Dask call: tasks make them in a Trio worker thread,
    the parent in the thread that waits for the tasks."""

    def __init__(self, name: str, client: Any) -> None:
        import distributed

        dask: Any = distributed  # untyped library
        self.name = name
        self.queue: Any = dask.Queue(f"{name}-live", client=client)
        self.stop: Any = dask.Event(f"{name}-stop", client=client)
        self.hard: Any = dask.Event(f"{name}-hard", client=client)

    @classmethod
    def in_task(cls, name: str) -> _Channel:
        import distributed

        return cls(name, distributed.get_client())

    async def report(self, index: int, intervals: list[dict[str, Any]], progress: Progress) -> None:
        """Each second: the intervals taken since the last report, and the progress."""
        sent = 0
        while True:
            await trio.sleep(_LIVE_PERIOD)
            new, sent = intervals[sent:], len(intervals)
            item = (index, new, progress_to_wire(progress))
            await trio.to_thread.run_sync(self.queue.put, item, _LIVE_PERIOD)

    async def watch(self, stop: trio.Event, hard_stop: trio.Event) -> None:
        """Until the parent's stop (then its hard stop) is set; bounded waits, so a cancel
        ends this within ``_LIVE_PERIOD``."""
        for dask_event, event in ((self.stop, stop), (self.hard, hard_stop)):
            while not await trio.to_thread.run_sync(dask_event.wait, _LIVE_PERIOD):
                pass
            event.set()

    def take(self) -> list[Any]:
        """What the tasks put since the last call (never blocks)."""
        items: list[Any] = self.queue.get(batch=True)
        return items

    def close(self) -> None:
        self.queue.close()


def _bound(scenario: Scenario) -> float:
    """How long to wait for the tasks: the planned run plus every drain the runner allows."""
    load = scenario.load
    end = planned_end(load)
    run = end if end is not None else _UNBOUNDED_RUN
    return START_MARGIN + run + load.open_deadline + load.drain + load.shutdown_grace + 60.0


@dataclass(slots=True)
class _Hooks:
    """How the thread that waits for the tasks talks to the Trio side: ``on_start`` gets the
    common start and the number of segments, ``on_live`` what the tasks put on the queue;
    ``stop``/``hard_stop`` are set from Trio when the run is stopped."""

    on_start: Callable[[float, int], None]
    on_live: Callable[[list[Any]], None]
    stop: threading.Event = field(default_factory=threading.Event)
    hard_stop: threading.Event = field(default_factory=threading.Event)


def _run_sync(
    scenario: Scenario,
    url: str,
    address: str,
    security: Any,
    count: int,
    start_at: float | None,
    hooks: _Hooks,
) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """Connect, submit the tasks, relay their live reports and the parent's stops until they
    end (bounded), collect their results."""
    make_client: Any = _distributed().Client  # untyped library
    try:
        client = make_client(
            address, timeout=_CONNECT_TIMEOUT, set_as_default=False, security=security
        )
    except OSError as exc:
        raise ToolError(f"--cluster {address}: cannot reach the scheduler: {exc}") from None
    with client:
        names = sorted(client.scheduler_info()["workers"])
        if not names:
            raise ToolError(f"--cluster {address}: the cluster has no workers")
        n = count if count > 1 else len(names)
        start_at = max(start_at or 0.0, time.time() + START_MARGIN)
        hooks.on_start(start_at, n)
        run_id = f"wsload-{uuid.uuid4().hex[:8]}"
        channel = _Channel(run_id, client)
        pinned = [names[i % len(names)] for i in range(n)]
        futures: list[Any] = [
            client.submit(
                run_segment_task,
                scenario,
                url,
                f"{i}/{n}",
                start_at,
                run_id,
                key=f"{run_id}-{i}",
                workers=[pinned[i]],
                pure=False,
            )
            for i in range(n)
        ]
        deadline = time.monotonic() + _bound(scenario)
        lost = _relay(client, futures, pinned, channel, hooks, deadline)
        out: list[tuple[str, dict[str, Any] | None, str | None]] = []
        for i, future in enumerate(futures):
            segment = f"{i}/{n}"
            if i in lost:
                out.append((segment, None, lost[i]))
                continue
            try:
                data = future.result(timeout=max(0.1, deadline - time.monotonic()))
            except Exception as exc:  # the task's own error, a timeout or a lost worker
                out.append((segment, None, error_text(exc)))
            else:
                out.append((segment, data, None))
        client.cancel(futures)
        channel.close()
    return out


def _relay(
    client: Any,
    futures: list[Any],
    pinned: list[str],
    channel: _Channel,
    hooks: _Hooks,
    deadline: float,
) -> dict[int, str]:
    """Until every task ended (or ``deadline``): their live reports to ``hooks.on_live``,
    the parent's stops to the tasks; the tasks lost with their Dask worker, and why.

    A task whose worker died (killed, out of memory) never ends: Dask would run it again on
    the worker it is pinned to, which is gone (a restarted worker has a new address), and a
    segment run again would start late anyway. So the workers are looked up every
    ``_MEMBERS_PERIOD`` and such a task is cancelled and reported as failed.
    """
    stopped = hard = False
    lost: dict[int, str] = {}
    members_at = time.monotonic() + _MEMBERS_PERIOD
    while True:
        if hooks.stop.is_set() and not stopped:
            channel.stop.set()
            stopped = True
        if hooks.hard_stop.is_set() and not hard:
            channel.hard.set()
            hard = True
        ended = all(future.done() for future in futures)
        items = channel.take()
        if items:
            hooks.on_live(items)
        if ended or time.monotonic() >= deadline:
            return lost
        if time.monotonic() >= members_at:
            members_at = time.monotonic() + _MEMBERS_PERIOD
            alive = set(client.scheduler_info()["workers"])
            for i, future in enumerate(futures):
                if i not in lost and not future.done() and pinned[i] not in alive:
                    lost[i] = f"its Dask worker {pinned[i]} left the cluster (killed?)"
                    future.cancel()
        time.sleep(_LIVE_POLL)


def scheduler_address(address: str) -> tuple[str, int]:
    """``tcp://host:port``, ``tls://host:port`` (or ``host:port``: tcp) → ``(host, port)``.

    Raises:
        UsageError: not an address, or another scheme.
    """
    split = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = split.hostname, split.port
    except ValueError:
        host = port = None
    if split.scheme not in ("tcp", "tls") or not host or port is None:
        raise UsageError(f"--cluster: expected tcp://host:port or tls://host:port, got {address!r}")
    return host, port


@dataclass(frozen=True, slots=True)
class ClusterTLS:
    """``--cluster-ca``, ``--cluster-cert``, ``--cluster-key``: this client's side of a
    ``tls://`` cluster (unset: Dask's configuration, ``distributed.comm.tls.ca-file`` and
    ``distributed.comm.tls.client.cert``/``key``)."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    @property
    def given(self) -> bool:
        return any(path is not None for path in (self.ca, self.cert, self.key))

    def check(self, address: str) -> None:
        """Raises: UsageError: files given for a plain address, or not readable."""
        if not self.given:
            return
        if not address.startswith("tls://"):
            raise UsageError("--cluster-ca/--cluster-cert/--cluster-key need --cluster tls://...")
        for option, path in (("ca", self.ca), ("cert", self.cert), ("key", self.key)):
            if path is not None and not path.is_file():
                raise UsageError(f"--cluster-{option}: {path}: no such file")

    def security(self, address: str) -> Any:
        """The ``distributed.Security`` for ``address`` (None: a plain ``tcp://`` one).

        Raises:
            UsageError: Dask is not installed, or a ``tls://`` address without a CA and a
                certificate, given or configured.
        """
        if not address.startswith("tls://"):
            return None
        distributed = _distributed()
        given = {
            "tls_ca_file": self.ca,
            "tls_client_cert": self.cert,
            "tls_client_key": self.key,
        }
        kwargs = {name: str(path) for name, path in given.items() if path is not None}
        security = distributed.Security(require_encryption=True, **kwargs)
        if not security.tls_ca_file or not security.tls_client_cert:
            raise UsageError(
                f"--cluster {address}: a tls:// cluster needs a CA and a client certificate: "
                "--cluster-ca/--cluster-cert/--cluster-key, or distributed.comm.tls.ca-file and "
                "distributed.comm.tls.client.cert/key in Dask's configuration"
            )
        return security


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise UsageError(
            "--cluster needs Dask distributed: pip install 'wsload[cluster]'"
        ) from None
    return distributed


async def _check_reachable(address: str, security: Any) -> None:
    """Fail in seconds, not after Dask's connect retries, when nobody listens there or (TLS)
    the scheduler's certificate does not verify against the CA."""
    host, port = scheduler_address(address)
    with trio.move_on_after(_REACH_TIMEOUT):
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise ToolError(f"--cluster {address}: cannot reach the scheduler: {exc}") from None
        async with stream:
            if security is not None:
                await _check_certificate(address, stream, security)
        return
    raise ToolError(f"--cluster {address}: cannot reach the scheduler in {_REACH_TIMEOUT:g} s")


async def _check_certificate(address: str, stream: trio.SocketStream, security: Any) -> None:
    """One TLS handshake with Dask's own client context (its CA, this client's certificate)."""
    context: ssl.SSLContext = security.get_connection_args("client")["ssl_context"]
    tls = trio.SSLStream(stream, context, server_hostname=scheduler_address(address)[0])
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError as exc:
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError):
            raise ToolError(
                f"--cluster {address}: the scheduler's certificate does not verify against "
                f"the CA {security.tls_ca_file}: {cause.verify_message}"
            ) from None
        raise ToolError(f"--cluster {address}: TLS handshake failed: {cause or exc}") from None
    await tls.aclose()


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
    tls: ClusterTLS = field(default_factory=ClusterTLS)

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
        security = self.tls.security(address)
        await _check_reachable(address, security)
        feed.audit_from_schedule = True
        progress = feed.progress
        splits: list[SplitResults] = []
        shifts: list[float] = []

        def started(start_at: float, count: int) -> None:  # in the Trio thread
            if self.start_at is not None:  # pushed past a start that came too soon
                shifts.append(start_at - self.start_at)
            progress.started = trio.current_time() + (start_at - time.time())
            progress.planned_s = planned_end(scenario.load)
            splits.append(
                SplitResults(
                    count,
                    feed,
                    warning="cluster segment {segment} failed: {error}",
                    none_left=f"--cluster {address}: every segment failed",
                )
            )

        def live(items: list[Any]) -> None:  # in the Trio thread
            for index, intervals, share in items:
                for wire in intervals:
                    splits[0].live_interval(int(index), snapshot_from_wire(wire))
                splits[0].progress(int(index), share)

        hooks = _Hooks(
            on_start=lambda start_at, n: trio.from_thread.run_sync(started, start_at, n),
            on_live=lambda items: trio.from_thread.run_sync(live, items),
        )
        failure: WsloadError | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_forward, feed.stop, hooks.stop)
            nursery.start_soon(_forward, feed.hard_stop, hooks.hard_stop)
            try:
                outcomes = await trio.to_thread.run_sync(
                    _run_sync, scenario, url, address, security, self.count, self.start_at, hooks
                )
            except WsloadError as exc:  # raised bare, not in the nursery's exception group
                failure = exc
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure
        split = splits[0]
        for index, (segment, data, error) in enumerate(outcomes):
            if data is None:
                split.failed(segment, error or "")
            else:
                part = SegmentResult.from_wire(data["result"])
                for wire in data["intervals"]:
                    split.interval(index, segment, snapshot_from_wire(wire))
                split.result(part)
            split.ended(index)
        result = split.finish(scenario)
        result.start_shift_s = latest_shift((*shifts, result.start_shift_s))
        return result


async def _forward(event: trio.Event, flag: threading.Event) -> None:
    await event.wait()
    flag.set()
