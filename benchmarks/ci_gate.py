"""Measure the CI gate's error rates: false regressions on identical runs, misses on real ones.

The campaign behind the figures in docs/ci.md ("Measured error rates"), run as a user would
run the gate, every ``wsload`` a fresh process, default comparison options::

    python benchmarks/ci_gate.py                       # the full campaign (~10 min)
    python benchmarks/ci_gate.py --pairs 1 --trials 1 --duration 1s   # a quick check
    python benchmarks/ci_gate.py --json

Three checks, on ``scenarios/ci.toml`` (its built-in server answers Close after 2 ms):

1. **false regressions** — ``--pairs`` times: two runs back to back, then ``wsload compare``;
   any exit 1 is a false regression (the target did not change);
2. **a slower server** — each pair's first run against one more run whose server answers Close
   3 ms later (``close_reply_delay`` 2 ms → 5 ms): it must be flagged (exit 1);
3. **a repeated baseline** — ``--trials`` times: a ``--repeat`` baseline (default 5 runs), then
   one run with ``close_reply_delay`` 3 ms (a 1 ms shift) that must be flagged, and one
   unchanged run that must not.

Run it on an otherwise idle machine: it measures the gate against the machine's own noise,
and other load on the machine is noise too. Nothing is measured by this script itself: the
verdicts are ``wsload compare``'s exit codes; the script counts them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "ci.toml"
DELAY_LINE = 'close_reply_delay = "2ms"'


@dataclass
class Check:
    """One row of the table: how often ``wsload compare`` flagged a regression."""

    name: str
    goal: str
    should_flag: bool
    flagged: int = 0
    total: int = 0
    details: list[str] = field(default_factory=list)

    def add(self, code: int, output: str) -> None:
        if code not in (0, 1):
            raise RuntimeError(f"wsload compare exited {code}:\n{output}")
        self.total += 1
        self.flagged += code == 1
        if (code == 1) != self.should_flag:  # keep what went wrong, for the report
            lines = [line for line in output.splitlines() if "regressed" in line]
            self.details.append("; ".join(lines) or output.strip().splitlines()[-1])

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "flagged": self.flagged,
            "total": self.total,
            "rate": self.flagged / self.total if self.total else None,
            "goal": self.goal,
            "wrong": self.details,
        }


def _wsload(*args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "wsload", *args], capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout + done.stderr


def _scenario(work: Path, delay: str) -> Path:
    """scenarios/ci.toml with its server's Close reply delayed by ``delay``."""
    text = SCENARIO.read_text(encoding="utf-8")
    if DELAY_LINE not in text:
        raise SystemExit(f"{SCENARIO}: no {DELAY_LINE!r} line to vary")
    path = work / f"ci-{delay}.toml"
    path.write_text(text.replace(DELAY_LINE, f'close_reply_delay = "{delay}"'), encoding="utf-8")
    return path


class Campaign:
    """Runs and compares in ``work``; every run its own results directory."""

    def __init__(self, work: Path, duration: str | None) -> None:
        self.work = work
        self.extra = ["--duration", duration] if duration else []
        self.count = 0

    def run(self, scenario: Path, *args: str) -> Path:
        self.count += 1
        out = self.work / f"run-{self.count:03d}"
        code, output = _wsload(
            "run", str(scenario), "--out", str(out), "--quiet", "--no-report", *self.extra, *args
        )
        if code not in (0, 1):  # 1: a threshold of ci.toml failed; still a result to compare
            raise RuntimeError(f"wsload run {scenario.name} exited {code}:\n{output}")
        return out

    def compare(self, check: Check, baseline: Path, current: Path) -> None:
        check.add(*_wsload("compare", str(baseline), str(current)))
        sys.stderr.write(f"  {check.name}: {check.flagged}/{check.total} flagged\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10, help="back-to-back pairs (checks 1, 2)")
    parser.add_argument("--trials", type=int, default=10, help="repeated baselines (check 3)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per repeated baseline")
    parser.add_argument("--duration", help="override ci.toml's load.duration (quick checks)")
    parser.add_argument("--work", type=Path, help="keep the results here (default: temporary)")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="wsload-ci-gate-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        campaign = Campaign(work, args.duration)
        normal, slow, shifted = (_scenario(work, d) for d in ("2ms", "5ms", "3ms"))
        same = Check("back-to-back runs, default options", "0 flagged", should_flag=False)
        slower = Check("close_reply_delay 2 ms → 5 ms", "all flagged", should_flag=True)
        found = Check(f"--repeat {args.repeat} baseline, 2 ms → 3 ms", ">= 90 % flagged", True)
        quiet = Check(f"--repeat {args.repeat} baseline, unchanged run", "0 flagged", False)
        for pair in range(args.pairs):
            sys.stderr.write(f"pair {pair + 1} of {args.pairs}\n")
            first, second = campaign.run(normal), campaign.run(normal)
            campaign.compare(same, first, second)
            campaign.compare(slower, first, campaign.run(slow))
        for trial in range(args.trials):
            sys.stderr.write(f"repeated baseline {trial + 1} of {args.trials}\n")
            baseline = campaign.run(normal, "--repeat", str(args.repeat))
            campaign.compare(found, baseline, campaign.run(shifted))
            campaign.compare(quiet, baseline, campaign.run(normal))
        checks = [same, slower, found, quiet]
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], indent=2, ensure_ascii=False))
        return 0
    print(f"scenarios/ci.toml{' --duration ' + args.duration if args.duration else ''}")
    print("| check | flagged | rate | goal |")
    print("|---|---:|---:|---|")
    for check in checks:
        rate = f"{100 * check.flagged / check.total:.0f} %" if check.total else "-"
        print(f"| {check.name} | {check.flagged}/{check.total} | {rate} | {check.goal} |")
    for check in checks:
        for detail in check.details:
            print(f"wrong ({check.name}): {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
