"""A run's deploy side: the managed server process, its timed events and their audit, and the
logical clients of ``[reconnect]``.

``open_deploy`` is the one hook the run mode (``runner/run.py``) needs: it starts the
``[target.process]`` server (or takes the built-in one, whose events are its shutdown storms);
``DeployRun.run`` fires each ``[[target.process.events]]`` signal at its time from the start of
the load and keeps the server restarted; every connection record goes to the pure audits
(``EventAudit``, ``ReconnectAudit``), which give summary.json its ``events``,
``server_process`` and ``reconnect`` entries. In a run split over ``--workers`` the records
stay in the workers: each event's instant is announced to them (``LoadFeed.on_event``) and
their tallies come back on the merged result (``wsload.metrics.audits``), added here. The
tasks of ``--cluster`` cannot be told while they run: they and this audit count from each
event's planned instant instead (``LoadFeed.audit_from_schedule``).
``check_deploy`` (``options.py``) refuses the options these cannot work with.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from wsload.core.record import ConnectionRecord
from wsload.errors import UsageError
from wsload.metrics.events import EventAudit
from wsload.metrics.reconnects import ReconnectAudit
from wsload.metrics.result import SegmentResult
from wsload.report.redact import redact_text
from wsload.runner.targets.managed import ManagedProcess, open_managed
from wsload.runner.targets.target import BuiltinTarget
from wsload.scenario.model import Scenario

if TYPE_CHECKING:
    from wsload.runner.executors.executor import LoadFeed

__all__ = ["DeployRun", "check_deploy", "open_deploy"]

_START_POLL = 0.005


def check_deploy(scenario: Scenario, *, elsewhere: bool) -> None:
    """Refuse what the audit cannot do: the coordinator must own the server and the load.

    Args:
        elsewhere: the run is one share of the load (``--segment``): other processes run
            the rest, and nobody here owns the server.

    Raises:
        UsageError: events or ``[reconnect]`` with ``--segment``, or either of them or a
            managed process in a capacity search.
    """
    if scenario.reconnect is not None and scenario.load.model == "search":
        raise UsageError("[reconnect] does not apply to a capacity search (yet)")
    if scenario.reconnect is not None and elsewhere:
        raise UsageError(
            "[reconnect]: its logical clients are audited by this run's own generator "
            "processes: drop --segment (--workers and --cluster work)"
        )
    process = scenario.target.process
    if process is None:
        return
    if scenario.load.model == "search":
        raise UsageError("target.process: a capacity search cannot manage the server (yet)")
    if process.events and elsewhere:
        raise UsageError(
            "target.process.events are fired and audited by this run's own generator "
            "processes: drop --segment (--workers and --cluster work)"
        )


class DeployRun:
    """The managed process (or built-in server), the audit of its events and the reconnects of
    one run."""

    def __init__(
        self,
        scenario: Scenario,
        managed: ManagedProcess | None,
        builtin: BuiltinTarget | None,
    ) -> None:
        process = scenario.target.process
        self.events = process.events if process is not None else ()
        self.managed = managed
        self.builtin = builtin
        self.audit = EventAudit(tuple((e.at, e.signal) for e in self.events))
        reconnect = scenario.reconnect
        self.reconnects = ReconnectAudit(reconnect) if reconnect is not None else None
        self.load_started: float | None = None

    async def run(self, feed: LoadFeed) -> None:
        """While the load runs: fire the events and keep the managed process (re)started."""
        async with trio.open_nursery() as nursery:
            if self.managed is not None:
                nursery.start_soon(self.managed.supervise)
            await self.fire_events(feed)

    async def fire_events(self, feed: LoadFeed) -> None:
        """Send each event's signal at its time from the start of the load (``feed.progress``),
        and announce it to the generator processes that audit their own connections."""
        progress = feed.progress
        while progress.started <= 0:
            await trio.sleep(_START_POLL)
        self.load_started = self.audit.origin = progress.started
        for index, event in enumerate(self.events):
            await trio.sleep_until(progress.started + event.at)
            sent = trio.current_time()
            pid: int | None
            if self.managed is not None:
                pid = self.managed.send(event.signal)
            else:
                assert self.builtin is not None
                pid = self.builtin.pid
                await self.builtin.storm()
            if feed.audit_from_schedule:  # as the segments audit it (``runner/cluster.py``)
                sent = progress.started + event.at
            self.audit.signal_sent(index, sent, pid)
            if feed.on_event is not None:
                feed.on_event(index, None if pid is None else sent - progress.started)

    def on_record(self, record: ConnectionRecord) -> None:
        if self.events:
            self.audit.add(record)
        if self.reconnects is not None:
            self.reconnects.add(record)

    def chain(
        self, other: Callable[[ConnectionRecord], None] | None
    ) -> Callable[[ConnectionRecord], None]:
        """A record callback that feeds this run's audits, then ``other`` (if any)."""
        if other is None:
            return self.on_record

        def both(record: ConnectionRecord) -> None:
            self.on_record(record)
            other(record)

        return both

    def summary(self, part: SegmentResult) -> dict[str, Any]:
        """summary.json's ``events``, ``server_process`` and ``reconnect`` (docs/results.md);
        ``part``: the load's result, with the workers' tallies when they audited."""
        out: dict[str, Any] = {}
        if part.events is not None:
            self.audit.absorb(part.events)
        origin = self.load_started
        managed = self.managed
        if managed is not None:
            stopped = managed.stop_sent
            for run in managed.runs:
                # wsload's own stop at the end is not an event's doing
                if run.exited is not None and (stopped is None or run.exited <= stopped):
                    self.audit.process_exited(run.pid, run.exited, run.status)
            out["server_process"] = {
                "command": [redact_text(arg) for arg in managed.argv],
                "port": managed.port,
                "restarts": managed.restarts,
                "runs": [
                    {
                        "pid": run.pid,
                        "started_s": _since(origin, run.started),
                        "ready_s": _since(origin, run.ready),
                        "exit_s": _since(origin, run.exited),
                        "exit_status": run.status,
                    }
                    for run in managed.runs
                ],
            }
        if self.events:
            out["events"] = self.audit.finish()
        if part.reconnect is not None:
            out["reconnect"] = part.reconnect.as_dict()
        elif self.reconnects is not None:
            out["reconnect"] = self.reconnects.as_dict()
        return out


def _since(origin: float | None, moment: float | None) -> float | None:
    """Seconds from the start of the load (negative: before it), rounded to µs."""
    if origin is None or moment is None:
        return None
    return round(moment - origin, 6)


async def open_deploy(
    stack: AsyncExitStack,
    scenario: Scenario,
    out_dir: Path,
    builtin: BuiltinTarget | None,
) -> tuple[str | None, DeployRun | None]:
    """Start the managed server (stopped when ``stack`` closes); its URL and the deploy run.

    Returns ``(None, None)`` without ``[target.process]`` and ``[reconnect]``; the URL is None
    unless wsload started the server (the caller already has the others').
    """
    process = scenario.target.process
    if process is None:
        return None, (DeployRun(scenario, None, None) if scenario.reconnect is not None else None)
    if scenario.target.is_builtin:
        return None, DeployRun(scenario, None, builtin)
    managed = await stack.enter_async_context(open_managed(process, scenario.target.url, out_dir))
    return managed.url, DeployRun(scenario, managed, None)
