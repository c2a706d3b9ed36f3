"""A run's deploy side: the managed server process, its timed events and their audit, and the
logical clients of ``[reconnect]``.

``open_deploy`` is the one hook the run mode (``runner/modes/run.py``) needs: it starts the
``[target.process]`` server (or takes the built-in one, whose events are its shutdown storms);
``DeployRun.run`` fires each ``[[target.process.events]]`` signal at its time from the start of
the load and keeps the server restarted; every connection record goes to the pure audits
(``EventAudit``, ``ReconnectAudit``), which give summary.json its ``events``,
``server_process`` and ``reconnect`` entries. In a run split over ``--workers`` the records
stay in the workers: each event's instant is announced to them (``LoadFeed.on_event``) and
their tallies come back on the merged result (``wsload.metrics.audits``), added here. The
tasks of ``--cluster`` cannot be told while they run: they and this audit count from each
event's planned instant instead (``LoadFeed.audit_from_schedule``). So do ``--segment`` runs,
which never talk to each other: the one with ``--own-server`` starts the server on its fixed
port and fires the events at ``--start-at`` + ``at``, the others only connect to it, and
``merged_deploy`` puts their summaries together for ``wsload merge``.
``check_deploy`` (``options.py``) refuses the options these cannot work with.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

from wsload.core.record import ConnectionRecord
from wsload.errors import UsageError
from wsload.metrics.events import EventAudit
from wsload.metrics.reconnects import ReconnectAudit
from wsload.metrics.result import SegmentResult
from wsload.report.redact import redact_text
from wsload.runner.executors.executor import LoadFeed, chain_records
from wsload.runner.targets.managed import ManagedProcess, clients_on, open_managed
from wsload.runner.targets.target import BuiltinTarget
from wsload.scenario.model import Scenario

__all__ = ["DeployRun", "check_deploy", "merged_deploy", "open_deploy"]

_START_POLL = 0.005
_CLIENTS_POLL = 0.1


def check_deploy(
    scenario: Scenario,
    *,
    segment: bool = False,
    start_at: float | None = None,
    own_server: bool = False,
) -> None:
    """Refuse what the audit cannot do.

    Args:
        segment: the run is one share of the load (``--segment``): the other shares run
            elsewhere, on their own, and agree with this one only through the scenario and
            ``--start-at``.
        start_at: the common start (``--start-at``): with ``--segment``, every share counts
            the events' instants from it.
        own_server: this share starts ``[target.process]`` (``--own-server``); the others
            connect to its fixed port.

    Raises:
        UsageError: what a split cannot agree on (events without ``--start-at``, a server
            port only its owner would know), ``--own-server`` without a server to own or
            outside ``--segment``, or a deploy in a capacity search.
    """
    if scenario.reconnect is not None and scenario.load.model == "search":
        raise UsageError("[reconnect] does not apply to a capacity search (yet)")
    process = scenario.target.process
    managed = process is not None and not scenario.target.is_builtin
    if own_server and not segment:
        raise UsageError(
            "--own-server: only a --segment run shares its server (a whole run always starts "
            "[target.process] itself): add --segment i/N or drop --own-server"
        )
    if own_server and not managed:
        raise UsageError("--own-server: the scenario has no [target.process] command to start")
    if process is None:
        return
    if scenario.load.model == "search":
        raise UsageError("target.process: a capacity search cannot manage the server (yet)")
    if not segment:
        return
    if process.events and start_at is None:
        raise UsageError(
            "target.process.events with --segment need --start-at: every segment counts the "
            "events' instants from that common start"
        )
    if managed and process.port == 0:
        raise UsageError(
            "target.process.port: --segment needs the server's fixed port (every segment "
            "connects to it; 0 picks one only the --own-server segment would know): set it in "
            "the scenario or with --set target.process.port=PORT on every segment"
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
        """Send each event's signal at its time from the start of the load (``feed.origin``
        when the start is agreed with other segments, else ``feed.progress.started``), and
        announce it to the generator processes that audit their own connections. A segment
        that owns no server counts each event as sent at its planned instant (``--segment``
        without ``--own-server``: another segment sends it then)."""
        progress = feed.progress
        while feed.origin is None and progress.started <= 0:
            await trio.sleep(_START_POLL)
        origin = feed.origin if feed.origin is not None else progress.started
        self.load_started = self.audit.origin = origin
        for index, event in enumerate(self.events):
            if self.managed is None and self.builtin is None:
                self.audit.announce(index, origin + event.at)
                continue
            await trio.sleep_until(origin + event.at)
            sent = trio.current_time()
            pid: int | None
            if self.managed is not None:
                pid = self.managed.send(event.signal)
            else:
                assert self.builtin is not None
                pid = self.builtin.pid
                await self.builtin.storm()
            if feed.audit_from_schedule:  # as a Dask task or a --segment audits it
                sent = origin + event.at
            self.audit.signal_sent(index, sent, pid)
            if feed.on_event is not None:
                feed.on_event(index, None if pid is None else sent - origin)

    async def outlast_segments(self, bound: float, stop: trio.Event) -> None:
        """Keep the server up (at most ``bound`` seconds, or until ``stop``) while clients are
        connected to it: an ``--own-server`` segment whose own load ended must not cut the
        other segments' connections (they end on their own, a moment earlier or later, and
        cannot say so). Linux only (the kernel's TCP tables); elsewhere it does not wait."""
        managed = self.managed
        if managed is None:
            return
        with trio.move_on_after(bound):
            while clients_on(managed.port) and not stop.is_set():
                await trio.sleep(_CLIENTS_POLL)

    def on_record(self, record: ConnectionRecord) -> None:
        if self.events:
            self.audit.add(record)
        if self.reconnects is not None:
            self.reconnects.add(record)

    def chain(
        self, other: Callable[[ConnectionRecord], None] | None
    ) -> Callable[[ConnectionRecord], None]:
        """A record callback that feeds this run's audits, then ``other`` (if any)."""
        return chain_records(self.on_record, other)

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
                        "stopped_by_wsload": (
                            run.exited is not None and stopped is not None and run.exited > stopped
                        ),
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


def merged_deploy(
    scenario: Scenario, part: SegmentResult, summaries: list[Mapping[str, Any]]
) -> dict[str, Any]:
    """summary.json's ``events``, ``server_process`` and ``reconnect`` of merged segments
    (``wsload merge``): ``part`` has their tallies added; ``summaries`` are theirs.

    Which events were sent, to which pid, and when that process exited is the server
    owner's word (the ``--own-server`` segment, whose summary has ``server_process``); with
    ``url = "builtin"`` every segment ran its own server and the first one's word is taken.
    A merge without the owner counts every event from its planned instant, without pid or
    exit (a warning says so).

    Raises:
        UsageError: more than one segment owned the server.
    """
    out: dict[str, Any] = {}
    owners = [s for s in summaries if s.get("server_process") is not None]
    if len(owners) > 1:
        raise UsageError(
            f"merge: {len(owners)} segments started the server (--own-server): one should"
        )
    if owners:
        out["server_process"] = owners[0]["server_process"]
    process = scenario.target.process
    if process is not None and process.events and part.events is not None:
        audit = EventAudit(tuple((e.at, e.signal) for e in process.events))
        sources = owners or ([] if process.command else list(summaries))
        if not sources:
            sys.stderr.write(
                "wsload: warning: no segment started the server (--own-server): the events "
                "are counted from their planned instants, without pid or exit\n"
            )
        for index, event in enumerate(audit.events):
            told = [s["events"][index] for s in sources if len(s.get("events") or ()) > index]
            sent = [entry for entry in told if entry.get("pid") is not None]
            if sent:
                event.pid, event.status = int(sent[0]["pid"]), sent[0].get("exit_status")
                exit_s = sent[0].get("exit_s")
                event.exited = None if exit_s is None else float(exit_s)
            if sent or not sources:  # on the signal's own scale: sent at 0
                audit.announce(index, 0.0)
        audit.absorb(part.events)
        out["events"] = audit.finish()
    if part.reconnect is not None:
        out["reconnect"] = part.reconnect.as_dict()
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
    *,
    owner: bool = True,
) -> tuple[str | None, DeployRun | None]:
    """Start the managed server (stopped when ``stack`` closes); its URL and the deploy run.

    Returns ``(None, None)`` without ``[target.process]`` and ``[reconnect]``; the URL is None
    unless wsload manages the server (the caller already has the others'). ``owner`` False
    (a ``--segment`` without ``--own-server``): another segment starts the server, on the
    scenario's fixed port, and fires its events; this run only connects to it.
    """
    process = scenario.target.process
    if process is None:
        return None, (DeployRun(scenario, None, None) if scenario.reconnect is not None else None)
    if scenario.target.is_builtin:
        return None, DeployRun(scenario, None, builtin)
    if not owner:
        return scenario.target.url.replace("{port}", str(process.port)), DeployRun(
            scenario, None, None
        )
    managed = await stack.enter_async_context(open_managed(process, scenario.target.url, out_dir))
    return managed.url, DeployRun(scenario, managed, None)
