"""Every shipped scenario (``scenarios/*.toml``) run once per test session, for the tests that
check what such a run writes (tests/cli/test_run_builtin.py: exit code and summary;
tests/process/test_report_html.py: the report in a browser).

A run with a ``duration`` is cut to one second: its later seconds repeat the first
(tests/cli/test_scenario_shipped.py checks the whole plans). The storms, the deploys and the
search run as shipped, since what they test happens at a planned instant or level, and so does
``chat``, whose thresholds count the whole plan's messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from wsload.cli import app

__all__ = ["AS_SHIPPED", "NAMES", "ShippedRun", "ShippedRuns"]

ROOT = Path(__file__).resolve().parents[1]
NAMES = sorted(p.stem for p in (ROOT / "scenarios").glob("*.toml"))
AS_SHIPPED = frozenset({"chat", "deploy_hard", "deploy_soft", "search", "shutdown_storm", "storm"})


@dataclass(frozen=True)
class ShippedRun:
    """One ``wsload run`` of a shipped scenario: its exit code, output and results folder."""

    exit_code: int
    output: str
    exception: BaseException | None
    out: Path


class ShippedRuns:
    """Runs each shipped scenario at most once, under ``root``, and keeps the result."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._runs: dict[str, ShippedRun] = {}

    def __call__(self, name: str) -> ShippedRun:
        if name not in self._runs:
            out = self._root / name
            args = ["run", str(ROOT / "scenarios" / f"{name}.toml"), "--out", str(out), "--quiet"]
            if name not in AS_SHIPPED:
                args += ["--duration", "1s"]
            result = CliRunner().invoke(app, args)
            self._runs[name] = ShippedRun(result.exit_code, result.output, result.exception, out)
        return self._runs[name]
