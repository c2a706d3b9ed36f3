"""``benchmarks/ci_gate.py`` in chunks, as on a shared machine: each chunk's comparisons are
kept in ``--work``'s ``checks.jsonl``, the table covers every chunk, and ``--rejudge`` compares
the kept runs again without running any. Real ``wsload`` runs (1 s each) against the built-in
server; the verdicts themselves depend on the machine and are not asserted, their bookkeeping
is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.usefixtures("bounded_sync"), pytest.mark.slow]

CI_GATE = Path(__file__).resolve().parents[2] / "benchmarks" / "ci_gate.py"


def _gate(work: Path, *args: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, str(CI_GATE), "--work", str(work), "--duration", "1s", "--json", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    table: list[dict[str, object]] = json.loads(done.stdout)
    return table


def _kept(work: Path) -> list[dict[str, str]]:
    lines = (work / "checks.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_chunks_add_up_and_a_rejudge_keeps_every_pair(tmp_path: Path) -> None:
    work = tmp_path / "gate"
    first = _gate(work, "--pairs", "1", "--trials", "0")
    assert [(row["check"], row["total"]) for row in first] == [
        ("back-to-back runs, default options", 1),
        ("close_reply_delay 2 ms → 5 ms", 1),
    ]
    second = _gate(work, "--pairs", "0", "--repeat", "2", "--trials", "1")
    assert [(row["check"], row["total"]) for row in second] == [
        *((row["check"], 1) for row in first),
        ("--repeat 2 baseline, 2 ms → 3ms", 1),
        ("--repeat 2 baseline, unchanged run", 1),
    ]
    kept = _kept(work)
    assert len(kept) == 4
    assert len({r["current"] for r in kept}) == 4  # the second chunk numbered its runs on
    assert all(r["verdict"] in ("regressed", "inconclusive", "ok") for r in kept)
    runs = sorted(p.name for p in work.glob("run-*"))
    assert len(runs) == 3 + 3  # a pair and its slower run; a 2-run baseline and two runs

    again = _gate(work, "--rejudge")
    assert [(row["check"], row["total"]) for row in again] == [
        (row["check"], row["total"]) for row in second
    ]
    rejudged = _kept(work)
    assert [(r["baseline"], r["current"]) for r in rejudged] == [
        (r["baseline"], r["current"]) for r in kept
    ]
    assert sorted(p.name for p in work.glob("run-*")) == runs  # no run made
