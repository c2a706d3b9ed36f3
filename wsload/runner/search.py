"""One capacity search (``model = "search"``): levels run one after another against one target.

Each level is an ordinary load run (``run_load``) with a fresh ``Collector``, its own summary
and its own threshold verdicts; the built-in target is started once for the whole search, so
the levels measure the same server. After every level summary.json is rewritten with what is
known so far (nothing measured is lost if the search is stopped or crashes), and the interval
log gets that level's seconds (one log, levels one after another in time: ``started_s`` in
``search.levels`` says where each begins).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from rich.console import Console

from wsload.engine.driver import DriverContext
from wsload.metrics.collector import Collector, IntervalSnapshot
from wsload.report import files, hlog, summary, thresholds
from wsload.report.outputs import RunOutputs, write_run_outputs
from wsload.report.redact import redact_scenario
from wsload.report.search import level_entry, level_line, search_section, search_table
from wsload.report.timeline import TimelineWriter
from wsload.runner import preflight
from wsload.runner.execute import EXIT_INTERRUPTED, EXIT_OK, EXIT_THRESHOLDS
from wsload.runner.loop import Progress, run_load
from wsload.runner.result_files import result_of
from wsload.runner.runtime import (
    comparison_text,
    live_progress,
    metrics_endpoint,
    open_target,
    raise_nofile_limit,
    show_result,
    signals_deferred,
    watch_signals,
    with_seed,
)
from wsload.runner.search_levels import (
    Climb,
    Stop,
    max_levels,
    step_scenario,
    worst_case_seconds,
)
from wsload.runner.segment import WHOLE
from wsload.runner.segment_run import SegmentResult
from wsload.scenario.dump import scenario_to_toml
from wsload.scenario.model import Scenario, SearchConfig

if TYPE_CHECKING:
    from wsload.report.prometheus import Exposition, MetricsEndpoint

__all__ = ["execute_search", "stop_reason"]


def stop_reason(search: SearchConfig, climb: Climb, level: float | None) -> str:
    """Why the search stopped, in words (summary.json ``search.reason``).

    Args:
        level: the last level tried (the saturated one, for ``Stop.SATURATED``).
    """
    passed, failed = climb.passed, climb.failed
    at_least = f"; the capacity is at least {passed:g}" if passed is not None else ""
    if climb.stopped is Stop.CONVERGED:
        assert passed is not None and failed is not None
        return (
            f"{passed:g} passed and {failed:g} failed: within the precision "
            f"({100 * search.precision:g} %) of each other"
        )
    if climb.stopped is Stop.MAX:
        return f"every level up to max ({search.max:g}) passed; the capacity is at least max"
    if climb.stopped is Stop.FIRST_FAILED:
        return f"the first level ({search.start:g}) already failed: lower load.search.start"
    if climb.stopped is Stop.SATURATED:
        return (
            f"the load generator saturated at {level:g} (event-loop lag): that is wsload's "
            f"limit, not the target's{at_least}"
        )
    if climb.stopped is Stop.INTERRUPTED:
        return "interrupted before the search ended" + at_least
    return "search in progress"


@dataclass(slots=True)
class _Levels:
    """What the search measured so far: each level's entry and summary."""

    scenario: Scenario
    climb: Climb
    origin: float = 0.0
    entries: list[dict[str, Any]] = field(default_factory=list)
    summaries: dict[float, dict[str, Any]] = field(default_factory=dict)
    server: dict[str, Any] | None = None

    def main_level(self) -> float | None:
        """Whose figures fill the summary: the last passing level, else the first one tried."""
        if self.climb.passed is not None:
            return self.climb.passed
        return self.entries[0]["level"] if self.entries else None

    def summary(self) -> dict[str, Any]:
        """summary.json: the main level's summary plus the ``search`` section."""
        search = self.scenario.load.search
        assert search is not None
        main = self.main_level()
        data = dict(self.summaries[main]) if main is not None else {}
        last = self.entries[-1]["level"] if self.entries else None
        data["server"] = self.server
        if self.climb.stopped is Stop.INTERRUPTED:
            data["interrupted"] = True  # the search was, even if its main level ran to its end
        data["search"] = search_section(
            search.over,
            self.entries,
            self.climb.passed,  # at MAX: max itself, the last level climbed
            str(self.climb.stopped or "running"),
            stop_reason(search, self.climb, last),
            max_levels=max_levels(search),
            worst_case_s=worst_case_seconds(self.scenario.load),
            main_level=main,
        )
        return data


