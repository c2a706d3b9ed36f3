"""The frame around every command that writes a result: ``run`` (``--repeat`` too), ``search``
and ``merge``.

What the three share is written once here, in the order that keeps "nothing measured is ever
lost" true: the results directory exists and Ctrl-C is deferred before anything is measured,
the resolved scenario is written before the first connection, the interval log and timeline
are appended while the load runs and closed before summary.json, the report/CI files follow
summary.json, and the exit code is decided last, from what the mode reports and from any
signal that arrived while the frame was open. With ``--metrics-port`` the live ``/metrics``
endpoint listens before the results directory exists and is fed what the interval logs are
fed; it closes last, once a scrape has read the final figures (``Output.metrics``)::

    with RunFrame(scenario.name, output) as frame:
        frame.write_scenario(resolved)
        logs = frame.open_logs()             # histograms.hlog + timeline.jsonl
        ...                                  # the mode: load, levels or merged segments
        frame.finish(data, interrupted=...)   # verdict, outputs, shown result
    return frame.exit_code
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import trio
from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from wsload.exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from wsload.metrics.snapshots import IntervalSnapshot
from wsload.process import signals_deferred
from wsload.report import files, hlog, terminal
from wsload.report.outputs import RunOutputs, baseline_comparison, write_run_outputs
from wsload.report.progress import progress_line
from wsload.report.summary import unfinished_summary
from wsload.report.terminal import comparison_text
from wsload.report.timeline import TimelineWriter
from wsload.report.verdict import Reason, Verdict, Word, attach, decide
from wsload.scenario.model import Scenario

if TYPE_CHECKING:
    from wsload.report.prometheus import Exposition
    from wsload.runner.endpoint import MetricsEndpoint

__all__ = ["IntervalLogs", "Output", "ProgressLines", "RunFrame", "live_progress", "show_result"]


@dataclass(frozen=True, slots=True)
class Output:
    """Where a command writes its result and how it shows it.

    Attributes:
        out: the results directory (``--out``); None: a new one under ``results_base``.
        quiet: print only the results directory's path.
        json_out: print summary.json on stdout (everything else goes to stderr).
        outputs: report.html, baseline comparison, JUnit, markdown; None: none (a merge).
        metrics: serve live Prometheus metrics there while the frame is open
            (``--metrics-port``, docs/observability.md); None: no endpoint.
        progress_s: not on a terminal, print a progress line this often (seconds;
            ``--progress-interval``; 0: never).
        force: ``--out`` may hold another result: wsload's files in it are replaced
            (``--force``; ``wsload.report.files.prepare_results_dir``).
    """

    out: Path | None = None
    quiet: bool = False
    json_out: bool = False
    results_base: Path = Path("results")
    outputs: RunOutputs | None = None
    metrics: MetricsEndpoint | None = None
    progress_s: float = 10.0
    force: bool = False


class IntervalLogs:
    """histograms.hlog and timeline.jsonl, appended once a second while the load runs; and
    the ``/metrics`` endpoint's exposition, fed the same snapshots, when there is one."""

    def __init__(
        self, out_dir: Path, started_at: datetime, exposition: Exposition | None = None
    ) -> None:
        self.hlog = hlog.IntervalLogWriter(out_dir / "histograms.hlog", started_at)
        self.timeline = TimelineWriter(out_dir / "timeline.jsonl")
        self.exposition = exposition
        self.live_index = -1  # the last second the endpoint took live (``observe_live``)

    def set_origin(self, origin: float) -> None:
        """Put every interval on one time axis from ``origin`` (a search's levels)."""
        self.hlog.origin = self.timeline.origin = origin

    def write_interval(self, snapshot: IntervalSnapshot) -> None:
        self.hlog.write_interval(snapshot)
        self.timeline.write_interval(snapshot)
        if self.exposition is not None and snapshot.index > self.live_index:
            self.exposition.observe(snapshot)

    def observe_live(self, snapshot: IntervalSnapshot) -> None:
        """A second seen while the load runs whose logged copy comes later (a ``--cluster``
        run's): the endpoint shows it now and skips the copy, so it counts every second
        once."""
        if self.exposition is not None:
            self.exposition.observe(snapshot)
            self.live_index = snapshot.index

    def close(self) -> None:
        self.hlog.close()
        self.timeline.close()


