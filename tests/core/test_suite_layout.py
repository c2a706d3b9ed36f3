"""The test suite's own rules (docs/testing.md), checked on its source with ``ast``.

A test module never imports another test module: what two of them share lives in a helper
module in ``tests/`` (importing a test module also collects its tests' names into the
importer, and ties one tier's files to another's). The real-clock allowances are defined once,
in ``tests/timing.py``, so a bound on a busy machine is argued in one place.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("bounded_sync")

TESTS = Path(__file__).resolve().parents[1]
ALLOWANCES = ("SLACK", "EXIT_SLACK")


@cache  # parsed once for both checks
def _trees() -> dict[Path, ast.Module]:
    return {
        path: ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(TESTS.rglob("*.py"))
        if ".venv" not in path.parts
    }


def test_no_test_module_imports_another() -> None:
    offenders = []
    for path, tree in _trees().items():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offenders += [
                f"{path.relative_to(TESTS)}: {name}"
                for name in names
                if name.split(".")[0].startswith("test_")
            ]
    assert offenders == []


def test_real_clock_allowances_are_defined_once() -> None:
    defined = sorted(
        f"{path.relative_to(TESTS)}: {target.id}"
        for path, tree in _trees().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and target.id in ALLOWANCES
    )
    assert defined == [f"timing.py: {name}" for name in sorted(ALLOWANCES)]
