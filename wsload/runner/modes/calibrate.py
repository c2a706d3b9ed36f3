"""How many clean-close cycles per second this machine's wsload can drive: ``wsload calibrate``.

A *cycle* is one whole connection: TCP connect, upgrade, one 64-byte message echoed, clean close
(our Close, the server's Close, the server's TCP EOF), recorded exactly as a real run records it
(the runner's concurrency model, ``Collector``, lag monitor, intervals). What is measured is the
generator's own CPU time (user + sys from ``getrusage`` around the run, start-up excluded), not
wall time: on a shared or busy machine wall time measures the neighbours, CPU time measures us.
``1e6 / cpu_us_per_cycle`` is then what one process can drive per core when the target keeps up.

The target runs in its own process on another core (``sched_setaffinity``): the built-in server
for ``wsload calibrate``, any ``ws://`` URL (e.g. Node ``ws``) for ``benchmarks/cycle.py``, which
uses :func:`measure_cycles` for its wsload figure.
"""

from __future__ import annotations

import gc
import os
import resource
import statistics
from dataclasses import dataclass, field
from typing import Any

import trio

from wsload.core.kinds import CloseKind
from wsload.engine.context import DriverContext
from wsload.metrics.collector import Collector
from wsload.metrics.histograms import histogram_stats
from wsload.report._format import format_us
from wsload.runner.load.lag import SATURATION_US
from wsload.runner.load.loop import run_load
from wsload.runner.targets.target import BuiltinTarget
from wsload.scenario.model import (
    CloseSpec,
    LoadConfig,
    Scenario,
    ServerConfig,
    SessionConfig,
    TargetConfig,
)

__all__ = [
    "Calibration",
    "CycleRun",
    "calibrate",
    "cycle_scenario",
    "measure_cycles",
    "pin_cpus",
    "render",
]

_WARMUP = 100
"""Cycles run (and discarded) before measuring: imports, caches, first allocations."""


def cycle_scenario(url: str, cycles: int, concurrency: int, rate: float | None = None) -> Scenario:
    """The benchmark cycle as a scenario: ``cycles`` connections, ``concurrency`` at a time.

    With ``rate``, the same cycles open loop instead (``arrival`` at ``rate`` per second), to
    measure what the schedule costs per connection against the closed loop.
    """
    load = (
        LoadConfig(model="concurrency", concurrency=concurrency, connections=cycles)
        if rate is None
        else LoadConfig(model="arrival", rate=rate, connections=cycles)
    )
    return Scenario(
        name="calibrate",
        source="calibrate",
        seed=1,
        target=TargetConfig(url=url),
        load=load,
        session=SessionConfig(messages=1, message_size=64),
        close=(CloseSpec(kind=CloseKind.CLEAN, label="clean", timeout=5.0),),
    )


@dataclass(frozen=True, slots=True)
class CycleRun:
    """One measured run of ``cycles`` cycles.

    Attributes:
        cycles: connections made (all recorded).
        clean: how many ended with the ``clean`` outcome (anything else makes the run suspect).
        user_s / sys_s: the client process's CPU seconds during the run.
        wall_s: run-clock seconds from start to the end of the drain.
        loop_lag: the lag monitor's statistics (µs: count, p50, p99, max, ...).
    """

    cycles: int
    clean: int
    user_s: float
    sys_s: float
    wall_s: float
    loop_lag: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_us_per_cycle(self) -> float:
        return (self.user_s + self.sys_s) * 1e6 / max(1, self.cycles)

    @property
    def cycles_per_s(self) -> float:
        return self.cycles / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "cycles": self.cycles,
            "clean": self.clean,
            "cpu_us_per_cycle": round(self.cpu_us_per_cycle, 1),
            "user_us_per_cycle": round(self.user_s * 1e6 / max(1, self.cycles), 1),
            "sys_us_per_cycle": round(self.sys_s * 1e6 / max(1, self.cycles), 1),
            "cycles_per_s": round(self.cycles_per_s, 1),
            "wall_s": round(self.wall_s, 3),
            "loop_lag_us": self.loop_lag,
        }


async def _run_once(
    url: str, cycles: int, concurrency: int, rate: float | None
) -> tuple[Collector, Any, float, float]:
    scenario = cycle_scenario(url, cycles, concurrency, rate)
    ctx = DriverContext.create(scenario.target, scenario.session, url, seed=1)
    collector = Collector(labels=("clean",))
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF)
    load_run = await run_load(scenario, ctx, collector)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return collector, load_run, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


async def measure_cycles(
    url: str, cycles: int, concurrency: int = 20, rate: float | None = None
) -> CycleRun:
    """Run ``cycles`` clean-close cycles against ``url`` (after a short warm-up) and measure.

    Call inside ``trio.run``. The target must echo data messages and answer a Close normally.
    ``rate``: open loop at this many connections/s instead of ``concurrency`` slots.
    """
    await _run_once(url, min(_WARMUP, cycles), min(concurrency, cycles), rate)
    collector, load_run, user, sys_ = await _run_once(url, cycles, concurrency, rate)
    counts = collector.counts()
    return CycleRun(
        cycles=counts.attempted,
        clean=counts.outcomes.get("clean", 0),
        user_s=user,
        sys_s=sys_,
        wall_s=load_run.ended - load_run.started,
        loop_lag=histogram_stats(load_run.lag.loop_lag),
    )


