"""Where a client's CPU per clean-close cycle goes: ``cycle.py``'s wsload and raw-trio clients
under cProfile, grouped by layer, side by side.

    python benchmarks/profile_cycle.py                     # Node ws target, 2,000 cycles each
    python benchmarks/profile_cycle.py --cycles 3000 --top 25

The target runs pinned to one CPU as in ``cycle.py``, this process on the other. Each client
first runs once unprofiled (imports, caches), then its measured run (``measure_cycles``, the
same code as ``cycle.py``'s wsload figure with its own 100-cycle warm-up, or ``measure_bare``)
runs under cProfile. Profiled times are inflated by the profiler (every Python call pays for
it), so the shares and the call counts are the figures, not the µs; the µs column is what the
profiler saw, per cycle, for comparing layers.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
from collections import defaultdict
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bare import measure_bare
from cycle import _cpus, _raise_nofile, _running_target

from wsload.runner.modes.calibrate import measure_cycles

__all__ = ["group_of", "main"]

_OUTSIDE = ("<built-in method gc.collect>",)
"""Profiled but outside the measured window (``measure_cycles`` collects before its rusage)."""
_GROUPS = (
    "socket syscalls (send/write, recv, connect, close, socket, ...)",
    "epoll_wait",
    "epoll_ctl (Trio's registration per wait)",
    "Trio (scheduler, cancel scopes, traps)",
    "wsload.engine (driver, link, session, behaviours)",
    "wsload.core (frames, close tracker, upgrade, protocol, record)",
    "wsload.metrics + hdrh (recording)",
    "wsload.runner + plan",
    "the raw loop (bare.py)",
    "wsproto",
    "stdlib Python",
    "other builtins",
    "other",
)


def group_of(filename: str, name: str) -> str:
    """The layer a profiled function belongs to (one of ``_GROUPS``)."""
    if filename == "~":
        if "select.epoll" in name:
            return _GROUPS[1] if "'poll'" in name else _GROUPS[2]
        if "socket" in name or "posix.write" in name:  # wsload's Link writes with os.write
            return _GROUPS[0]
        return _GROUPS[11]
    path = filename.replace(os.sep, "/")
    for needle, group in (
        ("/trio/", 3),
        ("/outcome/", 3),
        ("/sniffio/", 3),
        ("/wsload/engine/", 4),
        ("/wsload/core/", 5),
        ("/wsload/metrics/", 6),
        ("/hdrh/", 6),
        ("/wsload/runner/", 7),
        ("/wsload/plan/", 7),
        ("benchmarks/bare.py", 8),
        ("/wsproto/", 9),
    ):
        if needle in path:
            return _GROUPS[group]
    if "/lib/python3" in path and "site-packages" not in path:
        return _GROUPS[10]
    return _GROUPS[12]


def _profile(kind: str, url: str, cycles: int, concurrency: int) -> pstats.Stats:
    """Run once unprofiled (5 cycles per task), then ``cycles`` cycles under cProfile."""

    def run(n: int) -> None:
        if kind == "wsload":
            trio.run(measure_cycles, url, n, concurrency)
        else:
            trio.run(measure_bare, kind, url, n, concurrency)

    run(5 * concurrency)
    profiler = cProfile.Profile()
    profiler.enable()
    run(cycles)
    profiler.disable()
    return pstats.Stats(profiler)


def _table(stats: dict[str, pstats.Stats], cycles: int, top: int) -> str:
    rows: dict[str, dict[str, list[float]]] = {}
    lines = []
    for kind, st in stats.items():
        by_group: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        raw = st.stats  # type: ignore[attr-defined]
        for (filename, _line, name), (_cc, calls, tottime, _ct, _callers) in raw.items():
            if name in _OUTSIDE:
                continue
            entry = by_group[group_of(filename, name)]
            entry[0] += tottime
            entry[1] += calls
        rows[kind] = by_group
    kinds = list(stats)
    totals = {k: sum(v[0] for v in rows[k].values()) for k in kinds}
    calls = {k: sum(v[1] for v in rows[k].values()) for k in kinds}
    head = "".join(f"{k + ': share':>18}{'µs/cycle':>10}{'calls/cycle':>13}" for k in kinds)
    lines.append(f"{'layer':<64}{head}")
    for group in _GROUPS:
        if not any(group in rows[k] for k in kinds):
            continue
        cells = ""
        for k in kinds:
            tt, n = rows[k].get(group, [0.0, 0.0])
            cells += f"{100 * tt / totals[k]:>17.1f}%{tt * 1e6 / cycles:>10.1f}{n / cycles:>13.1f}"
        lines.append(f"{group:<64}{cells}")
    total = "".join(
        f"{'':>18}{totals[k] * 1e6 / cycles:>10.1f}{calls[k] / cycles:>13.1f}" for k in kinds
    )
    lines.append(f"{'total (profiled)':<64}{total}")
    for kind, st in stats.items():
        raw = st.stats  # type: ignore[attr-defined]
        inside = [item for item in raw.items() if item[0][2] not in _OUTSIDE]
        for what, column in (("own time", 2), ("calls", 1)):
            lines.append("")
            lines.append(
                f"{kind}: the {top} functions with the most {what} (µs per cycle, calls per cycle)"
            )
            ranked = sorted(inside, key=lambda item: item[1][column], reverse=True)[:top]
            for (filename, line, name), (_cc, n, tottime, _ct, _callers) in ranked:
                where = (
                    name
                    if filename == "~"
                    else f"{Path(filename).parent.name}/{Path(filename).name}:{line} {name}"
                )
                lines.append(f"  {tottime * 1e6 / cycles:8.2f} {n / cycles:7.2f}  {where}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("auto", "node", "builtin"), default="auto")
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--compare", default="raw-trio", help="'' for wsload alone")
    parser.add_argument("--top", type=int, default=15, help="functions listed per client")
    args = parser.parse_args()
    _raise_nofile()
    pinned = _cpus()
    with _running_target(args.target, pinned[0] if pinned else None) as (url, description):
        if pinned:
            os.sched_setaffinity(0, {pinned[1]})
        kinds = ["wsload", *[k for k in args.compare.split(",") if k]]
        stats = {k: _profile(k, url, args.cycles, args.concurrency) for k in kinds}
    print(f"target: {description}; {args.cycles} cycles each, concurrency {args.concurrency}")
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(_table(stats, args.cycles, args.top))


if __name__ == "__main__":
    main()
