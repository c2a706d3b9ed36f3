"""Pre-flight: will the plan fit this machine's file and port limits? Warnings that name the fix.

Every open connection is one file descriptor in the generator process (and one in the target's,
when the built-in server holds them in its single process), and one ephemeral port per source
address towards one target address. A client that closes TCP first (``terminate`` with FIN,
``close_no_wait``) also keeps each of its closed sockets in TIME_WAIT for ~60 s, still holding
the port. When the plan needs more than the limits give, connections fail during the run with
EMFILE / EADDRNOTAVAIL (recorded as ``local_resource``); saying so *before* the run, with the
fix, saves a wasted run. The estimates are deliberately simple (documented in
docs/scale-out.md); the checks themselves are pure functions of the plan and the limits.
"""

from __future__ import annotations

import math
import resource
from dataclasses import dataclass
from pathlib import Path

from wsload.runner.modes.search_levels import step_scenario
from wsload.scenario.model import Scenario

__all__ = [
    "FD_RESERVE",
    "TIME_WAIT_S",
    "Plan",
    "check",
    "check_scenario",
    "estimate",
    "plan_of",
    "read_port_range",
]

FD_RESERVE = 64
"""Descriptors a process needs besides its connections (stdio, epoll, pipes, files)."""

TIME_WAIT_S = 60.0
"""Linux keeps a socket that closed first in TIME_WAIT for 60 s (TCP_TIMEWAIT_LEN)."""

_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_SESSION_FLOOR_S = 0.1


@dataclass(frozen=True, slots=True)
class Plan:
    """What the scenario asks of the machine (all processes together).

    Attributes:
        peak: connections open at the same time.
        time_wait: sockets the client leaves in TIME_WAIT at the worst moment.
        total: connections attempted in all (None: unbounded by count).
    """

    peak: int
    time_wait: int
    total: int | None


def _client_closes_first(scenario: Scenario) -> float:
    """Share of the close mix whose TCP close comes from the client with a FIN."""
    weights = sum(spec.weight for spec in scenario.close)
    first = sum(
        spec.weight
        for spec in scenario.close
        if (spec.kind == "terminate" and not spec.rst) or spec.kind == "close_no_wait"
    )
    return first / weights if weights else 0.0


def estimate(scenario: Scenario) -> Plan:
    """Peak concurrency, TIME_WAIT build-up and total connections of the plan.

    Storm and concurrency models say their peak; for arrivals it is the peak rate times a
    connection's expected life (hold + message pacing), capped by ``max_in_flight``.
    """
    load, session = scenario.load, scenario.session
    tw_share = _client_closes_first(scenario)
    life = max(_SESSION_FLOOR_S, session.hold.max + session.messages * session.message_interval)
    if load.model == "storm":
        peak = load.concurrency or 0
        return Plan(peak, math.ceil(peak * tw_share), peak)
    if load.model == "concurrency":
        peak = max([load.concurrency or 0, *(s.concurrency or 0 for s in load.stages)])
        per_s = peak / life
        total = load.connections
    else:
        per_s = max([load.rate or 0.0, *(s.rate or 0.0 for s in load.stages)])
        peak = min(load.max_in_flight, math.ceil(per_s * life))
        total = load.connections
        if load.connections is not None:
            peak = min(peak, load.connections)
    time_wait = math.ceil(per_s * tw_share * TIME_WAIT_S)
    if total is not None:
        time_wait = min(time_wait, math.ceil(total * tw_share))
    return Plan(peak, time_wait, total)


def check(
    scenario: Scenario,
    plan: Plan,
    *,
    processes: int,
    nofile: int,
    port_range: tuple[int, int] | None,
    server_processes: int = 1,
) -> list[str]:
    """Warnings (empty when the plan fits), each naming its fix."""
    out: list[str] = []
    per_process = math.ceil(plan.peak / max(1, processes))
    if per_process + FD_RESERVE > nofile:
        needed = math.ceil(plan.peak / max(1, nofile - FD_RESERVE))
        more = (
            "lower the search's `max` (a search runs in one process)"
            if scenario.load.model == "search"
            else "lower the load (its reconnects or deploy events need one process)"
            if scenario.reconnect is not None
            or (scenario.target.process is not None and scenario.target.process.events)
            else f"use --workers {needed} or more (each process has its own limit)"
        )
        out.append(
            f"{per_process:,} connections open at once per generator process need about "
            f"{per_process + FD_RESERVE:,} file descriptors, but the limit is {nofile:,}: "
            f"{more}, or raise the hard limit (ulimit -Hn, systemd LimitNOFILE)"
        )
    servers = max(1, server_processes)
    per_server = math.ceil(plan.peak / servers)
    if scenario.target.is_builtin and per_server + FD_RESERVE > nofile:
        held = "one process holding" if servers == 1 else f"{servers} processes holding"
        out.append(
            f"the built-in server is {held} {per_server:,} connections"
            f"{' each' if servers > 1 else ''}, over the file limit of {nofile:,}: use an "
            "external target with several processes (`wsload serve --processes N`, a Node ws "
            "cluster)"
        )
    if port_range is not None:
        low, high = port_range
        sources = max(1, len(scenario.target.source_addresses))
        ports = (high - low + 1) * sources
        if plan.peak > ports:
            needed = math.ceil(plan.peak / (high - low + 1))
            out.append(
                f"{plan.peak:,} connections open at once to one target address need more than "
                f"the {ports:,} ephemeral ports ({low}-{high} × {sources} source address(es)): "
                f"list {needed} or more `source_addresses` (127.0.0.2, 127.0.0.3, ... on "
                "loopback) or widen net.ipv4.ip_local_port_range"
            )
        elif plan.time_wait and plan.peak + plan.time_wait > ports:
            out.append(
                f"closing TCP first (terminate with FIN, close_no_wait) leaves about "
                f"{plan.time_wait:,} sockets in TIME_WAIT for {TIME_WAIT_S:.0f} s; with "
                f"{plan.peak:,} open that exceeds the {ports:,} ephemeral ports: use "
                "`rst = true` on terminate (RST leaves no TIME_WAIT), more `source_addresses`, "
                "or a lower rate"
            )
    return out


def read_port_range(path: Path = _PORT_RANGE) -> tuple[int, int] | None:
    """The ephemeral port range (Linux), or None where it cannot be read."""
    try:
        low, high = (int(part) for part in path.read_text(encoding="ascii").split())
    except (OSError, ValueError):
        return None
    return (low, high) if low <= high else None


def plan_of(scenario: Scenario) -> Plan:
    """``estimate`` of the plan; for a search, of the highest level it may reach (where the
    limits bite)."""
    if scenario.load.search is not None:
        return estimate(step_scenario(scenario, scenario.load.search.max))
    return estimate(scenario)


def check_scenario(
    scenario: Scenario, *, processes: int, nofile: int | None = None, server_processes: int = 1
) -> list[str]:
    """``check`` against this machine's port range and ``nofile`` (default: the hard file
    limit, which ``wsload run`` raises the soft limit to)."""
    if nofile is None:
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nofile = nofile if nofile != resource.RLIM_INFINITY else 2**31
    return check(
        scenario,
        plan_of(scenario),
        processes=processes,
        nofile=nofile,
        port_range=read_port_range(),
        server_processes=server_processes,
    )
