"""Every shipped scenario (``scenarios/*.toml``) run once per test session, for the tests that
check what such a run writes (tests/cli/test_run_builtin.py: exit code and summary;
tests/process/test_report_html.py: the report in a browser).

A run with a ``duration`` is cut to one second: its later seconds repeat the first
(tests/cli/test_scenario_shipped.py checks the whole plans). The storms, the deploys and the
search run as shipped, since what they test happens at a planned instant or level, and so does
``chat``, whose thresholds count the whole plan's messages.

Once per session means once for all of pytest-xdist's worker processes too: the runs go to a
folder the workers share, and a lock file per scenario makes the first worker that asks run it
while another one that asks meanwhile waits, then reads the same result.
"""

from __future__ import annotations

import fcntl
import json
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from npm import SERVER_PACKAGES, SERVERS, npm_skip_reason
from typer.testing import CliRunner

from wsload.cli import app

__all__ = ["AS_SHIPPED", "NAMES", "ShippedRun", "ShippedRuns"]

ROOT = Path(__file__).resolve().parents[1]
NAMES = sorted(p.stem for p in (ROOT / "scenarios").glob("*.toml"))
AS_SHIPPED = frozenset({"chat", "deploy_hard", "deploy_soft", "search", "shutdown_storm", "storm"})


@dataclass(frozen=True)
class ShippedRun:
    """One ``wsload run`` of a shipped scenario: its exit code, output and results folder, and
    the traceback of an exception other than ``SystemExit`` if the command raised one."""

    exit_code: int
    output: str
    error: str | None
    out: Path


class ShippedRuns:
    """Runs each shipped scenario at most once under ``root`` (shared by the worker processes)
    and keeps the result beside its folder (``<name>.json``)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        root.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str) -> ShippedRun:
        kept = self._root / f"{name}.json"
        with (self._root / f"{name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not kept.exists():
                run = asdict(self._run(name))
                kept.write_text(json.dumps({**run, "out": str(run["out"])}), encoding="utf-8")
            data = json.loads(kept.read_text(encoding="utf-8"))
            return ShippedRun(**{**data, "out": Path(data["out"])})

    def _run(self, name: str) -> ShippedRun:
        out = self._root / name
        scenario = ROOT / "scenarios" / f"{name}.toml"
        if "scenarios/servers/" in scenario.read_text(encoding="utf-8"):
            # installed here under the folder's lock, not by the server's first start beside
            # another test's install; without node the run itself says what is missing
            npm_skip_reason(SERVERS, SERVER_PACKAGES, name)
        args = ["run", str(scenario), "--out", str(out), "--quiet"]
        if name not in AS_SHIPPED:
            args += ["--duration", "1s"]
        result = CliRunner().invoke(app, args)
        error = None
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            error = "".join(traceback.format_exception(result.exception))
        return ShippedRun(result.exit_code, result.output, error, out)
