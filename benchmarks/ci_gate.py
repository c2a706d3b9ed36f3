"""Measure the CI gate's error rates: false regressions on identical runs, misses on real ones.

The campaign behind the figures in docs/ci.md ("Measured error rates"), run as a user would
run the gate, every ``wsload`` a fresh process, default comparison options::

    python benchmarks/ci_gate.py                       # the full campaign (~10 min)
    python benchmarks/ci_gate.py --pairs 1 --trials 1 --duration 1s   # a quick check
    python benchmarks/ci_gate.py --repeat 1,3,5 --shift 5ms --hog   # issue 29's campaign
    python benchmarks/ci_gate.py --json

Three checks, on ``scenarios/ci.toml`` (its built-in server answers Close after 2 ms):

1. **false regressions** — ``--pairs`` times: two runs back to back, then ``wsload compare``;
   any exit 1 is a false regression (the target did not change);
2. **a slower server** — each pair's first run against one more run whose server answers Close
   3 ms later (``close_reply_delay`` 2 ms → 5 ms): it must be flagged (exit 1);
3. **a repeated baseline** — ``--trials`` times for each of ``--repeat`` (default 5 runs;
   ``--repeat 1,3,5`` runs the checks against each size): a baseline of that many runs, then
   one run with ``close_reply_delay`` ``--shift`` (default 3 ms: a 1 ms shift) that must be
   flagged, and one unchanged run that must not;
4. **a busy machine** (``--hog``) — the current run of an unchanged pair, and of each repeated
   baseline's unchanged run, again with a CPU hog on every core (``python -c "while 1: pass"``
   × ``os.cpu_count()``, during the current run only): never a regression. The comparison
   judges the generator (docs/ci.md): such a run is ``inconclusive``, with the reason.

A comparison ends in one of three verdicts (``wsload compare`` exit 0, or 1 with ``verdict:
inconclusive`` or a regression); the table counts regressions ("flagged") and inconclusive
ones apart.

Run it on an otherwise idle machine: it measures the gate against the machine's own noise,
and other load on the machine is noise too. Nothing is measured by this script itself: the
verdicts are ``wsload compare``'s exit codes; the script counts them.

**In chunks** (a shared machine lends a benchmark a few minutes at a time): with ``--work DIR``
every comparison is also appended to ``DIR/checks.jsonl`` (check, the two results directories,
the verdict), the runs continue the directory's numbering, and the table covers every
comparison kept there, so chunks add up::

    python benchmarks/ci_gate.py --work W --pairs 10 --trials 0 --hog
    python benchmarks/ci_gate.py --work W --pairs 0 --repeat 1 --trials 10 --shift 5ms --hog
    python benchmarks/ci_gate.py --work W --pairs 0 --repeat 3 --trials 10 --shift 5ms --hog
    python benchmarks/ci_gate.py --work W --pairs 0 --repeat 5 --trials 5 --shift 5ms --hog  # twice

``--rejudge`` runs no load: it compares every kept pair again with the installed ``wsload
compare`` (a changed rule judged on the same runs) and rewrites ``checks.jsonl``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
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
    inconclusive: int = 0
    total: int = 0
    details: list[str] = field(default_factory=list)

    def add(self, code: int, output: str) -> tuple[str, str]:
        """Count one comparison: its verdict (``regressed``, ``inconclusive``, ``ok``) and,
        when it went the wrong way, the figures that did."""
        if code not in (0, 1):
            raise RuntimeError(f"wsload compare exited {code}:\n{output}")
        undecided = code == 1 and "verdict: inconclusive" in output
        flagged = code == 1 and not undecided
        verdict = "regressed" if flagged else "inconclusive" if undecided else "ok"
        detail = ""
        if flagged != self.should_flag:  # keep what went wrong, for the report
            lines = [line.strip() for line in output.splitlines() if "regressed" in line]
            detail = "; ".join(lines) or output.strip().splitlines()[-1]
        self.count(verdict, detail)
        return verdict, detail

    def count(self, verdict: str, detail: str) -> None:
        self.total += 1
        self.inconclusive += verdict == "inconclusive"
        self.flagged += verdict == "regressed"
        if detail:
            self.details.append(detail)

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "flagged": self.flagged,
            "inconclusive": self.inconclusive,
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


@contextlib.contextmanager
def cpu_hog(processes: int) -> Iterator[None]:
    """``processes`` busy loops (one per core: the machine is busy) until the block ends."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait(timeout=10)


