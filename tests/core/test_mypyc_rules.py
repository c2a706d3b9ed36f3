"""Rules for the modules setup.py compiles, where mypyc and CPython disagree.

**One type per handler name.** mypyc gives a local one type for the whole function:
``except A as exc: ...`` then ``except B as exc: ...`` types ``exc`` as ``A``, and when ``A``
is a compiled class the second handler raises ``TypeError: A object expected; got B`` the
moment it runs: the exception being recorded is replaced by a crash. Session 9's CI lost a
whole ``--workers 2`` deploy run to exactly that (``ProtocolViolation`` then
``trio.BrokenResourceError`` in ``Driver._upgrade``). The pure sources run it fine, so only a
test on the text catches every handler, including those no loopback test reaches.

**No local from a ``try`` read in its ``finally``.** mypyc 2.4.1 read ``None`` in a ``finally``
from a local assigned in the ``try`` before an ``await`` that raised (docs/performance.md:
the runner's slot records through ``except``/``raise`` for that reason).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def compiled_modules() -> list[Path]:
    """The sources in setup.py's ``COMPILED`` tuple."""
    text = (ROOT / "setup.py").read_text()
    block = text[text.index("COMPILED = (") :]
    block = block[: block.index(")")]
    paths = [ROOT / name for name in re.findall(r'"(wsload/[^"]+\.py)"', block)]
    assert paths and all(path.is_file() for path in paths), paths
    return paths


def broken_in_compiled(rule: Callable[[str], list[str]]) -> dict[str, list[str]]:
    """What ``rule`` finds in each compiled module, by path (modules it finds nothing in left
    out)."""
    return {
        str(path.relative_to(ROOT)): names
        for path in compiled_modules()
        if (names := rule(path.read_text()))
    }


def handler_names_with_two_types(source: str) -> list[str]:
    """``function: name`` for each ``except ... as name`` bound to two exception types in
    one function (nested functions are their own scope)."""
    found = []
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        types: dict[str, set[str]] = {}
        stack: list[ast.AST] = list(ast.iter_child_nodes(function))
        while stack:
            node = stack.pop()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(node, ast.ExceptHandler) and node.name and node.type is not None:
                types.setdefault(node.name, set()).add(ast.unparse(node.type))
            stack.extend(ast.iter_child_nodes(node))
        found += [f"{function.name}: {name}" for name, kinds in types.items() if len(kinds) > 1]
    return found


def finally_reads_of_try_locals(source: str) -> list[str]:
    """``function: name`` for each local a ``try`` with an ``await`` assigns and its
    ``finally`` reads."""
    found = []
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if not isinstance(node, ast.Try) or not node.finalbody:
                continue
            body = [n for statement in node.body for n in ast.walk(statement)]
            if not any(isinstance(n, ast.Await) for n in body):
                continue
            assigned = {
                n.id for n in body if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            }
            read = {
                n.id
                for statement in node.finalbody
                for n in ast.walk(statement)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
            }
            found += [f"{function.name}: {name}" for name in sorted(assigned & read)]
    return found


def test_the_rule_finds_a_reused_handler_name() -> None:
    source = (
        "def f():\n"
        "    try:\n        pass\n    except ValueError as exc:\n        pass\n"
        "    except KeyError as exc:\n        pass\n"
        "    def g():\n"
        "        try:\n            pass\n        except OSError as exc:\n            pass\n"
    )
    assert handler_names_with_two_types(source) == ["f: exc"]


def test_no_compiled_function_binds_one_handler_name_to_two_types() -> None:
    assert broken_in_compiled(handler_names_with_two_types) == {}


def test_the_rule_finds_a_try_local_read_in_finally() -> None:
    source = (
        "async def f(x):\n"
        "    y = 1\n"
        "    try:\n        z = g()\n        await h()\n"
        "    finally:\n        use(y, z)\n"
    )
    assert finally_reads_of_try_locals(source) == ["f: z"]


def test_no_compiled_finally_reads_a_local_its_try_assigned() -> None:
    assert broken_in_compiled(finally_reads_of_try_locals) == {}