def pin_cpus(target_pid: int | None) -> int | None:
    """Put ``target_pid`` on the first allowed CPU and this process on another one.

    Returns the CPU this process now runs on (None when there is only one CPU, or the platform
    has no ``sched_setaffinity``: then nothing is pinned).
    """
    setaffinity = getattr(os, "sched_setaffinity", None)
    if setaffinity is None:
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    try:
        if target_pid is not None:
            setaffinity(target_pid, {cpus[0]})
        setaffinity(0, {cpus[1]})
    except OSError:
        return None
    return cpus[1]


@dataclass(frozen=True, slots=True)
class Calibration:
    """``wsload calibrate``'s result: ``runs`` measured runs and their medians."""

    target: str
    concurrency: int
    pinned_cpu: int | None
    runs: tuple[CycleRun, ...]

    @property
    def cpu_us_per_cycle(self) -> float:
        """Median client CPU µs per cycle over the runs."""
        return statistics.median(run.cpu_us_per_cycle for run in self.runs)

    @property
    def cycles_per_s_per_core(self) -> float:
        """What one process can drive per core of CPU: ``1e6 / cpu_us_per_cycle``."""
        return 1e6 / self.cpu_us_per_cycle if self.cpu_us_per_cycle > 0 else 0.0

    @property
    def cycles_per_s(self) -> float:
        """Median wall-clock rate reached (bounded by the target and the machine's load too)."""
        return statistics.median(run.cycles_per_s for run in self.runs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "concurrency": self.concurrency,
            "pinned_cpu": self.pinned_cpu,
            "cpu_us_per_cycle": round(self.cpu_us_per_cycle, 1),
            "cycles_per_s_per_core": round(self.cycles_per_s_per_core),
            "cycles_per_s": round(self.cycles_per_s, 1),
            "runs": [run.as_dict() for run in self.runs],
        }


def calibrate(cycles: int = 2000, runs: int = 5, concurrency: int = 20) -> Calibration:
    """Start the built-in server in a child process and measure ``runs`` runs of ``cycles``.

    The server gets one CPU, this process another (when there are two); the affinity of this
    process is restored afterwards.
    """
    if cycles < 1 or runs < 1 or concurrency < 1:
        raise ValueError("cycles, runs and concurrency must be >= 1")
    saved = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None

    async def main() -> Calibration:
        async with BuiltinTarget(ServerConfig(), seed=1) as target:
            cpu = pin_cpus(target.pid)
            measured = [
                await measure_cycles(target.url, cycles, min(concurrency, cycles))
                for _ in range(runs)
            ]
        return Calibration("builtin", min(concurrency, cycles), cpu, tuple(measured))

    try:
        return trio.run(main)
    finally:
        if saved is not None:
            os.sched_setaffinity(0, saved)


def render(result: Calibration) -> str:
    """The text ``wsload calibrate`` prints."""
    lines = [
        f"target: built-in server (own process), concurrency {result.concurrency}, "
        f"{len(result.runs)} runs of {result.runs[0].cycles} clean-close cycles"
        + (f", client pinned to CPU {result.pinned_cpu}" if result.pinned_cpu is not None else ""),
    ]
    saturated = 0
    for i, run in enumerate(result.runs, 1):
        lag_p99 = run.loop_lag.get("p99")
        over = lag_p99 is not None and lag_p99 > SATURATION_US
        saturated += over
        lines.append(
            f"  run {i}: {run.cpu_us_per_cycle:7.1f} µs CPU/cycle "
            f"({run.user_s * 1e6 / max(1, run.cycles):.0f} user + "
            f"{run.sys_s * 1e6 / max(1, run.cycles):.0f} sys), "
            f"{run.cycles_per_s:7.0f} cycles/s, {run.clean}/{run.cycles} clean, "
            f"loop lag p99 {format_us(lag_p99)}" + (" (SATURATED)" if over else "")
        )
    unclean = sum(run.cycles - run.clean for run in result.runs)
    if unclean:
        lines.append(f"warning: {unclean} cycles did not end clean: the figures are suspect")
    if saturated:
        every = "every run was" if saturated == len(result.runs) else f"{saturated} runs were"
        lines.append(
            f"warning: {every} over the saturation line (loop lag p99 > "
            f"{format_us(SATURATION_US)}): the machine was busy or the concurrency too high, "
            "so the capacity below is a floor, not this machine's measure"
        )
    lines.append(
        f"median: {result.cpu_us_per_cycle:.1f} µs client CPU per cycle → one process ≈ "
        f"{result.cycles_per_s_per_core:,.0f} clean-close cycles/s per core "
        f"(reached {result.cycles_per_s:,.0f}/s against this target)"
    )
    return "\n".join(lines)
