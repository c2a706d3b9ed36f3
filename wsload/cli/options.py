"""Option definitions shared by several commands, and option groups.

An option group is a frozen dataclass whose fields are Typer options (``Annotated`` with
``typer.Option`` and a default). ``option_group`` shows its fields on a command in place of one
parameter and hands the command one instance: the comparison options are then written once
for ``run``, ``search`` and ``compare``, and ``serve``'s twenty server options are one value
passed on to the scenario parser.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from wsload.report.compare.tolerances import Tolerances
    from wsload.report.outputs import RunOutputs

__all__ = [
    "DEFAULT_COMPARISON",
    "BaselineOption",
    "Comparison",
    "JsonOption",
    "MetricsHostOption",
    "MetricsLingerOption",
    "MetricsPortOption",
    "NoReportOption",
    "OutOption",
    "QuietOption",
    "SetOption",
    "option_group",
]

_Command = Callable[..., None]


def option_group(parameter: str, group: type[Any]) -> Callable[[_Command], _Command]:
    """Show the fields of dataclass ``group`` as the command's options where its parameter
    ``parameter`` stands, and call the command with one ``group`` built from them.

    Typer reads a command's options from its signature, so the wrapper carries the rewritten
    signature (and annotations); the options keep their order on ``--help``.
    """
    hints = typing.get_type_hints(group, include_extras=True)
    fields = [
        inspect.Parameter(
            field.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=field.default,
            annotation=hints[field.name],
        )
        for field in dataclasses.fields(group)
    ]

    def decorate(command: _Command) -> _Command:
        signature = inspect.signature(command, eval_str=True)
        shown: list[inspect.Parameter] = []
        for param in signature.parameters.values():
            shown.extend(fields if param.name == parameter else [param])

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> None:
            values = {field.name: kwargs.pop(field.name) for field in fields}
            command(**kwargs, **{parameter: group(**values)})

        wrapper.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {param.name: param.annotation for param in shown}
        return wrapper

    return decorate


@dataclasses.dataclass(frozen=True, slots=True)
class Comparison:
    """How a run is compared with a baseline, and the CI files that say so: the options of
    ``compare``, also taken by ``run --baseline`` and ``search --baseline`` (parsed in
    report/outputs.py)."""

    max_regression: Annotated[
        str, typer.Option(help="Relative floor: smaller latency changes never count (10%).")
    ] = "10%"
    metric_tolerance: Annotated[
        list[str] | None,
        typer.Option(
            help="Per-metric allowance, repeatable: close_handshake.p99=20% or connect=50%."
        ),
    ] = None
    max_share_drop: Annotated[
        list[str] | None,
        typer.Option(help="Percentage points a share may fall, repeatable (default clean=0.5)."),
    ] = None
    max_share_rise: Annotated[
        list[str] | None,
        typer.Option(
            help="Points an error outcome's share may rise, repeatable: errors=0.5 (all, "
            "default) or close_timeout=1."
        ),
    ] = None
    min_samples: Annotated[
        int, typer.Option(help="Percentiles with fewer samples on either side are not judged.")
    ] = 100
    min_change: Annotated[
        str, typer.Option(help='Absolute floor: smaller latency changes never count ("500us").')
    ] = "500us"
    metrics: Annotated[
        str | None,
        typer.Option(
            help="Latency metrics judged, comma-separated; others are informational (default: "
            "close_handshake,close_teardown,close_total,step.*)."
        ),
    ] = None
    confidence: Annotated[
        str, typer.Option(help="Confidence of the intervals; 1 - it is the rank test's level.")
    ] = "99%"
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write JUnit XML (each threshold/rule a test).")
    ] = None
    markdown: Annotated[
        Path | None,
        typer.Option(
            help="Write a markdown summary (also appended to $GITHUB_STEP_SUMMARY if set)."
        ),
    ] = None

    def tolerances(self) -> Tolerances:
        """The comparison's rules, parsed (a bad one is a ``UsageError``)."""
        from wsload.report.outputs import parse_tolerances

        return parse_tolerances(
            max_regression=self.max_regression,
            metric_tolerance=self.metric_tolerance,
            max_share_drop=self.max_share_drop,
            max_share_rise=self.max_share_rise,
            min_samples=self.min_samples,
            min_change=self.min_change,
            metrics=self.metrics,
            confidence=self.confidence,
        )

    def run_outputs(self, baseline: Path | None, *, report: bool) -> RunOutputs:
        """What ``run`` and ``search`` write besides the results: report, comparison, CI files.

        The baseline is read here, before anything runs: a wrong path exits 2 at once.
        """
        from wsload.report.outputs import RunOutputs
        from wsload.report.results import load_histograms, load_summary

        return RunOutputs(
            baseline=load_summary(baseline) if baseline is not None else None,
            baseline_name=str(baseline),
            baseline_histograms=load_histograms(baseline) if baseline is not None else None,
            tolerances=self.tolerances(),
            junit=self.junit,
            markdown=self.markdown,
            report=report,
        )


DEFAULT_COMPARISON = Comparison()
"""The defaults, standing in for the option group in a command's signature."""

OutOption = Annotated[
    Path | None, typer.Option(help="Results directory (default results/<name>-<UTC time>).")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the path.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")]
BaselineOption = Annotated[
    Path | None, typer.Option(help="Compare with this results dir or summary.json.")
]
NoReportOption = Annotated[bool, typer.Option("--no-report", help="Do not write report.html.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY.PATH=VALUE",
        help="Override a scenario key (repeatable): load.rate=500, close[0].timeout=2s, "
        "target.url='\"wss://staging/ws\"' (TOML value, or a plain string).",
    ),
]
MetricsPortOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=65535,
        help="Serve live Prometheus metrics on this port (/metrics) until the results are "
        "written; 0: any free port (docs/observability.md).",
    ),
]
MetricsHostOption = Annotated[str, typer.Option(help="Address --metrics-port listens on.")]
MetricsLingerOption = Annotated[
    str,
    typer.Option(help="At the end, wait this long at most for a scrape of the final figures."),
]