class RunFrame:
    """Results directory, deferred signals, interval logs, shown result and exit code.

    Args:
        name: the scenario's name (the results directory is ``<base>/<name>-<UTC time>``).
        started_at: the result's wall-clock start; default: now (a merge passes its
            segments' earliest).
    """

    def __init__(self, name: str, output: Output, *, started_at: datetime | None = None) -> None:
        self.output = output
        self.started_at = started_at if started_at is not None else datetime.now(UTC)
        self.console = Console(stderr=output.json_out, highlight=False)
        self._stack = contextlib.ExitStack()
        # listening before the results directory exists: a port in use leaves nothing behind
        self.exposition = self._stack.enter_context(_metrics_endpoint(output))
        try:
            self.out_dir = (
                files.make_results_dir(output.results_base, name, self.started_at)
                if output.out is None
                else files.prepare_results_dir(output.out, name, force=output.force)
            )
        except BaseException:
            self._stack.close()
            raise
        self.name = name
        self.late: list[int] = []
        self._logs = contextlib.ExitStack()
        self._verdict = Verdict(Word.PASS)  # until finish decides
        self._interrupted = False

    def __enter__(self) -> RunFrame:
        self.late = self._stack.enter_context(signals_deferred())
        self._stack.push(self._logs)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if isinstance(exc, Exception) and not (self.out_dir / "summary.json").exists():
                # the folder must still say what happened, in the form every reader takes
                unfinished = unfinished_summary(self.name, self.started_at, str(exc))
                files.write_json_atomic(self.out_dir / "summary.json", unfinished)
        finally:
            self._stack.close()

    @property
    def live_console(self) -> Console | None:
        """The console to draw the live panel on; None when quiet, JSON or not a terminal."""
        shown = not (self.output.quiet or self.output.json_out) and self.console.is_terminal
        return self.console if shown else None

    @property
    def progress_lines(self) -> ProgressLines | None:
        """Where progress lines go when the live panel is not drawn: the result's own stream
        (stdout; stderr with ``--json``), unless quiet or ``--progress-interval 0``."""
        output = self.output
        if output.quiet or output.progress_s <= 0 or self.console.is_terminal:
            return None
        return ProgressLines(self.console.file, output.progress_s)

    def write_scenario(self, resolved: str) -> None:
        """scenario.toml: the resolved scenario (secrets redacted by the caller)."""
        files.write_text_atomic(self.out_dir / "scenario.toml", resolved)

    def open_logs(self) -> IntervalLogs:
        """The interval log and timeline; closed by ``finish`` or when the frame exits."""
        logs = IntervalLogs(self.out_dir, self.started_at, self.exposition)
        self._logs.callback(logs.close)
        return logs

    def close_logs(self) -> None:
        """Close whatever the mode kept open (before summary.json is written)."""
        self._logs.close()

    def keep_open(self, resource: contextlib.AbstractContextManager[Any]) -> None:
        """Close ``resource`` with the interval logs (segment logs, --record-connections)."""
        self._logs.enter_context(resource)

    def finish(
        self,
        data: Mapping[str, Any],
        *,
        interrupted: bool,
        extra: Sequence[Reason] = (),
        details: Sequence[RenderableType] = (),
    ) -> None:
        """Compare with the baseline, decide the one verdict (``wsload.report.verdict``: from
        summary.json's ``data``, the comparison and the mode's ``extra`` reasons), write it
        into summary.json, write the report/CI files, show the result. The exit code follows
        the verdict: 0 for a pass, 130 when interrupted, else 1."""
        outputs = self.output.outputs
        comparison = None
        if outputs is not None:
            comparison = baseline_comparison(self.out_dir, data, outputs)
        verdict = decide(data, comparison, extra)
        data = attach(data, verdict)
        files.write_json_atomic(self.out_dir / "summary.json", data)
        if outputs is not None:
            write_run_outputs(self.out_dir, data, comparison, outputs)
        shown = list(details)
        if comparison is not None:
            shown.append(Text(comparison_text(comparison).rstrip("\n")))
        show_result(self.console, data, self.out_dir, self.output, details=shown)
        empty = next((r for r in verdict.reasons if r.code == "nothing_opened"), None)
        if empty is not None:  # nothing measured is never a pass: said even with --quiet
            sys.stderr.write(f"wsload: error: {empty.message}\n")
        self._verdict, self._interrupted = verdict, interrupted

    @property
    def exit_code(self) -> int:
        """130 when interrupted (also by a signal while the frame was open), else 0 for a
        passing verdict and 1 for any other."""
        if self._interrupted or self.late:
            return EXIT_INTERRUPTED
        return EXIT_OK if self._verdict.passed else EXIT_FAILED