class Campaign:
    """Runs and compares in ``work``; every run its own results directory, every comparison a
    line of ``checks.jsonl`` (so that chunks add up and a changed rule can re-judge them)."""

    def __init__(self, work: Path, duration: str | None) -> None:
        self.work = work
        self.extra = ["--duration", duration] if duration else []
        self.count = len(list(work.glob("run-*")))
        self.log = work / "checks.jsonl"

    def run(self, scenario: Path, *args: str, hog: bool = False) -> Path:
        self.count += 1
        out = self.work / f"run-{self.count:03d}"
        with cpu_hog(os.cpu_count() or 1) if hog else contextlib.nullcontext():
            code, output = _wsload(
                "run", str(scenario), "--out", str(out), "--quiet", "--no-report",
                *self.extra, *args,
            )  # fmt: skip
        if code not in (0, 1):  # 1: a threshold of ci.toml failed; still a result to compare
            raise RuntimeError(f"wsload run {scenario.name} exited {code}:\n{output}")
        return out

    def compare(self, check: Check, baseline: Path, current: Path) -> None:
        verdict, detail = check.add(*_wsload("compare", str(baseline), str(current)))
        record = {
            "check": check.name, "goal": check.goal, "should_flag": check.should_flag,
            "baseline": baseline.name, "current": current.name, "verdict": verdict,
            "detail": detail,
        }  # fmt: skip
        with self.log.open("a", encoding="utf-8") as log:
            log.write(json.dumps(record, ensure_ascii=False) + "\n")
        sys.stderr.write(
            f"  {check.name}: {check.flagged}/{check.total} flagged, "
            f"{check.inconclusive} inconclusive\n"
        )

    def kept(self) -> list[dict[str, Any]]:
        """Every comparison ``checks.jsonl`` holds, in order."""
        if not self.log.is_file():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]

    def rejudge(self) -> None:
        """Compare every kept pair again with the installed ``wsload compare``."""
        records = self.kept()
        for record in records:
            check = Check(record["check"], record["goal"], record["should_flag"])
            baseline, current = self.work / record["baseline"], self.work / record["current"]
            compared = _wsload("compare", str(baseline), str(current))
            record["verdict"], record["detail"] = check.add(*compared)
        self.log.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
        )

    def table(self) -> list[Check]:
        """The checks of every kept comparison, in the order they first appear."""
        checks: dict[str, Check] = {}
        for record in self.kept():
            name = record["check"]
            check = checks.setdefault(name, Check(name, record["goal"], record["should_flag"]))
            check.count(record["verdict"], record["detail"])
        return list(checks.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10, help="back-to-back pairs (checks 1, 2)")
    parser.add_argument("--trials", type=int, default=10, help="repeated baselines (check 3)")
    parser.add_argument(
        "--repeat", default="5", help="runs per repeated baseline; several: --repeat 1,3,5"
    )
    parser.add_argument("--shift", default="3ms", help="the repeated checks' slower server")
    parser.add_argument(
        "--hog", action="store_true", help="also the unchanged current runs under a CPU hog"
    )
    parser.add_argument("--duration", help="override ci.toml's load.duration (quick checks)")
    parser.add_argument("--work", type=Path, help="keep the results here (default: temporary)")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    parser.add_argument(
        "--rejudge", action="store_true", help="no runs: compare the --work DIR's pairs again"
    )
    args = parser.parse_args(argv)
    repeats = [int(n) for n in str(args.repeat).split(",")]
    if args.rejudge and args.work is None:
        parser.error("--rejudge needs --work DIR")

    with tempfile.TemporaryDirectory(prefix="wsload-ci-gate-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        campaign = Campaign(work, args.duration)
        if args.rejudge:
            campaign.rejudge()
        else:
            _measure(campaign, args.pairs, args.trials, repeats, args.shift, hog=args.hog)
        checks = campaign.table()
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], indent=2, ensure_ascii=False))
        return 0
    print(f"scenarios/ci.toml{' --duration ' + args.duration if args.duration else ''}")
    print("| check | flagged | inconclusive | rate | goal |")
    print("|---|---:|---:|---:|---|")
    for check in checks:
        rate = f"{100 * check.flagged / check.total:.0f} %" if check.total else "-"
        print(
            f"| {check.name} | {check.flagged}/{check.total} | {check.inconclusive} | {rate} "
            f"| {check.goal} |"
        )
    for check in checks:
        for detail in check.details:
            print(f"wrong ({check.name}): {detail}")
    return 0


def _measure(
    campaign: Campaign, pairs: int, trials: int, repeats: list[int], shift: str, *, hog: bool
) -> None:
    """Run the checks (module docstring), each comparison kept in the campaign's log."""
    normal, slow, shifted = (_scenario(campaign.work, d) for d in ("2ms", "5ms", shift))
    same = Check("back-to-back runs, default options", "0 flagged", should_flag=False)
    slower = Check("close_reply_delay 2 ms → 5 ms", "all flagged", should_flag=True)
    hogged = Check("unchanged, CPU hog on every core in the current run", "0 flagged", False)
    for pair in range(pairs):
        sys.stderr.write(f"pair {pair + 1} of {pairs}\n")
        first, second = campaign.run(normal), campaign.run(normal)
        campaign.compare(same, first, second)
        campaign.compare(slower, first, campaign.run(slow))
        if hog:
            campaign.compare(hogged, first, campaign.run(normal, hog=True))
    for repeat in repeats if trials else ():
        runs = ("--repeat", str(repeat)) if repeat > 1 else ()
        name = f"--repeat {repeat} baseline" if repeat > 1 else "1-run baseline"
        found = Check(f"{name}, 2 ms → {shift}", "all flagged", should_flag=True)
        quiet = Check(f"{name}, unchanged run", "0 flagged", should_flag=False)
        busy = Check(f"{name}, unchanged run under a CPU hog", "0 flagged", False)
        for trial in range(trials):
            sys.stderr.write(f"{name} {trial + 1} of {trials}\n")
            baseline = campaign.run(normal, *runs)
            campaign.compare(found, baseline, campaign.run(shifted))
            campaign.compare(quiet, baseline, campaign.run(normal))
            if hog:
                campaign.compare(busy, baseline, campaign.run(normal, hog=True))


if __name__ == "__main__":
    sys.exit(main())
