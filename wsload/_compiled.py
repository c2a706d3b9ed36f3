"""Which build of the per-cycle modules runs: mypyc-compiled, or their ``.py`` sources.

``setup.py`` compiles the modules a connection's cycle spends its time in (the protocol object,
frame codec, close tracker, record: the sans-IO core; the collector's pass over each finished
connection's record: ``setup.COMPILED``) with mypyc when the package is built and a C compiler
is there, and writes :data:`MANIFEST` next to this file: each compiled module's name and the
SHA-256 of the source it was compiled from. An extension module shadows the ``.py`` of the same
name in its folder, so without a check an editable install would keep running the compiled code
of a source edited since. :func:`select` (called once, from ``wsload/__init__.py``, before any
other wsload module is imported) therefore uses the compiled modules only when the build is for
this interpreter, every source still matches, and ``WSLOAD_PURE`` is not set (or is
``0``/empty); otherwise a finder placed first on ``sys.meta_path`` loads every one of them from
its ``.py``. It is all or nothing because the compiled modules of one group call each other
natively: a compiled ``protocol`` would keep calling the compiled ``frames`` even if ``frames``
came from source.

Rebuild after editing a compiled module: ``pip install -e .`` (or ``'.[test]'``). Until then
wsload runs as pure Python, correct and slower; ``wsload --version``, ``summary.json``
(``generator.build``) and the pytest header say which build runs and why.
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

__all__ = [
    "COMPILED_LABEL",
    "MANIFEST",
    "PURE_ENV",
    "PURE_LABEL",
    "Build",
    "decide",
    "select",
    "status",
]

MANIFEST = "_mypyc_manifest.json"
PURE_ENV = "WSLOAD_PURE"
COMPILED_LABEL = "compiled (mypyc)"
PURE_LABEL = "pure"
_GROUP = "_mypyc__mypyc"  # the group's shared library (setup.py's GROUP + "__mypyc")


@dataclass(frozen=True, slots=True)
class Build:
    """What :func:`select` decided.

    Attributes:
        compiled: the mypyc-compiled modules are in use.
        label: :data:`COMPILED_LABEL` or :data:`PURE_LABEL` (summary.json ``generator.build``).
        reason: why pure (one line for people), or ``""`` when compiled.
        modules: the modules the build covers (empty when nothing was compiled).
    """

    compiled: bool
    label: str
    reason: str
    modules: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.label} ({self.reason})" if self.reason else self.label


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


def _pure(reason: str, modules: tuple[str, ...] = ()) -> Build:
    return Build(False, PURE_LABEL, reason, modules)


def decide(package: Path) -> Build:
    """What the build in ``package`` (a ``wsload`` directory) allows in this process."""
    try:
        manifest: dict[str, str] = json.loads((package / MANIFEST).read_text())
    except (OSError, ValueError):
        return _pure("installed without compiling")
    modules = tuple(sorted(manifest))
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return _pure(f"{PURE_ENV} is set", modules)
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    if not any((package / (_GROUP + suffix)).is_file() for suffix in suffixes):
        return _pure("no build for this Python", modules)
    stale = []
    for name in modules:
        source = package.joinpath(*name.split(".")[1:]).with_suffix(".py")
        try:
            fresh = hashlib.sha256(source.read_bytes()).hexdigest() == manifest[name]
        except OSError:
            fresh = False
        if not fresh:
            stale.append(name)
    if stale:
        changed = ", ".join(stale)
        return _pure(f"{changed} changed since the build: pip install -e .", modules)
    return Build(True, COMPILED_LABEL, "", modules)


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
        _build = decide(package or Path(__file__).parent)
        if not _build.compiled and _build.modules:
            sys.meta_path.insert(0, _SourceFinder(frozenset(_build.modules)))
    return _build


def status() -> Build:
    """The build in use in this process (see :func:`select`)."""
    return select()