@contextlib.contextmanager
def _metrics_endpoint(output: Output) -> Iterator[Exposition | None]:
    """``--metrics-port``: the live Prometheus endpoint (None without).

    Left after the frame's own signal deferral: it first waits (``linger_s`` at most) for a
    scrape to read the final figures, so that the scraper's last sample equals summary.json;
    a Ctrl-C meanwhile ends the wait, neither the process nor the exit code.
    """
    if output.metrics is None:
        yield None
        return
    from wsload.runner.endpoint import serve_metrics  # only when asked: it costs start-up

    with serve_metrics(output.metrics) as exposition:
        if not output.quiet:
            sys.stderr.write(f"wsload: metrics at {exposition.url}\n")  # stdout stays --json's
        yield exposition
        linger = output.metrics.linger_s
        if linger > 0 and not output.quiet and not exposition.wait_scraped(0):
            # the results are out: say why the command has not returned yet
            sys.stderr.write(
                f"wsload: serving the final figures at {exposition.url} for up to "
                f"{linger:g} s, until a scrape reads them (--metrics-linger)\n"
            )
        with signals_deferred() as late:
            exposition.wait_scraped(linger, stop=lambda: bool(late))


def show_result(
    console: Console,
    data: Mapping[str, Any],
    out_dir: Path,
    output: Output,
    *,
    details: Sequence[RenderableType] = (),
) -> None:
    """summary.json on stdout (``--json``), the path alone (``--quiet``), or the table,
    ``details`` and the path."""
    if output.json_out:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif output.quiet:
        sys.stdout.write(f"{out_dir}\n")
    else:
        console.print(terminal.summary_table(data))
        for detail in details:
            console.print(detail)
        console.print(terminal.verdict_text(data))
        console.print(f"results: {out_dir}")


class ProgressLines:
    """One progress line every ``every`` seconds (``wsload.report.progress``), over the
    interval snapshots that arrived since the previous line."""

    def __init__(self, stream: IO[str], every: float) -> None:
        self.stream = stream
        self.every = every
        self.window: list[IntervalSnapshot] = []

    def watch(
        self, on_interval: Callable[[IntervalSnapshot], None]
    ) -> Callable[[IntervalSnapshot], None]:
        """``on_interval`` that also keeps each snapshot for the next line."""

        def watched(snapshot: IntervalSnapshot) -> None:
            self.window.append(snapshot)
            on_interval(snapshot)

        return watched

    async def run(self, progress: terminal.LiveProgress, scenario: Scenario) -> None:
        """Print a line at every ``every`` seconds from now until cancelled."""
        due = trio.current_time()
        while True:
            due += self.every
            await trio.sleep_until(due)
            if not progress.started or progress.started > due:
                continue  # the load has not started yet (workers still starting up)
            window, self.window = self.window, []
            line = progress_line(progress, scenario, trio.current_time(), window)
            self.stream.write(line + "\n")
            self.stream.flush()


async def live_progress(
    console: Console, progress: terminal.LiveProgress, scenario: Scenario
) -> None:
    """Redraw the live panel four times a second until cancelled."""
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            live.update(terminal.live_panel(progress, scenario, trio.current_time()))
            await trio.sleep(0.25)
