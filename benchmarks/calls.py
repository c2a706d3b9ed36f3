"""Python-level calls per clean-close cycle, by package: what the interpreter still runs.

A count, not a time, so it holds on a busy machine: cProfile's call counts over ``--cycles``
clean-close cycles (the ``cycle.py`` workload: ``measure_cycles`` at concurrency 20) against
``wsload serve`` in a child process. Compiled (mypyc) functions are invisible to the profiler,
so the difference between ``WSLOAD_PURE=1`` and the compiled build is the Python it removed,
and what is left is the interpreted rest (Trio, the stdlib, the runner)::

    python benchmarks/calls.py
    WSLOAD_PURE=1 python benchmarks/calls.py
    python benchmarks/calls.py --rate 2000     # the open loop (arrival model) at 2,000/s
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import subprocess
import sys

import trio

from wsload._compiled import status
from wsload.runner.modes.calibrate import _WARMUP, measure_cycles


def _group(file: str) -> str:
    if "wsload/" in file:
        return "wsload." + file.split("wsload/")[-1].split("/")[0].removesuffix(".py")
    if "/trio/" in file:
        return "trio"
    return "builtins (C)" if file == "~" else "other Python (stdlib, outcome, hdrh, ...)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--top", type=int, default=15, help="busiest non-wsload functions")
    parser.add_argument("--rate", type=float, help="open loop at this many connections/s")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "wsload", "serve", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[-1].rstrip("/") + "/"
        profile = cProfile.Profile()
        profile.enable()
        trio.run(measure_cycles, url, args.cycles, 20, args.rate)
        profile.disable()
    finally:
        server.terminate()
        server.wait(10)
    cycles = args.cycles + min(_WARMUP, args.cycles)  # measure_cycles warms up first
    stats: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    groups: collections.Counter[str] = collections.Counter()
    for (file, _, _), (_, calls, *_) in stats.items():
        groups[_group(file)] += calls
    print(f"{status()}: {sum(groups.values()) / cycles:.0f} Python-level calls per cycle")
    for group, calls in groups.most_common():
        print(f"  {calls / cycles:7.1f}  {group}")
    busiest = sorted(
        ((calls, f"{'/'.join(file.split('/')[-2:])}:{name}")
         for (file, _, name), (_, calls, *_) in stats.items()
         if "wsload/" not in file and file != "~"),
        reverse=True,
    )  # fmt: skip
    print("busiest functions outside wsload (calls per cycle):")
    for calls, where in busiest[: args.top]:
        print(f"  {calls / cycles:7.1f}  {where}")


if __name__ == "__main__":
    main()
