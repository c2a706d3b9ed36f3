"""Which build of the hot pure modules runs: mypyc-compiled, or the ``.py`` sources.

``setup.py`` compiles the pure hot modules (``wsload/core/*``) with mypyc when the package is
built, and writes :data:`MANIFEST` next to this file: each compiled module's name and the
SHA-256 of the source it was compiled from. An extension module shadows the ``.py`` of the
same name, so without a check an editable install would keep running the compiled code of a
source that has since changed. :func:`select` (called once, from ``wsload/__init__.py``, before
any other wsload module is imported) therefore uses the compiled modules only when every one
of them is fresh and ``WSLOAD_PURE`` is not set; otherwise a finder placed first on
``sys.meta_path`` loads all of them from their ``.py``. It is all or nothing because compiled
modules of one group call each other natively: a compiled ``frames`` would keep calling the
compiled ``codes`` even if ``codes`` were loaded from source.

Rebuild after editing a compiled module: ``pip install -e .`` (or ``pip install -e '.[test]'``).
Until then wsload runs that group as pure Python, correct and slower; ``wsload calibrate`` and
the pytest header say which build runs and why.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

__all__ = ["MANIFEST", "PURE_ENV", "Build", "select", "status"]

MANIFEST = "_mypyc_manifest.json"
PURE_ENV = "WSLOAD_PURE"


@dataclass(frozen=True, slots=True)
class Build:
    """What :func:`select` decided.

    Attributes:
        compiled: the mypyc-compiled modules are in use.
        reason: why not, or ``"compiled"``: one line for people.
        modules: the modules the build covers (empty when nothing was compiled).
    """

    compiled: bool
    reason: str
    modules: tuple[str, ...]


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the listed modules' ``.py`` files, ahead of the extension modules beside them."""

    def __init__(self, names: frozenset[str]) -> None:
        self._names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self._names or path is None:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for entry in path:
            source = os.path.join(entry, leaf)
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def _source(package: Path, module: str) -> Path:
    return package.joinpath(*module.split(".")[1:]).with_suffix(".py")


def _decide(package: Path) -> Build:
    try:
        manifest: dict[str, str] = json.loads((package / MANIFEST).read_text())
    except FileNotFoundError:
        return Build(False, "pure Python (installed without compiling)", ())
    modules = tuple(sorted(manifest))
    if os.environ.get(PURE_ENV):
        return Build(False, f"pure Python ({PURE_ENV} is set)", modules)
    stale = [
        name
        for name, digest in manifest.items()
        if hashlib.sha256(_source(package, name).read_bytes()).hexdigest() != digest
    ]
    if stale:
        return Build(
            False,
            f"pure Python ({', '.join(stale)} changed since the build: pip install -e .)",
            modules,
        )
    return Build(True, "compiled", modules)


_build: Build | None = None


def select(package: Path | None = None) -> Build:
    """Decide once per process; route the compiled modules to their sources unless fresh.

    Args:
        package: the ``wsload`` package directory (default: this file's directory).

    Returns:
        The decision, also available later from :func:`status`.
    """
    global _build
    if _build is None:
        _build = _decide(package or Path(__file__).parent)
        if not _build.compiled and _build.modules:
            sys.meta_path.insert(0, _SourceFinder(frozenset(_build.modules)))
    return _build


def status() -> Build:
    """The build in use in this process (see :func:`select`)."""
    return select()