def execute_search(
    scenario: Scenario,
    *,
    out: Path | None = None,
    quiet: bool = False,
    json_out: bool = False,
    results_base: Path = Path("results"),
    outputs: RunOutputs | None = None,
    metrics: MetricsEndpoint | None = None,
) -> int:
    """Run a capacity search and write its results; return the process exit code.

    Exit 0 when a capacity was found (some level passed), 1 when none passed (or the
    capacity level regressed against ``outputs.baseline``), 130 when interrupted (results up to
    the last finished level are written). ``outputs`` as for ``execute_run``: report.html
    (with the search chart), baseline comparison of the capacity level, JUnit, markdown.
    ``metrics``: the live Prometheus endpoint, as for ``execute_run`` (its counters and
    histograms add up every level).
    """
    search = scenario.load.search
    assert search is not None, "execute_search needs a search scenario"
    nofile = raise_nofile_limit()
    for warning in preflight.check_scenario(scenario, processes=1, nofile=nofile):
        sys.stderr.write(f"wsload: warning: {warning}\n")
    if scenario.seed is None:
        scenario = with_seed(scenario)
    with metrics_endpoint(metrics, quiet=quiet) as exposition:
        started_at = datetime.now(UTC)
        out_dir = (
            files.make_results_dir(results_base, scenario.name, started_at)
            if out is None
            else files.prepare_results_dir(out)
        )
        with signals_deferred() as late:
            return _search_in(
                scenario,
                search,
                out_dir,
                started_at,
                quiet,
                json_out,
                outputs,
                late,
                exposition,
            )


def _search_in(
    scenario: Scenario,
    search: SearchConfig,
    out_dir: Path,
    started_at: datetime,
    quiet: bool,
    json_out: bool,
    outputs: RunOutputs | None,
    late: list[int],
    exposition: Exposition | None,
) -> int:
    """execute_search once the results directory exists, with Ctrl-C deferred to the run."""
    files.write_text_atomic(out_dir / "scenario.toml", scenario_to_toml(redact_scenario(scenario)))
    console = Console(stderr=json_out, highlight=False)
    if not quiet:
        console.print(
            f"capacity search over {search.over}: {search.start:g} x{search.factor:g} up to "
            f"{search.max:g}, precision {100 * search.precision:g} %; at most "
            f"{max_levels(search)} levels, worst case {worst_case_seconds(scenario.load):,.0f} s"
        )
    levels = _Levels(scenario, Climb(search))

    def on_level(entry: dict[str, Any], level_summary: dict[str, Any]) -> None:
        levels.entries.append(entry)
        levels.summaries[entry["level"]] = level_summary
        files.write_json_atomic(out_dir / "summary.json", levels.summary())
        if not quiet:
            console.print(level_line(entry, search.over), markup=False)

    writer = _Logs(
        hlog.IntervalLogWriter(out_dir / "histograms.hlog", started_at),
        TimelineWriter(out_dir / "timeline.jsonl"),
        exposition,
    )
    show_live = not (quiet or json_out) and console.is_terminal
    try:
        levels.server = trio.run(
            _search, scenario, levels, writer, console if show_live else None, on_level, late
        )
    finally:
        writer.close()
    data = levels.summary()
    files.write_json_atomic(out_dir / "summary.json", data)
    comparison = write_run_outputs(out_dir, data, outputs or RunOutputs())
    show_result(
        console,
        data,
        out_dir,
        quiet=quiet,
        json_out=json_out,
        details=[search_table(data["search"]), *comparison_text(comparison)],
    )
    if levels.climb.stopped is Stop.INTERRUPTED or late:
        return EXIT_INTERRUPTED
    regressed = comparison is not None and not comparison.ok
    found = data["search"]["capacity"] is not None
    return EXIT_OK if found and not regressed else EXIT_THRESHOLDS


