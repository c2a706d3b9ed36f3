"""The architecture's rules, checked on the source: every module under wsload/ parsed with
``ast``, every import counted (function-local ones and ``TYPE_CHECKING`` ones included, since
a lazy import is still a dependency).

The rules (docs/architecture.md): imports go one way, down the rank tables below (so no cycle
either); the sans-IO core never imports Trio; exit codes are defined in one module; no function
in the runner is longer than a screen (80 lines).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

import wsload

ROOT = Path(wsload.__file__).parent
MAX_RUNNER_FUNCTION_LINES = 80

PACKAGE_RANKS: dict[str, int] = {
    "wsload.exitcodes": -3,
    "wsload._starting": -2,  # the command's signals while it imports: before anything else
    "wsload._compiled": -1,  # which build runs: chosen before anything else is imported
    "wsload": 0,  # the package itself: the version
    "wsload.errors": 1,
    "wsload.core": 2,
    "wsload.scenario": 3,
    "wsload.plan": 4,
    "wsload.process": 4,
    "wsload.metrics": 5,
    "wsload.engine": 6,
    "wsload.report": 6,
    "wsload.server": 7,
    "wsload.runner": 8,
    "wsload.cli": 9,
    "wsload.__main__": 10,
}
"""Who may import whom: a module imports only from its own package and from packages of a lower
rank; two packages of one rank never import each other (the report knows nothing of the engine).
A new package gets a rank here and in docs/architecture.md's drawing."""

RUNNER_RANKS: dict[str, int] = {
    "wsload.runner": 0,  # the package's docstring: its map
    "wsload.runner.load": 0,
    "wsload.runner.result_files": 0,
    "wsload.runner.endpoint": 0,
    "wsload.runner.executors": 1,
    "wsload.runner.frame": 1,
    "wsload.runner.targets": 2,
    "wsload.runner.options": 3,
    "wsload.runner.modes": 4,
}
"""The same rule inside the runner: the load loop at the bottom, the modes on top."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, ast.Module]:
    return {
        _module_name(path): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(ROOT.rglob("*.py"))
    }


def _imported(module: str, tree: ast.Module) -> Iterator[str]:
    """Every module name ``tree`` imports, anywhere in it; ``from pkg import sub`` counts as
    importing ``pkg.sub`` when that is a module."""
    known = _modules()
    package = module if module in known and _is_package(module) else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    yield f"{base}.{alias.name}"


def _is_package(module: str) -> bool:
    return (ROOT.parent / module.replace(".", "/") / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    """wsload module → the wsload modules it imports."""
    modules = _modules()
    return {
        name: {target for target in _imported(name, tree) if target in modules and target != name}
        for name, tree in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_every_import_kind() -> None:
    """The checks below are only as good as the import walk: a function-local import and a
    ``from package import submodule`` are both seen (execute.py has neither kind by chance)."""
    graph = _graph()
    assert "wsload.report.files" in graph["wsload.runner.frame"]  # from wsload.report import files
    assert "wsload.scenario.parse" in graph["wsload.cli.load"]  # imported inside a command function
    assert len(graph) > 60


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def _place(module: str, ranks: Mapping[str, int]) -> str | None:
    """The entry of ``ranks`` that holds ``module`` (the deepest: ``wsload.runner.modes`` over
    ``wsload.runner``), None when none does."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in ranks:
            return ".".join(parts[:end])
    return None


def _upward(graph: dict[str, set[str]], ranks: Mapping[str, int]) -> set[tuple[str, str]]:
    """Every import that goes to another entry of ``ranks`` not below its own."""
    offending = set()
    for name, targets in graph.items():
        place = _place(name, ranks)
        for target in targets:
            other = _place(target, ranks)
            if place and other and other != place and ranks[other] >= ranks[place]:
                offending.add((name, target))
    return offending


def test_every_package_has_a_rank() -> None:
    unplaced = {
        name
        for name in _modules()
        if _place(name, PACKAGE_RANKS) == "wsload" != name
        or (name.startswith("wsload.runner.") and _place(name, RUNNER_RANKS) == "wsload.runner")
    }
    assert unplaced == set()


def test_imports_go_down_the_package_ranks() -> None:
    assert _upward(_graph(), PACKAGE_RANKS) == set()


def test_imports_go_down_the_runner_ranks() -> None:
    assert _upward(_graph(), RUNNER_RANKS) == set()


def test_the_rank_check_finds_an_upward_import() -> None:
    graph = {
        "wsload.report.html": {"wsload.runner.frame", "wsload.engine.link", "wsload.report.files"},
        "wsload.server.server": {"wsload.engine.link", "wsload.metrics.result"},
        "wsload.runner.load.loop": {"wsload.runner.modes.run", "wsload.runner.load.lag"},
    }
    assert _upward(graph, PACKAGE_RANKS) == {
        ("wsload.report.html", "wsload.runner.frame"),  # up
        ("wsload.report.html", "wsload.engine.link"),  # across: one rank
    }
    assert _upward(graph, RUNNER_RANKS) == {("wsload.runner.load.loop", "wsload.runner.modes.run")}


def test_the_core_imports_no_trio() -> None:
    offending = {
        (name, target)
        for name, tree in _modules().items()
        if name.startswith("wsload.core")
        for target in _imported(name, tree)
        if target == "trio" or target.startswith("trio.")
    }
    assert offending == set()


def _exit_code_definitions(tree: ast.Module) -> Iterator[str]:
    """Names bound to an integer literal that look like exit codes (``EXIT_*``, or an
    ``exit_code`` class attribute), including ``A, B = 0, 1``."""
    for node in ast.walk(tree):
        pairs: list[tuple[ast.expr, ast.expr]] = []
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs.extend(zip(target.elts, node.value.elts, strict=False))
                else:
                    pairs.append((target, node.value))
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            pairs = [(node.target, node.value)]
        else:
            continue
        for target, value in pairs:
            name = target.id if isinstance(target, ast.Name) else None
            if isinstance(target, ast.Attribute):
                name = target.attr
            literal = isinstance(value, ast.Constant) and type(value.value) is int
            if name and literal and (name.startswith("EXIT_") or name == "exit_code"):
                yield name


def test_exit_codes_are_defined_in_exactly_one_module() -> None:
    defining = {
        name: sorted(set(_exit_code_definitions(tree)))
        for name, tree in _modules().items()
        if any(_exit_code_definitions(tree))
    }
    assert defining == {
        "wsload.exitcodes": [
            "EXIT_FAILED",
            "EXIT_INTERRUPTED",
            "EXIT_INVALID",
            "EXIT_OK",
            "EXIT_TOOL",
        ]
    }


def test_no_runner_function_is_longer_than_a_screen() -> None:
    long = {
        f"{name}.{node.name}": node.end_lineno - node.lineno + 1
        for name, tree in _modules().items()
        if name.startswith("wsload.runner")
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_RUNNER_FUNCTION_LINES
    }
    assert long == {}
