"""The search mode (``model = "search"``): levels run one after another against one target.

Each level is an ordinary load run (``run_load``) with a fresh ``Collector``, its own summary
and its own threshold verdicts; the built-in target is started once for the whole search, so
the levels measure the same server. After every level summary.json is rewritten with what is
known so far (nothing measured is lost if the search is stopped or crashes), and the interval
log gets that level's seconds (one log, levels one after another in time: ``started_s`` in
``search.levels`` says where each begins). The next level is decided from each level's typed
``LevelVerdict`` (``search_levels.py``, pure), never from the report's dicts.
"""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import trio

from wsload.engine.context import DriverContext
from wsload.metrics.collector import Collector
from wsload.plan.segment import WHOLE
from wsload.process import raise_nofile_limit, watch_signals
from wsload.report import files, summary, thresholds
from wsload.report.redact import redact_scenario
from wsload.report.search import level_entry, level_line, search_section, search_table
from wsload.runner.executors.segment_run import segment_result
from wsload.runner.frame import IntervalLogs, Output, RunFrame, live_progress
from wsload.runner.load.loop import Progress, run_load
from wsload.runner.modes import preflight
from wsload.runner.modes.search_levels import (
    Climb,
    LevelVerdict,
    Stop,
    max_levels,
    step_scenario,
    worst_case_seconds,
)
from wsload.runner.result_files import result_of
from wsload.runner.targets.target import open_target
from wsload.scenario.dump import scenario_to_toml
from wsload.scenario.model import Scenario, SearchConfig

__all__ = ["search_mode", "stop_reason"]


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


def search_mode(scenario: Scenario, output: Output) -> int:
    """Run a capacity search of ``scenario`` (seeded) and write its results; the exit code.

    Exit 0 when a capacity was found (some level passed), 1 when none passed (or the
    capacity level regressed against the baseline in ``output.outputs``), 130 when interrupted
    (results up to the last finished level are written). Report.html gets the search chart.
    """
    search = scenario.load.search
    assert search is not None, "search_mode needs a search scenario"
    nofile = raise_nofile_limit()
    with RunFrame(scenario.name, output) as frame:
        for warning in preflight.check_scenario(scenario, processes=1, nofile=nofile):
            sys.stderr.write(f"wsload: warning: {warning}\n")
        frame.write_scenario(scenario_to_toml(redact_scenario(scenario)))
        if not output.quiet:
            frame.console.print(_announce(search, scenario))
        levels = _Levels(scenario, Climb(search))
        run = _Search(scenario, levels, frame, frame.open_logs())
        levels.server = trio.run(run.run)
        frame.close_logs()
        data = levels.summary()
        files.write_json_atomic(frame.out_dir / "summary.json", data)
        frame.finish(
            data,
            interrupted=levels.climb.stopped is Stop.INTERRUPTED,
            details=[search_table(data["search"])],
        )
    return frame.exit_code


def _announce(search: SearchConfig, scenario: Scenario) -> str:
    """The search's plan, printed before the first level."""
    return (
        f"capacity search over {search.over}: {search.start:g} x{search.factor:g} up to "
        f"{search.max:g}, precision {100 * search.precision:g} %; at most "
        f"{max_levels(search)} levels, worst case {worst_case_seconds(scenario.load):,.0f} s"
    )


class _Search:
    """The levels of one search inside one ``trio.run``: one target, one signal watcher."""

    def __init__(
        self, scenario: Scenario, levels: _Levels, frame: RunFrame, logs: IntervalLogs
    ) -> None:
        self.scenario = scenario
        self.levels = levels
        self.frame = frame
        self.logs = logs
        self.console = frame.live_console
        self.stop, self.hard_stop = trio.Event(), trio.Event()

    async def run(self) -> dict[str, Any] | None:
        """Start the target once, run levels until the climb stops; the server's statistics."""
        scenario, levels, climb = self.scenario, self.levels, self.levels.climb
        search = scenario.load.search
        assert search is not None
        async with AsyncExitStack() as stack:
            url, target = await open_target(stack, scenario)
            first = DriverContext.create(
                scenario.target, scenario.session, url, seed=scenario.seed, columns=scenario.columns
            )
            levels.origin = trio.current_time()
            self.logs.set_origin(levels.origin)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch_signals, self.stop, self.hard_stop, self.frame.late)
                while (level := climb.next_level()) is not None:
                    ctx = DriverContext.create(
                        scenario.target,
                        scenario.session,
                        url,
                        ssl_context=first.ssl_context,
                        seed=None if scenario.seed is None else scenario.seed + len(levels.entries),
                        columns=scenario.columns,
                    )
                    entry, level_summary, verdict = await self._level(level, ctx)
                    climb.judge(level, verdict)
                    self._record(entry, level_summary)
                    if climb.next_level() is not None:
                        with trio.move_on_after(search.cooldown):
                            await self.stop.wait()
                        if self.stop.is_set():
                            climb.stop(Stop.INTERRUPTED)
                nursery.cancel_scope.cancel()
        return target.stats if target is not None else None

    def _record(self, entry: dict[str, Any], level_summary: dict[str, Any]) -> None:
        """Keep a finished level; summary.json rewritten with everything known so far."""
        levels = self.levels
        levels.entries.append(entry)
        levels.summaries[entry["level"]] = level_summary
        files.write_json_atomic(self.frame.out_dir / "summary.json", levels.summary())
        if not self.frame.output.quiet:
            search = self.scenario.load.search
            assert search is not None
            self.frame.console.print(level_line(entry, search.over), markup=False)

    async def _level(
        self, level: float, ctx: DriverContext
    ) -> tuple[dict[str, Any], dict[str, Any], LevelVerdict]:
        """Run one level: its ``search.levels`` entry, its own summary, its verdict."""
        scenario = self.scenario
        step = step_scenario(scenario, level)
        collector = Collector(labels=tuple(spec.label for spec in scenario.close))
        progress = Progress()
        started_at = datetime.now(UTC)
        async with trio.open_nursery() as nursery:
            if self.console is not None:
                nursery.start_soon(live_progress, self.console, progress, step)
            load_run = await run_load(
                step,
                ctx,
                collector,
                progress=progress,
                on_interval=self.logs.write_interval,
                stop=self.stop,
                hard_stop=self.hard_stop,
            )
            nursery.cancel_scope.cancel()
        part = segment_result(collector, load_run, WHOLE)
        result = result_of(redact_scenario(scenario), started_at, part)
        data = summary.build_summary(result)
        verdicts = thresholds.evaluate(scenario.thresholds, data)
        data = summary.attach_thresholds(data, verdicts)
        interrupted = load_run.interrupted
        entry = level_entry(
            level, data, started_s=load_run.started - self.levels.origin, interrupted=interrupted
        )
        verdict = LevelVerdict(
            passed=bool(verdicts) and all(v.ok for v in verdicts) and not interrupted,
            saturated=part.saturated,
            interrupted=interrupted,
        )
        return entry, data, verdict
