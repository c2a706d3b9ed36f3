"""The generator's memory over a long run: does RSS stay flat as connections accumulate?

Runs ``wsload run`` (a real subprocess) against the built-in server with an open-loop arrival
rate until ``--connections`` are attempted, sampling the generator's resident set size from
``/proc/<pid>/status`` (the built-in server is a child process and is not counted). Prints the
curve and writes it as JSON (``--out``). A flat curve after warm-up means nothing per connection
is retained; the summary's ``totals.attempted`` says how many connections the curve covers.

    python benchmarks/rss_long_run.py                       # 200,000 connections at 2,000/s
    python benchmarks/rss_long_run.py --connections 20000 --rate 1000
    python benchmarks/rss_long_run.py --record-connections  # also stream connections.jsonl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCENARIO = """
name = "rss-long-run"
seed = 1
[target]
url = "builtin"
[load]
model = "arrival"
rate = {rate}
connections = {connections}
max_in_flight = 2000
[session]
messages = 1
[[close]]
kind = "clean"
weight = 3
[[close]]
kind = "terminate"
weight = 1
"""


def rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB (None once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def run(connections: int, rate: float, every: float, record: bool, work: Path) -> dict[str, Any]:
    scenario = work / "scenario.toml"
    scenario.write_text(SCENARIO.format(rate=rate, connections=connections), encoding="utf-8")
    out = work / "out"
    command = [sys.executable, "-m", "wsload", "run", str(scenario), "--out", str(out), "-q"]
    if record:
        command += ["--record-connections", str(work / "connections.jsonl")]
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    curve: list[tuple[float, int]] = []
    while proc.poll() is None:
        kib = rss_kib(proc.pid)
        if kib is not None:
            curve.append((round(time.monotonic() - started, 2), kib))
        time.sleep(every)
    _, err = proc.communicate()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"wsload run failed ({proc.returncode}): {err}")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return {
        "connections": connections,
        "rate": rate,
        "attempted": summary["totals"]["attempted"],
        "dropped": summary["totals"]["dropped"],
        "outcomes": {k: v for k, v in summary["outcomes"].items() if v},
        "duration_s": summary["duration_s"],
        "saturated": summary["generator"]["saturated"],
        "record_connections": record,
        "curve": [{"t_s": t, "rss_kib": kib} for t, kib in curve],
    }


def describe(result: dict[str, Any]) -> str:
    curve = [point["rss_kib"] for point in result["curve"]]
    if not curve:
        return "no samples"
    mib = [kib / 1024 for kib in curve]
    warm = mib[len(mib) // 10 :] or mib  # after the first 10 %: imports and warm-up done
    lines = [
        f"connections attempted {result['attempted']} (dropped {result['dropped']}) in "
        f"{result['duration_s']:.1f} s, saturated={result['saturated']}",
        f"outcomes {result['outcomes']}",
        f"RSS MiB  start {mib[0]:.1f}  after warm-up {warm[0]:.1f}  middle {mib[len(mib) // 2]:.1f}"
        f"  end {mib[-1]:.1f}  max {max(mib):.1f}"
        f"  (growth after warm-up {warm[-1] - warm[0]:+.1f})",
    ]
    step = max(1, len(mib) // 20)
    lines += [
        f"  t={p['t_s']:7.1f}s  {p['rss_kib'] / 1024:7.1f} MiB" for p in result["curve"][::step]
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--every", type=float, default=0.5, help="sampling period, seconds")
    parser.add_argument("--record-connections", action="store_true")
    parser.add_argument("--out", type=Path, help="write the curve as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wsload-rss-") as tmp:
        result = run(args.connections, args.rate, args.every, args.record_connections, Path(tmp))
    print(describe(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"curve written to {args.out}")


if __name__ == "__main__":
    main()
