"""``wsload run`` fitting the plan to this machine: workers, source addresses, file limit and
the built-in server's processes, decided from the plan so that nobody has to know the limits.

One process holds at most RLIMIT_NOFILE sockets, one source address has the ephemeral port
range's ports towards one target address (``net.ipv4.ip_local_port_range``), and one Trio loop
drives about one core's worth of cycles per second. ``preflight.py`` warns when a plan exceeds
them; this module removes the need for the warning where it can:

- **file limit**: running as root, the hard limit is raised to what the whole plan needs (at most
  ``fs.nr_open``); children inherit it.
- **workers** (only when ``--workers`` was not given, and the plan may be split): enough processes
  for the file limit, and for the planned connection rate at ``CPU_SHARE`` of one core's cycles
  per second each (``wsload calibrate``'s saved figure, else ``CYCLES_PER_CORE_ESTIMATE``), at
  most one per core for the rate.
- **source addresses** (a loopback target, none listed): ``127.0.0.1``, ``127.0.0.2``, ... until
  the open connections and their TIME_WAIT fit in ``PORT_SHARE`` of the port range each (the
  half that Linux's ``connect()`` searches first, with headroom).
- **built-in server processes** (``url = "builtin"``): one per generator process, and enough
  for the file limit.

Every decision is a sentence printed once (``Sizing.notes``) and a figure in summary.json
(``generator.workers``, ``generator.file_limit``, ``target.source_addresses``,
``target.server_processes``; docs/results.md). ``size`` is pure; ``Limits.here`` reads the
machine.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wsload.process import raise_nofile_limit
from wsload.runner.modes.preflight import FD_RESERVE, Plan, plan_of, read_port_range
from wsload.scenario.model import Scenario

__all__ = [
    "CPU_SHARE",
    "CYCLES_PER_CORE_ESTIMATE",
    "PORT_SHARE",
    "Limits",
    "Sizing",
    "apply_file_limit",
    "calibration_path",
    "save_calibration",
    "size",
]

CYCLES_PER_CORE_ESTIMATE = 3000.0
"""Clean-close cycles/s one generator process drives per core when nothing was calibrated:
``wsload calibrate`` measured 2,900-3,700 on this project's 2-core machine (docs/performance.md)."""

CPU_SHARE = 0.6
"""The share of one core's cycles a worker is planned for: the rest is room for the loop's
wake-ups, the built-in server sharing the cores and the release's burst (under the saturation
line)."""

PORT_SHARE = 0.45
"""The share of a source address's ephemeral ports a plan may use: 90 % of one half of the range.

Linux's ``connect()`` (since 4.6) picks a source port among the range's ports of one parity
first and turns to the other half only after scanning every port of the first: once one address
holds half the range towards one target, each further connect walks ~14,000 ports in the kernel.
Measured on this project's 2-core machine (range 32768-60999, one source address): 36 µs per
loopback connect up to 14,000 open, 1,360 µs from 14,116 on, a third of a 100,000-connection
storm's generator CPU. The 10 % left of the half is for others on the machine."""

_NR_OPEN = Path("/proc/sys/fs/nr_open")
_STATUS = Path("/proc/self/status")
_CAP_SYS_RESOURCE = 24
_MAX_SOURCES = 254


def calibration_path() -> Path:
    """Where ``wsload calibrate`` saves its figure: ``$WSLOAD_CALIBRATION`` if set, else
    ``$XDG_CACHE_HOME/wsload/calibration.json`` (``~/.cache/wsload/...`` by default)."""
    given = os.environ.get("WSLOAD_CALIBRATION")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wsload" / "calibration.json"


def save_calibration(cycles_per_s_per_core: float) -> Path:
    """Keep ``wsload calibrate``'s figure for later runs' sizing; the path written."""
    path = calibration_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cycles_per_s_per_core": round(cycles_per_s_per_core)}) + "\n")
    return path


