"""Shared test plumbing: the tiers, and the bounds of synchronous tests.

The tests live in one folder per tier (docs/testing.md), and each folder's tests get its
marker here, so ``-m "core or engine"`` picks the quick tier wherever the files are run from:

    core      pure code: the sans-IO core, scenario parsing, plans, metrics, report renderers
    engine    the driver and the built-in server on memory streams or loopback, in-process
    runner    whole runs in-process (``run_load``, ``execute_run``)
    cli       the commands through Typer's ``CliRunner``
    process   real processes as the subject: ``wsload`` children, signals, worker processes,
              a Dask cluster, headless Chromium, ruff and mypy

The shared helpers are modules in ``tests/`` itself (``peers``, ``hostile``, ``server_clients``,
``runs``, ``records``, ``timing``, ``children``, ``shipped``, ``browser``; ``tests/node``,
listed in docs/testing.md); this file puts ``tests/`` and every tier folder on ``sys.path``,
so ``from peers import ...`` works from any tier. A test module never imports another test
module: what two of them share moves to a helper module.
"""

from __future__ import annotations

import compileall
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import Chromium, chromium_skip_reason
from hypothesis import settings
from npm import SERVER_PACKAGES, SERVERS, npm_skip_reason
from shipped import ShippedRuns
from timing import time_limit

TIERS = ("core", "engine", "runner", "cli", "process")
"""The tier folders under ``tests/``; each is also a marker (registered in pyproject.toml)."""

_TESTS = Path(__file__).resolve().parent

# Hypothesis's default 200 ms deadline per example is a real-clock bound a busy machine breaks
# (a loaded machine stretches an example's real time several-fold); the tests' CPU-time
# bound (``bounded_sync``) is what catches an example that never ends.
settings.register_profile("busy_machine", deadline=None)
settings.load_profile("busy_machine")

for _folder in (_TESTS, *(_TESTS / tier for tier in TIERS)):
    if _folder.is_dir() and str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))


@pytest.fixture(autouse=True, scope="session")
def _calibration_apart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``wsload calibrate`` run by a test saves its figure in a temporary file, never in the
    machine's cache that later runs size their workers from (``WSLOAD_CALIBRATION``)."""
    path = tmp_path_factory.mktemp("calibration") / "calibration.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WSLOAD_CALIBRATION", str(path))
        yield


_BYTECODE_FOLDERS = ("wsload", "benchmarks", "tests")
_NOT_COMPILED = re.compile(r"/node_modules/|(^|/)(test_[^/]*|conftest)\.py$")
"""Test modules and conftest files (pytest imports them rewritten, with bytecode of its own),
and npm's packages."""


def pytest_configure(config: pytest.Config) -> None:
    """Write the bytecode of wsload's sources (and of the benchmark and helper modules tests
    start children from) once, in the main pytest process, before a worker starts.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (this machine's environment sets it, and CI's
    may), no process writes any: every ``wsload`` child, every generator worker and built-in
    server it spawns and each pytest-xdist worker compiled wsload's sources again, ≈ 0.2 s of
    CPU per process (docs/testing.md, "Where CI's time goes", session 9). ``compileall``
    writes it whatever that variable says, and every process then reads it (the variable only
    stops writes). A file already compiled is only checked (its time and size).
    """
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the main process did it
        return
    root = _TESTS.parent
    for folder in _BYTECODE_FOLDERS:
        compileall.compile_dir(root / folder, quiet=2, rx=_NOT_COMPILED)  # an error shows on import


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with the tier of the folder it lives in (``tests/<tier>/...``), then put
    the files that take longest first (:func:`_longest_first`)."""
    tiers: dict[Path, str] = {}
    for item in items:
        path = item.path.resolve()
        tier = path.relative_to(_TESTS).parts[0] if path.is_relative_to(_TESTS) else ""
        tiers[item.path] = tier
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
    items[:] = _longest_first(items, tiers)


def _longest_first(items: list[pytest.Item], tiers: dict[Path, str]) -> list[pytest.Item]:
    """The files in the order pytest-xdist should hand them out (``--dist loadfile
    --no-loadscope-reorder`` in addopts keep it), each file's tests in their own order.

    Each worker process takes a whole file when it is done with one, so a file that takes a
    minute is best started first: the heaviest tier first (``process``, then ``cli``,
    ``runner``, ``engine``, ``core``), within a tier the files with a ``slow`` test first,
    then the files with more tests. xdist's own order (most tests first) started the files of
    one or two long tests (10,000 connections, the pure-build pass, the CI-gate campaign)
    last, where one worker ran them alone (docs/testing.md, "Three worker processes").
    """
    files: dict[Path, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.path, []).append(item)
    heaviest = tuple(reversed(TIERS))

    def weight(path: Path) -> tuple[int, bool, int]:
        tier = tiers[path]
        rank = heaviest.index(tier) if tier in heaviest else len(heaviest)
        slow = any(test.get_closest_marker("slow") for test in files[path])
        return rank, not slow, -len(files[path])

    return [item for path in sorted(files, key=weight) for item in files[path]]


@pytest.fixture
def bounded_sync() -> Iterator[None]:
    """Bound a synchronous test at 20 s of CPU time (300 s of real time, for a wait that never
    ends): see ``timing.time_limit``.

    Pure code never reaches a Trio checkpoint, so ``trio.fail_after`` cannot bound it.
    Use with ``pytestmark = pytest.mark.usefixtures("bounded_sync")``.
    """
    with time_limit(20, 300):
        yield


@pytest.fixture
def bounded_slow() -> Iterator[None]:
    """``bounded_sync`` at 180 s of CPU (900 s real), for synchronous tests that make whole runs
    (CLI, browser)."""
    with time_limit(180, 900):
        yield


@pytest.fixture(scope="module")
def loopback_chromium() -> Iterator[Chromium]:
    """One headless Chromium per module whose pages may reach 127.0.0.1 (WebSockets to test
    servers); skipped with the reason when it cannot run."""
    reason = chromium_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with Chromium(loopback=True) as browser:
        yield browser


@pytest.fixture(scope="module")
def shipped_node_servers() -> None:
    """The shipped scenarios' Node servers (scenarios/servers: ``ws``, Socket.IO, graphql-ws)
    can run, their packages installed once; else the module's tests skip with the reason."""
    reason = npm_skip_reason(SERVERS, SERVER_PACKAGES, "the shipped Node servers")
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def shipped_runs(tmp_path_factory: pytest.TempPathFactory) -> ShippedRuns:
    """Each shipped scenario run once per session, shared by the tiers that read its results
    (the CLI tier's summary checks, the process tier's browser), in a folder every
    pytest-xdist worker of the session shares; see tests/shipped.py."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own
    return ShippedRuns(root / "shipped")


def pytest_report_header() -> str:
    """Which build of wsload's per-cycle modules this run tests (wsload/_compiled.py)."""
    from wsload._compiled import status

    return f"wsload build: {status()}"