@dataclass(frozen=True, slots=True)
class _Logs:
    """The interval log and the timeline of the whole search: every level's intervals on one
    time axis (``origin``: the search's start), as a run writes them; and the live
    ``/metrics`` endpoint's exposition, when there is one."""

    hlog: hlog.IntervalLogWriter
    timeline: TimelineWriter
    exposition: Exposition | None = None

    def set_origin(self, origin: float) -> None:
        self.hlog.origin = self.timeline.origin = origin

    def write_interval(self, snapshot: IntervalSnapshot) -> None:
        self.hlog.write_interval(snapshot)
        self.timeline.write_interval(snapshot)
        if self.exposition is not None:
            self.exposition.observe(snapshot)

    def close(self) -> None:
        self.hlog.close()
        self.timeline.close()


async def _search(
    scenario: Scenario,
    levels: _Levels,
    writer: _Logs,
    console: Console | None,
    on_level: Callable[[dict[str, Any], dict[str, Any]], None],
    late: list[int] | None = None,
) -> dict[str, Any] | None:
    """Start the target once, run levels until the climb stops; the server's statistics."""
    search, climb = scenario.load.search, levels.climb
    assert search is not None
    stop, hard_stop = trio.Event(), trio.Event()
    async with AsyncExitStack() as stack:
        url, target = await open_target(stack, scenario)
        first = DriverContext.create(scenario.target, scenario.session, url, seed=scenario.seed)
        levels.origin = trio.current_time()
        writer.set_origin(levels.origin)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_signals, stop, hard_stop, late)
            while (level := climb.next_level()) is not None:
                step = step_scenario(scenario, level)
                ctx = DriverContext.create(
                    scenario.target,
                    scenario.session,
                    url,
                    ssl_context=first.ssl_context,
                    seed=None if scenario.seed is None else scenario.seed + len(levels.entries),
                )
                entry, level_summary = await _level(
                    step, scenario, level, ctx, levels.origin, writer, console, stop, hard_stop
                )
                if entry["interrupted"]:
                    climb.stop(Stop.INTERRUPTED)
                elif entry["saturated"]:
                    climb.stop(Stop.SATURATED)
                else:
                    climb.record(level, entry["ok"])
                on_level(entry, level_summary)
                if climb.next_level() is not None:
                    with trio.move_on_after(search.cooldown):
                        await stop.wait()
                    if stop.is_set():
                        climb.stop(Stop.INTERRUPTED)
            nursery.cancel_scope.cancel()
    return target.stats if target is not None else None


async def _level(
    step: Scenario,
    scenario: Scenario,
    level: float,
    ctx: DriverContext,
    origin: float,
    writer: _Logs,
    console: Console | None,
    stop: trio.Event,
    hard_stop: trio.Event,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one level; its ``search.levels`` entry and its own summary (with verdicts)."""
    collector = Collector(labels=tuple(spec.label for spec in scenario.close))
    progress = Progress()
    started_at = datetime.now(UTC)
    async with trio.open_nursery() as nursery:
        if console is not None:
            nursery.start_soon(live_progress, console, progress, step)
        load_run = await run_load(
            step,
            ctx,
            collector,
            progress=progress,
            on_interval=writer.write_interval,
            stop=stop,
            hard_stop=hard_stop,
        )
        nursery.cancel_scope.cancel()
    part = SegmentResult.from_load(collector, load_run, WHOLE)
    result = result_of(redact_scenario(scenario), started_at, part)
    data = summary.build_summary(result)
    data = summary.attach_thresholds(data, thresholds.evaluate(scenario.thresholds, data))
    entry = level_entry(
        level, data, started_s=load_run.started - origin, interrupted=load_run.interrupted
    )
    return entry, data