def _saved_cycles() -> float | None:
    try:
        value = float(json.loads(calibration_path().read_text())["cycles_per_s_per_core"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if value > 0 else None


def _may_raise_limits() -> bool:
    """This process has CAP_SYS_RESOURCE (root, unless it was dropped): it may raise its hard
    file limit up to ``fs.nr_open``."""
    try:
        for line in _STATUS.read_text(encoding="ascii").splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> _CAP_SYS_RESOURCE & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


@dataclass(frozen=True, slots=True)
class Limits:
    """What this machine gives one run.

    Attributes:
        nofile: the hard file limit now.
        nofile_max: how far it may be raised (root: ``fs.nr_open``); None: it may not.
        port_range: the ephemeral port range (None: unknown, no source addresses chosen).
        cores: CPUs this process may run on.
        cycles_per_core: clean-close cycles/s one process drives per core.
        calibrated: ``cycles_per_core`` is ``wsload calibrate``'s saved figure (else the
            built-in estimate).
    """

    nofile: int
    nofile_max: int | None
    port_range: tuple[int, int] | None
    cores: int
    cycles_per_core: float = CYCLES_PER_CORE_ESTIMATE
    calibrated: bool = False

    @classmethod
    def here(cls) -> Limits:
        """This process's limits."""
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        hard = hard if hard != resource.RLIM_INFINITY else 2**31
        nofile_max = None
        if _may_raise_limits():
            try:
                nofile_max = int(_NR_OPEN.read_text(encoding="ascii"))
            except (OSError, ValueError):
                nofile_max = None
        saved = _saved_cycles()
        return cls(
            nofile=hard,
            nofile_max=nofile_max,
            port_range=read_port_range(),
            cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1,
            cycles_per_core=saved or CYCLES_PER_CORE_ESTIMATE,
            calibrated=saved is not None,
        )


@dataclass(frozen=True, slots=True)
class Sizing:
    """What a run uses of the machine, and the sentences saying what was decided.

    Attributes:
        workers: generator processes.
        file_limit: the hard file limit for the run's processes (raised when ``raised``).
        raised: the hard limit must be raised to ``file_limit`` (``apply_file_limit``).
        source_addresses: the connections' source addresses (the scenario's, or chosen).
        server_processes: processes of the built-in server (None: another target).
        notes: each decision, printed once and kept in summary.json.
    """

    workers: int
    file_limit: int
    raised: bool
    source_addresses: tuple[str, ...]
    server_processes: int | None
    notes: tuple[str, ...] = ()

    def apply(self, scenario: Scenario) -> Scenario:
        """The scenario the load runs: with the chosen source addresses."""
        if scenario.target.source_addresses == self.source_addresses:
            return scenario
        return replace(
            scenario, target=replace(scenario.target, source_addresses=self.source_addresses)
        )

    def summary(self, workers: int) -> dict[str, Any]:
        """summary.json's ``generator`` and ``target`` entries of the sizing; ``workers``: the
        generator processes that ran on this machine."""
        return {
            "generator": {
                "workers": workers,
                "file_limit": self.file_limit,
                "decisions": list(self.notes),
            },
            "target": {
                "source_addresses": list(self.source_addresses),
                "server_processes": self.server_processes,
            },
        }


def _cycles_per_s(scenario: Scenario, plan: Plan) -> float:
    """Connections the plan opens per second at its peak (0: not a rate the plan sets)."""
    load = scenario.load
    rates = [load.rate or 0.0, *(stage.rate or 0.0 for stage in load.stages)]
    if load.model in ("arrival", "storm"):
        return max(rates)
    if load.model == "concurrency":
        session = scenario.session
        life = max(0.1, session.hold.max + session.messages * session.message_interval)
        return plan.peak / life
    return 0.0


def _loopback(scenario: Scenario) -> bool:
    target = scenario.target
    if target.is_builtin:
        return True
    host = urlsplit(target.url.replace("{port}", "0")).hostname or ""
    return host == "localhost" or host.startswith("127.")


def size(scenario: Scenario, limits: Limits, *, workers: int | None, split: bool = True) -> Sizing:
    """Fit ``scenario`` to ``limits``.

    Args:
        workers: the ``--workers`` given (it always wins); None: decide.
        split: the plan may run in several processes (not a search, a ``--segment``, a
            cluster or ``--record-connections``).
    """
    plan = plan_of(scenario)
    notes: list[str] = []
    nofile, raised = limits.nofile, False
    need = plan.peak + FD_RESERVE
    if need > nofile and limits.nofile_max is not None and limits.nofile_max > nofile:
        new = min(limits.nofile_max, need)
        notes.append(
            f"raised the hard file limit from {nofile:,} to {new:,} (running as root): "
            f"{plan.peak:,} connections open at once"
        )
        nofile, raised = new, True
    per_process = max(1, nofile - FD_RESERVE)
    for_files = math.ceil(plan.peak / per_process)
    rate = _cycles_per_s(scenario, plan)
    per_worker = limits.cycles_per_core * CPU_SHARE
    for_cpu = min(limits.cores, math.ceil(rate / per_worker)) if rate > 0 else 1
    chosen = workers or 1
    if workers is None and split:
        chosen = max(1, for_files, for_cpu)
        if chosen > 1:
            why = []
            if for_files > 1:
                why.append(f"{plan.peak:,} connections over one process's file limit of {nofile:,}")
            if for_cpu > 1:
                source = "wsload calibrate's" if limits.calibrated else "the built-in estimate of"
                why.append(
                    f"{rate:,.0f} connections/s over {CPU_SHARE:.0%} of one core "
                    f"({source} {limits.cycles_per_core:,.0f} cycles/s per core)"
                )
            notes.append(f"{chosen} generator processes (--workers {chosen}): {'; '.join(why)}")
    sources = scenario.target.source_addresses
    if not sources and limits.port_range is not None and _loopback(scenario):
        low, high = limits.port_range
        usable = max(1, math.floor((high - low + 1) * PORT_SHARE))
        count = min(_MAX_SOURCES, math.ceil((plan.peak + plan.time_wait) / usable))
        if count > 1:
            sources = tuple(f"127.0.0.{i}" for i in range(1, count + 1))
            notes.append(
                f"source addresses 127.0.0.1-127.0.0.{count}: {plan.peak + plan.time_wait:,} "
                f"ports in use at once, {usable:,} per address ({low}-{high}, "
                f"{PORT_SHARE:.0%} of it: connect() searches one half first)"
            )
    server = None
    if scenario.target.is_builtin:
        server = max(1, chosen, for_files)
        if server > 1:
            notes.append(
                f"the built-in server in {server} processes (one port, SO_REUSEPORT): "
                f"{math.ceil(plan.peak / server):,} connections each"
            )
    return Sizing(chosen, nofile, raised, tuple(sources), server, tuple(notes))


def apply_file_limit(sizing: Sizing) -> int:
    """Raise this process's hard and soft file limit as ``sizing`` says (children inherit
    it), else the soft limit to the hard one; the soft limit now."""
    if sizing.raised:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (sizing.file_limit, sizing.file_limit))
    return raise_nofile_limit()
