"""Where the suite's CPU goes: each test's CPU time, its own process's and its children's.

The suite is CPU-bound on CI's two cores (three pytest-xdist workers, and most tests start
``wsload`` children), so its wall time is about its CPU time over two: a test that waits costs
little, one that starts processes can cost far more than its wall time says. Opt-in, as a
plugin (from the repository's root; pytest-xdist passes it on to its workers)::

    WSLOAD_CPU_LOG=/tmp/cpu.jsonl .venv/bin/python -m pytest -p tests.cputime tests/process
    .venv/bin/python tests/cputime.py /tmp/cpu.jsonl     # the files that cost most, and totals

Each test appends one JSON line: its id, the worker, wall seconds, and CPU seconds (user +
system) of the worker itself and of the children it reaped during the test (``wsload`` runs,
built-in servers, Chromium: a process counts once it has been waited for, so a fixture's
process is counted in the test whose teardown ends it).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

LOG_ENV = "WSLOAD_CPU_LOG"


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, Any, None]:
    """Setup, call and teardown of one test, measured as a whole."""
    wall, own, children = (
        time.monotonic(),
        _cpu(resource.RUSAGE_SELF),
        _cpu(resource.RUSAGE_CHILDREN),
    )
    yield
    line = {
        "test": item.nodeid,
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "wall": round(time.monotonic() - wall, 3),
        "cpu_self": round(_cpu(resource.RUSAGE_SELF) - own, 3),
        "cpu_children": round(_cpu(resource.RUSAGE_CHILDREN) - children, 3),
    }
    path = Path(os.environ.get(LOG_ENV, "cputime.jsonl"))
    with path.open(
        "a", encoding="utf-8"
    ) as log:  # one short write per line: workers interleave whole lines
        log.write(json.dumps(line) + "\n")


def summary(path: Path, top: int = 40) -> str:
    """The ``top`` files by CPU (own + children), then the totals."""
    files: dict[str, list[float]] = {}
    for text in path.read_text(encoding="utf-8").splitlines():
        line = json.loads(text)
        name = line["test"].split("::")[0]
        row = files.setdefault(name, [0.0, 0.0, 0.0, 0])
        row[0] += line["cpu_self"]
        row[1] += line["cpu_children"]
        row[2] += line["wall"]
        row[3] += 1
    ranked = sorted(files.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))
    out = ["  cpu s   self  children   wall s  tests  file"]
    for name, (own, children, wall, count) in ranked[:top]:
        out.append(
            f"{own + children:7.1f} {own:6.1f} {children:9.1f} {wall:8.1f} {count:6d}  {name}"
        )
    own = sum(r[0] for r in files.values())
    children = sum(r[1] for r in files.values())
    wall = sum(r[2] for r in files.values())
    out.append(
        f"{own + children:7.1f} {own:6.1f} {children:9.1f} {wall:8.1f}  all {len(files)} files"
    )
    return "\n".join(out)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40))
